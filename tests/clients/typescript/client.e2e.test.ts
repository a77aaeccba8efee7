// The typed client against the real daemon and the Telegram emulator: a bot connected, a channel
// added, a message sent and its `sent` status read from the live events, across a forced reconnect
// and a daemon restart. Errors arrive as ApiError with the API's code.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiError, connectBot, createClient, loginWithPhone, type LiveEvent, type Message } from '../../../clients/typescript/src/index.ts';
import { until } from '../../helpers/stack.ts';
import { startDaemon, type Daemon } from './daemon.ts';

const test = suite<{ d: Daemon }>('client e2e', {} as { d: Daemon });
test.before(async (ctx) => { ctx.d = await startDaemon(); });
test.after(async ({ d }) => { await d.stop(); });

const statusOf = (events: LiveEvent[], id: string) =>
  events.filter((e) => e.type === 'message.status' && (e.data as Message).id === id).map((e) => (e.data as Message).status);

test('bot connect → channel → send → `sent` over the live events, then again after a forced reconnect and a restart', async ({ d }) => {
  const client = createClient({ baseUrl: d.app.url, token: d.token('alice') });
  const { token, username, chatId } = d.botWithChannel();
  const events: LiveEvent[] = [];
  const opened: Array<string | undefined> = [];
  const stream = client.events({ backoff: { baseMs: 50, capMs: 200 }, onEvent: (e) => events.push(e), onState: (s, i) => { if (s === 'open') opened.push(i.since); } });
  await stream.start();

  const bot = await connectBot(client, { token });
  assert.is(bot.status, 'active');
  const chat = await client.chats.add(bot.id, { chat: `@${username}` });
  assert.is(chat.canSend, true);
  assert.is((await client.chats.list(bot.id)).items.length, 1);

  const first = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'hello from the client' });
  assert.is(first.status, 'queued');
  await until(() => statusOf(events, first.id).includes('sent'), 'first message sent (events)', 20_000);
  assert.is(d.emu.delivered({ chatId }).filter((m) => m.text === 'hello from the client').length, 1);

  // A network failure: the stream reconnects by itself (with ?since= once frames carry ids).
  stream.dropConnection();
  await until(() => opened.length === 2, 'reopened after the drop', 20_000);
  const second = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'after the reconnect' });
  await until(() => statusOf(events, second.id).includes('sent'), 'second message sent (events)', 20_000);

  // The daemon restarts (close 1001): the stream comes back on its own and the bot is restored.
  await d.restart();
  await until(() => opened.length === 3, 'reopened after the restart', 20_000);
  await until(async () => (await client.connections.get(bot.id)).status === 'active', 'bot active after restart', 20_000);
  const third = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'after the restart' });
  await until(() => statusOf(events, third.id).includes('sent'), 'third message sent (events)', 20_000);

  const ids = events.map((e) => e.id).filter((id) => id !== undefined);
  if (ids.length > 0) {
    // Stored events (issue 15): every reconnect asked for what followed the last id it saw.
    assert.ok(opened.slice(1).every((since) => since !== undefined), `resumed with since: ${JSON.stringify(opened)}`);
    assert.is(new Set(ids).size, ids.length, 'no event twice');
  } else {
    // Today's daemon: frames carry no id, so a reconnect resumes live only and asks for no replay.
    assert.equal(opened, [undefined, undefined, undefined]);
  }
  stream.close();
});

test('events missed while away are replayed with since (needs stored events, issue 15: otherwise only the live part is checked)', async ({ d }) => {
  const client = createClient({ baseUrl: d.app.url, token: d.token('erin') });
  const { token, username } = d.botWithChannel();
  const bot = await connectBot(client, { token });
  await client.chats.add(bot.id, { chat: `@${username}` });
  const before: LiveEvent[] = [];
  const s1 = client.events({ onEvent: (e) => before.push(e) });
  await s1.start();
  const m1 = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'seen live' });
  await until(() => statusOf(before, m1.id).includes('sent'), 'm1 sent', 20_000);
  s1.close();
  // Away: m2 is sent while no socket is open.
  const m2 = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'sent while away' });
  await until(async () => (await client.messages.get(m2.id)).status === 'sent', 'm2 sent', 20_000);
  const after: LiveEvent[] = [];
  const s2 = client.events({ ...(s1.lastId !== undefined && { since: s1.lastId }), onEvent: (e) => after.push(e) });
  await s2.start();
  const m3 = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'live again' });
  await until(() => statusOf(after, m3.id).includes('sent'), 'm3 sent', 20_000);
  if (s1.lastId !== undefined) {
    assert.ok(statusOf(after, m2.id).includes('sent'), 'the event missed while away was replayed');
    assert.not.ok(statusOf(after, m1.id).length, 'nothing from before the seam');
  } else {
    assert.equal(statusOf(after, m2.id), [], 'no replay without stored events');
  }
  s2.close();
});

