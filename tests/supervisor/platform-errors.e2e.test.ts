// Which send failures move a connection out of active, end to end against the emulator. Telegram's
// answer about one message (bad markup, a chat that refuses it) is permanent and leaves the
// connection active for its other messages; only a link that gives no answer (or a revoked
// session/token, tests/supervisor/resilience.e2e.test.ts) sends PLATFORM_ERROR.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { OutboundMessage } from '../../src/delivery/types.ts';
import { AppError } from '../../src/errors.ts';
import type { Driver } from '../../src/platforms/adapter.ts';
import { startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack({ supervisor: { backoff: { baseMs: 100, capMs: 400 } } }); });
test.after(async () => { await s.close(); });
test.after.each(() => { s.emu.fault({ type: 'clear' }); });

const OWNER = 'errmap';
let n = 0;

// A bot connection that is an admin (may post) of one channel and a plain member of another.
async function botWithChannels() {
  const bot = s.emu.createBot({ username: `em${process.pid}x${n++}_bot` });
  const postable = `emp${process.pid}x${n++}`;
  const readOnly = `emr${process.pid}x${n++}`;
  s.emu.createChat({ type: 'channel', title: postable, username: postable, members: [{ id: bot.botId, role: 'admin' }] });
  s.emu.createChat({ type: 'channel', title: readOnly, username: readOnly, members: [{ id: bot.botId, role: 'member' }] });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(c.status, 'active');
  return { id: c.id, botId: bot.botId, postable: `@${postable}`, readOnly: `@${readOnly}` };
}

const message = (connectionId: string, chat: string, text: string, extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
  id: randomUUID(), owner: OWNER, connectionId, chat, text, silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), ...extra,
});

async function failure(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  assert.instance(e, AppError, 'the send should fail with an AppError');
  return e as AppError;
}
const statusOf = async (id: string) => (await s.connections.get(OWNER, id)).status;
const transitions = (id: string) => s.supervisor.actor(id)!.transitions.length;

test("bad MarkdownV2 (Telegram: can't parse entities) fails that message for good; the connection stays active", async () => {
  const b = await botWithChannels();
  const before = transitions(b.id);
  const e = await failure(s.supervisor.send(message(b.id, b.postable, 'Release 1.4 is out.', { parseMode: 'markdown' })));
  assert.is(e.code, 'VALIDATION_ERROR');
  assert.is(e.retryable, false, 'resending the same text gets the same answer');
  assert.match(e.message, "can't parse entities");
  assert.is(await statusOf(b.id), 'active');
  assert.is(transitions(b.id), before, 'no PLATFORM_ERROR: the connection never left active');
  // The connection's next message goes out at once.
  assert.ok((await s.supervisor.send(message(b.id, b.postable, 'Release 1\\.4 is out\\.', { parseMode: 'markdown' }))).platformMessageId);
  assert.is(s.emu.delivered({ fromId: b.botId }).length, 1);
});

test('a channel that refuses the bot (Bad Request: need administrator rights) is TG_CHAT_WRITE_FORBIDDEN; the connection stays active', async () => {
  const b = await botWithChannels();
  const before = transitions(b.id);
  const e = await failure(s.supervisor.send(message(b.id, b.readOnly, 'hello')));
  assert.is(e.code, 'TG_CHAT_WRITE_FORBIDDEN');
  assert.is(e.retryable, false);
  assert.is(await statusOf(b.id), 'active');
  assert.is(transitions(b.id), before);
  assert.ok((await s.supervisor.send(message(b.id, b.postable, 'hello'))).platformMessageId);
});

test('a driver that throws something other than an AppError: INTERNAL, and the connection stays active', async () => {
  const bot = s.platforms.kind('telegram', 'bot');
  const real = bot.driver;
  bot.driver = (ctx) => {
    const d: Driver = real(ctx);
    return { ...d, send: (msg) => (msg.text === 'bug' ? Promise.reject(new TypeError('x is undefined')) : d.send(msg)) };
  };
  try {
    const b = await botWithChannels();
    const before = transitions(b.id);
    const e = await failure(s.supervisor.send(message(b.id, b.postable, 'bug')));
    assert.is(e.code, 'INTERNAL');
    assert.is(e.outcomeUnknown, true, 'a bot message is failed, not resent: the call may have reached Telegram');
    assert.not.match(e.message, 'x is undefined', "the library's text stays out of the answer");
    assert.is(await statusOf(b.id), 'active');
    assert.is(transitions(b.id), before);
  } finally {
    bot.driver = real;
  }
});

test('still: a link that gives no answer moves the connection out of active', async () => {
  const b = await botWithChannels();
  s.emu.fault({ type: 'refuse-connections', target: b.botId, seconds: 60 });
  const e = await failure(s.supervisor.send(message(b.id, b.postable, 'into the void')));
  assert.is(e.code, 'TG_UNAVAILABLE');
  assert.ok(e.retryable);
  await until(async () => (await statusOf(b.id)) !== 'active', 'the connection left active');
  s.emu.fault({ type: 'clear' });
  await until(async () => (await statusOf(b.id)) === 'active', 'active again once Telegram answers', 10_000);
});

test.run();
