import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock } from './support/gramjs.ts';

// The Bot API over plain HTTP (fetch), as the bot adapter uses it. The clock stands still, so the
// pacing windows do not depend on how fast this machine runs the test.

let emu: Emulator;
let n = 0;
test.before(async () => {
  emu = await startEmulator({ clock: new ManualClock() });
});
test.after(async () => {
  await emu.stop();
});

interface Envelope { ok: boolean; result?: any; error_code?: number; description?: string; parameters?: { retry_after?: number } }

async function call(token: string, method: string, params?: Record<string, unknown>, as: 'json' | 'form' | 'query' = 'json'): Promise<{ status: number; body: Envelope }> {
  const base = `${emu.botApi}/bot${token}/${method}`;
  let res: Response;
  if (!params) res = await fetch(base);
  else if (as === 'query') res = await fetch(`${base}?${new URLSearchParams(params as Record<string, string>)}`);
  else if (as === 'form') res = await fetch(base, { method: 'POST', body: new URLSearchParams(params as Record<string, string>) });
  else res = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: res.status, body: (await res.json()) as Envelope };
}

async function fixture() {
  n++;
  const bot = emu.createBot({ username: `helper${n}_bot` });
  const { userId } = await emu.createUser({ phone: `+44770060${String(1000 + n)}`, firstName: 'Uma' });
  return { bot, userId };
}

test('getMe with a good token; an unknown token → 401 Unauthorized', async () => {
  const { bot } = await fixture();
  const ok = await call(bot.token, 'getMe');
  assert.is(ok.status, 200);
  assert.equal(ok.body.result.id, bot.botId);
  assert.is(ok.body.result.is_bot, true);
  const bad = await call(`${bot.botId}:not-the-token`, 'getMe');
  assert.is(bad.status, 401);
  assert.equal(bad.body, { ok: false, error_code: 401, description: 'Unauthorized' });
  assert.is((await call(bot.token, 'noSuchMethod')).status, 404);
});

test('sendMessage (JSON, form and query) is delivered; no dedupe in the Bot API', async () => {
  const { bot, userId } = await fixture();
  const a = await call(bot.token, 'sendMessage', { chat_id: userId, text: 'one' });
  assert.is(a.status, 200);
  assert.is(a.body.result.chat.id, userId);
  assert.is(a.body.result.text, 'one');
  const { chatId } = emu.createChat({ type: 'supergroup', title: 'G', members: [{ id: bot.botId, role: 'member' }] });
  assert.is((await call(bot.token, 'sendMessage', { chat_id: String(chatId), text: 'two' }, 'form')).status, 200);
  const group2 = emu.createChat({ type: 'supergroup', title: 'G2', members: [{ id: bot.botId, role: 'member' }] }).chatId;
  assert.is((await call(bot.token, 'sendMessage', { chat_id: String(group2), text: 'three' }, 'query')).status, 200);
  const group3 = emu.createChat({ type: 'supergroup', title: 'G3', members: [{ id: bot.botId, role: 'member' }] }).chatId;
  await call(bot.token, 'sendMessage', { chat_id: group3, text: 'same' });
  const again = await call(bot.token, 'sendMessage', { chat_id: group3, text: 'same' });
  assert.is(again.status, 429, 'the pacing limit, not a dedupe, stops an immediate repeat');
  assert.equal(emu.delivered({ fromId: bot.botId }).map((m) => m.text), ['one', 'two', 'three', 'same']);
});

test('flood-wait fault → 429 with parameters.retry_after', async () => {
  const { bot, userId } = await fixture();
  emu.fault({ type: 'flood-wait', target: bot.token, seconds: 11, count: 2 });
  for (let i = 0; i < 2; i++) {
    const r = await call(bot.token, 'sendMessage', { chat_id: userId, text: 'x' });
    assert.is(r.status, 429);
    assert.equal(r.body, { ok: false, error_code: 429, description: 'Too Many Requests: retry after 11', parameters: { retry_after: 11 } });
  }
  assert.is((await call(bot.token, 'sendMessage', { chat_id: userId, text: 'x' })).status, 200);
});

test('per-bot pacing: more than 30 messages a second → 429', async () => {
  const { bot } = await fixture();
  const users = await Promise.all(Array.from({ length: 31 }, (_, i) => emu.createUser({ phone: `+44770070${String(1000 + n * 40 + i)}` })));
  const results = [];
  for (const u of users) results.push((await call(bot.token, 'sendMessage', { chat_id: u.userId, text: 'hi' })).status);
  assert.is(results.filter((s) => s === 200).length, 30);
  assert.is(results.at(-1), 429);
});