test('phone login helper: code and 2FA password asked in turn, a wrong code asked again', async ({ d }) => {
  const client = createClient({ baseUrl: d.app.url, token: d.token('bob') });
  const phone = `+4477009${String(process.pid % 100).padStart(2, '0')}${String(Date.now() % 1000).padStart(3, '0')}`;
  await d.emu.createUser({ phone, firstName: 'Bob', password: 'pw-bob' });
  const asked: string[] = [];
  const c = await loginWithPhone(client, {
    phone,
    code: async () => { asked.push('code'); return asked.length === 1 ? '00000' : d.emu.lastCode(phone)!.code; },
    password: async () => { asked.push('password'); return 'pw-bob'; },
    onRetry: (err) => asked.push(err.code),
    pollMs: 50,
  });
  assert.is(c.status, 'active');
  assert.equal(asked, ['code', 'TG_CODE_INVALID', 'code', 'password']);
});

test('refusals are ApiError with the API code; another caller gets NOT_FOUND', async ({ d }) => {
  const alice = createClient({ baseUrl: d.app.url, token: d.token('carol') });
  const mallory = createClient({ baseUrl: d.app.url, token: d.token('mallory') });
  const { token } = d.botWithChannel();
  const bot = await connectBot(alice, { token });
  const notFound = await mallory.connections.get(bot.id).catch((e: unknown) => e);
  assert.instance(notFound, ApiError);
  assert.is((notFound as ApiError).code, 'NOT_FOUND');
  assert.is((notFound as ApiError).status, 404);
  const bad = (await alice.connections.create({ platform: 'telegram', kind: 'bot', token: 'not a token' }).catch((e: unknown) => e)) as ApiError;
  assert.is(bad.code, 'VALIDATION_ERROR');
  assert.ok((bad.details ?? []).length > 0);
  const invalid = (await connectBot(alice, { token: '123456:unknown' }).catch((e: unknown) => e)) as ApiError;
  assert.is(invalid.code, 'TG_BOT_TOKEN_INVALID');
  const wrongToken = createClient({ baseUrl: d.app.url, token: 'nope' });
  assert.is(((await wrongToken.connections.list().catch((e: unknown) => e)) as ApiError).code, 'UNAUTHORIZED');
});

test('every send carries an Idempotency-Key: a retried send answers the first message, not a second one', async ({ d }) => {
  const keys: string[] = [];
  let dropFirstAnswer = true;
  // The first answer is lost on the way back (the server did queue the message): the client retries.
  const flaky: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const key = new Headers(init?.headers).get('idempotency-key');
    if (key) keys.push(key);
    if (key && dropFirstAnswer) { dropFirstAnswer = false; throw new TypeError('socket hang up'); }
    return res;
  };
  const client = createClient({ baseUrl: d.app.url, token: d.token('dave'), fetch: flaky });
  const { token, username, chatId } = d.botWithChannel();
  const bot = await connectBot(client, { token });
  await client.chats.add(bot.id, { chat: `@${username}` });
  const m = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'exactly once' });
  assert.is(keys.length, 2);
  assert.is(keys[0], keys[1], 'the retry reused the key');
  const list = await client.messages.list({ connectionId: bot.id });
  assert.equal(list.items.map((x) => x.id), [m.id], 'one message queued');
  await until(async () => (await client.messages.get(m.id)).status === 'sent', 'sent', 20_000);
  assert.is(d.emu.delivered({ chatId }).length, 1);
  const other = await client.messages.send({ connectionId: bot.id, chat: `@${username}`, text: 'another' });
  assert.is.not(keys.at(-1), keys[0], 'a new send has a new key');
  assert.is.not(other.id, m.id);
});

test.run();
