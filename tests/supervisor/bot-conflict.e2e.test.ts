// Bots whose updates already go somewhere else (Bot API 409 on getUpdates), end to end against the
// emulator: a webhook or another poller ends the connection in error TG_BOT_IN_USE after one
// confirming poll (no reconnect loop, the owner's webhook left in place); takeOver deletes the
// webhook; updates "none" only sends and never polls.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { OutboundMessage } from '../../src/delivery/types.ts';
import { bus } from '../../src/events/bus.ts';
import { startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

const OWNER = 'bot-owner';
let n = 0;

async function botApi(token: string, method: string, params: Record<string, unknown> = {}): Promise<{ ok: boolean; result?: any; description?: string }> {
  const res = await fetch(`${s.emu.botApi}/bot${token}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return (await res.json()) as { ok: boolean; result?: any };
}

const polls = (botId: number) => s.emu.stats().getUpdatesCalls[botId] ?? 0;
const newBot = () => s.emu.createBot({ username: `conf${process.pid}x${n++}_bot` });
const inError = (id: string) => until(async () => {
  const c = await s.connections.get(OWNER, id);
  return c.status === 'error' ? c : undefined;
}, 'connection in error');
// Long enough for several 1 s polls (the stack's pollTimeoutS) had the bot kept polling.
const settle = () => new Promise((r) => setTimeout(r, 3000));

test('a bot with a webhook set: created, then error TG_BOT_IN_USE and no more getUpdates; the webhook is left as it was', async () => {
  const bot = newBot();
  assert.ok((await botApi(bot.token, 'setWebhook', { url: 'https://owner.example/hook' })).ok);
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
  const ended = await inError(c.id);
  assert.is(ended.error?.code, 'TG_BOT_IN_USE');
  assert.match(ended.error!.message, /webhook/);
  assert.not.match(ended.error!.message, new RegExp(bot.token.split(':')[1]!), 'no token in the message');
  assert.is(ended.error?.retryAt, undefined, 'no retry scheduled');
  assert.is(polls(bot.botId), 2, 'one poll and one confirmation');
  await settle();
  assert.is(polls(bot.botId), 2, 'no getUpdates after the error');
  assert.is((await s.connections.get(OWNER, c.id)).status, 'error');
  assert.is((await botApi(bot.token, 'getWebhookInfo')).result.url, 'https://owner.example/hook', 'the owner\'s webhook is untouched');
});

test('a bot polled by another program: error TG_BOT_IN_USE naming the other poller', async () => {
  const bot = newBot();
  let running = true;
  // The owner's own backend: polls in a loop as a real one does.
  const owner = (async () => {
    while (running) await botApi(bot.token, 'getUpdates', { timeout: 1 }).catch(() => undefined);
  })();
  try {
    await until(() => polls(bot.botId) >= 1, 'the owner polling');
    const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
    const ended = await inError(c.id);
    assert.is(ended.error?.code, 'TG_BOT_IN_USE');
    assert.match(ended.error!.message, /another program/);
  } finally {
    running = false;
    await owner;
  }
});

test('takeOver: true deletes the webhook (and says so in the audit); the bot stays active and gets the updates', async () => {
  const bot = newBot();
  const { userId } = await s.emu.createUser({ phone: `+4477009${String(10_000 + n).slice(-5)}` });
  assert.ok((await botApi(bot.token, 'setWebhook', { url: 'https://owner.example/hook2' })).ok);
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token, takeOver: true });
  assert.is(c.status, 'active');
  assert.is((await botApi(bot.token, 'getWebhookInfo')).result.url, '');
  const [entry] = await s.db.sql`select details from audit where target = ${c.id} order by id limit 1`;
  assert.equal([entry!.details.takeOver, entry!.details.webhookDeleted], [true, true]);
  const received: string[] = [];
  const off = bus.subscribe((e) => {
    const d = e.data as { connectionId?: string; text?: string };
    if (e.type === 'message.received' && d.connectionId === c.id) received.push(d.text!);
  });
  try {
    s.emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'now ours' });
    await until(() => received.includes('now ours'), 'the update received');
  } finally {
    off();
  }
  assert.is((await s.connections.get(OWNER, c.id)).status, 'active');
});

test('updates "none": sends beside a foreign poller and never calls getUpdates', async () => {
  const bot = newBot();
  const chat = `none${process.pid}x${n++}`;
  s.emu.createChat({ type: 'channel', title: chat, username: chat, members: [{ id: bot.botId, role: 'admin' }] });
  let running = true;
  let ownerPolls = 0;
  const owner = (async () => {
    while (running) {
      ownerPolls++;
      await botApi(bot.token, 'getUpdates', { timeout: 1 }).catch(() => undefined);
    }
  })();
  try {
    await until(() => polls(bot.botId) >= 1, 'the owner polling');
    const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token, updates: 'none' });
    assert.is(c.status, 'active');
    const msg: OutboundMessage = { id: randomUUID(), owner: OWNER, connectionId: c.id, chat: `@${chat}`, text: 'beside the owner', silent: false, priority: 'normal', attempts: 1, createdAt: new Date() };
    assert.ok((await s.supervisor.send(msg)).platformMessageId);
    await settle();
    assert.is((await s.connections.get(OWNER, c.id)).status, 'active');
    running = false;
    await owner;
    assert.is(polls(bot.botId), ownerPolls, 'every getUpdates the emulator saw was the owner\'s');
    const [secret] = await s.db.sql`select count(*)::int as n from connection_secrets where connection_id = ${c.id} and name = 'bot_updates'`;
    assert.is(secret!.n, 1);
  } finally {
    running = false;
    await owner;
  }
});

test.run();