test('errors: chat not found, empty text, not a member, channel needs admin rights', async () => {
  const { bot, userId } = await fixture();
  assert.equal((await call(bot.token, 'sendMessage', { chat_id: 123, text: 'x' })).body.description, 'Bad Request: chat not found');
  assert.equal((await call(bot.token, 'sendMessage', { chat_id: userId, text: '' })).body.description, 'Bad Request: message text is empty');
  const other = emu.createChat({ type: 'group', title: 'Other', members: [{ id: userId, role: 'creator' }] }).chatId;
  const notMember = await call(bot.token, 'sendMessage', { chat_id: other, text: 'x' });
  assert.is(notMember.status, 403);
  const chan = emu.createChat({ type: 'channel', title: 'C', members: [{ id: userId, role: 'creator' }, { id: bot.botId, role: 'member' }] }).chatId;
  const needAdmin = await call(bot.token, 'sendMessage', { chat_id: chan, text: 'x' });
  assert.equal([needAdmin.status, needAdmin.body.description], [400, 'Bad Request: need administrator rights in the channel chat']);
});

test('getChat, getChatMember and getChatAdministrators', async () => {
  const { bot, userId } = await fixture();
  const { chatId } = emu.createChat({
    type: 'channel', title: 'Announcements', username: `ann${n}`,
    members: [{ id: userId, role: 'creator' }, { id: bot.botId, role: 'admin', rights: { can_post_messages: true, can_delete_messages: false } }],
  });
  const chat = await call(bot.token, 'getChat', { chat_id: `@ann${n}` });
  assert.equal(chat.body.result, { id: chatId, type: 'channel', title: 'Announcements', username: `ann${n}` });
  const me = await call(bot.token, 'getChatMember', { chat_id: chatId, user_id: bot.botId });
  assert.is(me.body.result.status, 'administrator');
  assert.is(me.body.result.can_post_messages, true);
  assert.is(me.body.result.can_delete_messages, false);
  const admins = await call(bot.token, 'getChatAdministrators', { chat_id: chatId });
  assert.equal(admins.body.result.map((m: { status: string }) => m.status).sort(), ['administrator', 'creator']);
  assert.is((await call(bot.token, 'sendMessage', { chat_id: chatId, text: 'news' })).status, 200);
  const priv = await call(bot.token, 'getChat', { chat_id: userId });
  assert.is(priv.body.result.type, 'private');
});

test('getUpdates: long poll wakes on an incoming message; offset confirms', async () => {
  const { bot, userId } = await fixture();
  assert.equal((await call(bot.token, 'getUpdates', { timeout: 0 })).body.result, []);
  const polling = call(bot.token, 'getUpdates', { timeout: 5 });
  await new Promise((r) => setTimeout(r, 50));
  emu.pushUpdate({ to: bot.token, fromUserId: userId, text: 'hello bot' });
  const first = await polling;
  assert.is(first.body.result.length, 1);
  const u = first.body.result[0];
  assert.is(u.message.text, 'hello bot');
  assert.is(u.message.chat.id, userId);
  const confirmed = await call(bot.token, 'getUpdates', { offset: u.update_id + 1, timeout: 0 });
  assert.equal(confirmed.body.result, []);
});

test('two concurrent getUpdates: the newer terminates the older with 409', async () => {
  const { bot } = await fixture();
  const first = call(bot.token, 'getUpdates', { timeout: 2 });
  await new Promise((r) => setTimeout(r, 200));
  const second = call(bot.token, 'getUpdates', { timeout: 2 });
  // Whichever reached the server first is the older one (normally `first`).
  assert.equal([(await first).status, (await second).status].sort(), [200, 409]);
});

test('setWebhook: updates are POSTed to the hook; getUpdates conflicts; deleteWebhook restores polling', async () => {
  const { bot, userId } = await fixture();
  const received: unknown[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  const port = (hook.address() as { port: number }).port;
  assert.is((await call(bot.token, 'setWebhook', { url: `http://127.0.0.1:${port}/hook` })).body.result, true);
  assert.is((await call(bot.token, 'getUpdates')).status, 409);
  emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'via hook' });
  for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.is((received[0] as { message: { text: string } }).message.text, 'via hook');
  assert.is((await call(bot.token, 'deleteWebhook')).body.result, true);
  assert.is((await call(bot.token, 'getUpdates')).status, 200);
  await new Promise<void>((r) => hook.close(() => r()));
});

test('revoke-session for a bot: its token answers 401 from then on', async () => {
  const { bot } = await fixture();
  emu.fault({ type: 'revoke-session', target: bot.token });
  assert.is((await call(bot.token, 'getMe')).status, 401);
});

test.run();
