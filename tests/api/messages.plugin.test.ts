import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { messagesPlugin } from '../../src/api/messages.plugin.ts';
import { AppError } from '../../src/errors.ts';
import { upsertChat } from '../../src/store/chats.ts';
import { getConnection, insertConnection, toConnection, type Connection } from '../../src/store/connections.ts';
import type { ConnectionService } from '../../src/connections/types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, shellServer } from './shell-server.ts';

/**
 * TEST DOUBLE OF THE SUPERVISOR, limited to what the messages routes ask: `get` reads the real,
 * owner-scoped row and reports the live status set here (the real supervisor answers from its actor,
 * which can be ahead of the row's debounced status: rows here stay `connecting`). Nothing else is used.
 */
class LiveStatusDouble {
  readonly live = new Map<string, Connection['status']>();
  constructor(private readonly db: TestDatabase) {}
  async get(owner: string, id: string): Promise<Connection> {
    const row = await getConnection(this.db.sql, owner, id);
    if (!row) throw new AppError('NOT_FOUND', 'not found');
    return { ...toConnection(row), status: this.live.get(id) ?? row.status };
  }
  asService(): ConnectionService {
    const unused = () => { throw new Error('not used by the messages routes'); };
    return {
      get: (owner, id) => this.get(owner, id), create: unused, list: unused, submitCode: unused, submitPassword: unused, qr: unused,
      reconnect: unused, remove: unused, removeAll: unused, stopAll: unused, checkChat: unused, chatRef: unused, actors: unused, actorPages: unused, actor: unused, restart: unused,
    };
  }
}

let db: TestDatabase;
let shell: Awaited<ReturnType<typeof shellServer>>;
let live: LiveStatusDouble;
let notified = 0;

test.before(async () => {
  db = await createTestDatabase();
  shell = await shellServer({ rateLimit: { connect: 10_000, send: 10_000, status: 100_000 } });
  live = new LiveStatusDouble(db);
  await shell.server.register({ plugin: messagesPlugin, options: { sql: db.sql, connections: live.asService(), delivery: { notify: () => { notified += 1; } } } });
  await shell.server.initialize();
});
test.after(async () => {
  await shell.server.stop();
  await db.drop();
});

const json = (res: { payload: string }) => JSON.parse(res.payload) as Record<string, any>;
const post = (url: string, sub: string, payload: unknown, headers: Record<string, string> = {}) =>
  shell.server.inject({ method: 'POST', url, headers: { ...bearer(shell.token(sub)), ...headers }, payload: payload as object });
const get = (url: string, sub: string) => shell.server.inject({ method: 'GET', url, headers: bearer(shell.token(sub)) });

async function caller(status: Connection['status'] = 'active') {
  const sub = `u-${randomUUID()}`;
  const conn = randomUUID();
  await insertConnection(db.sql, { id: conn, owner: sub, platform: 'telegram', kind: 'bot', shard: 0, machineVersion: 1 });
  live.live.set(conn, status);
  return { sub, conn };
}

// Spread: postgres.js results are Arrays with extra fields, which deep equality would compare.
const rowsOf = async (sub: string) => [...await db.sql<{ id: string; chat: string; platform_chat_id: string | null; text: string; reply_to: string | null; silent: boolean; idempotency_key: string | null }[]>`
  select id::text as id, chat, platform_chat_id, text, reply_to, silent, idempotency_key from messages where owner = ${sub} order by created_at, id`];
const auditOf = async (sub: string) => [...await db.sql<{ action: string; target: string; actor: string }[]>`select action, target, actor from audit where owner = ${sub} order by id`];

test('accept → 202 queued Message, row and audit entry stored, delivery notified', async () => {
  const { sub, conn } = await caller();
  const before = notified;
  const res = await post('/v1/messages', sub, { connectionId: conn, chat: '@release_notes', text: 'Hello', silent: true, replyTo: 42, priority: 'high' });
  assert.is(res.statusCode, 202);
  const m = json(res);
  assert.equal(Object.keys(m).sort(), ['attempts', 'chat', 'connectionId', 'createdAt', 'direction', 'id', 'priority', 'status', 'text']);
  assert.equal([m.status, m.connectionId, m.chat, m.text, m.priority, m.attempts], ['queued', conn, '@release_notes', 'Hello', 'high', 0]);
  assert.is(res.headers.location, `/v1/messages/${m.id}`);
  const rows = await rowsOf(sub);
  assert.equal(rows.map((r) => [r.id, r.reply_to, r.silent, r.platform_chat_id]), [[m.id, '42', true, null]]);
  assert.equal(await auditOf(sub), [{ action: 'message.accepted', target: m.id, actor: sub }]);
  assert.is(notified, before + 1);

  const one = await get(`/v1/messages/${m.id}`, sub);
  assert.is(one.statusCode, 200);
  assert.equal(json(one), m);
});

test('MESSAGE_STATUS_EVENTS=outcomes: the accept stores the messages and answers them queued, without queued events', async () => {
  const quiet = await shellServer({ rateLimit: { connect: 10_000, send: 10_000, status: 100_000 } });
  await quiet.server.register({ plugin: messagesPlugin, options: { sql: db.sql, connections: live.asService(), delivery: { notify: () => undefined }, statusEvents: 'outcomes' } });
  await quiet.server.initialize();
  try {
    const { sub, conn } = await caller();
    const send = (url: string, payload: object) => quiet.server.inject({ method: 'POST', url, headers: bearer(quiet.token(sub)), payload });
    const one = await send('/v1/messages', { connectionId: conn, chat: '@release_notes', text: 'one' });
    const batch = await send('/v1/messages/batch', { messages: [{ connectionId: conn, chat: '@release_notes', text: 'two' }, { connectionId: conn, chat: '@release_notes', text: 'three' }] });
    assert.equal([one.statusCode, batch.statusCode], [202, 202]);
    assert.is(json(one).status, 'queued');
    assert.is((await rowsOf(sub)).length, 3);
    const [n] = await db.sql<{ n: number }[]>`select count(*)::int as n from events where customer_id = ${sub}`;
    assert.is(n!.n, 0, 'no queued events');
    // The default (all) stores one per message, on the other server.
    assert.is((await post('/v1/messages', sub, { connectionId: conn, chat: '@release_notes', text: 'four' })).statusCode, 202);
    const [m] = await db.sql<{ n: number }[]>`select count(*)::int as n from events where customer_id = ${sub}`;
    assert.is(m!.n, 1);
  } finally {
    await quiet.server.stop();
  }
});

test('idempotency: same key and body → one row, 200 with the first message; other body → 409', async () => {
  const { sub, conn } = await caller();
  const key = { 'idempotency-key': `k-${randomUUID()}` };
  const body = { connectionId: conn, chat: '-1001234567890', text: 'once' };
  const first = await post('/v1/messages', sub, body, key);
  assert.is(first.statusCode, 202);
  const before = notified;
  const again = await post('/v1/messages', sub, body, key);
  assert.is(again.statusCode, 200);
  assert.is(again.headers['idempotent-replayed'], 'true');
  assert.equal(json(again), json(first));
  assert.is(notified, before, 'nothing new to deliver');

  // The replay answers even after the connection left `active`: the first request was accepted.
  live.live.set(conn, 'error');
  assert.is((await post('/v1/messages', sub, body, key)).statusCode, 200);
  live.live.set(conn, 'active');

  const other = await post('/v1/messages', sub, { ...body, text: 'twice' }, key);
  assert.is(other.statusCode, 409);
  assert.is(json(other).error.code, 'IDEMPOTENCY_CONFLICT');
  assert.equal(json(other).error.details, [{ path: 'headers.idempotency-key', message: 'reused with another body' }]);
  assert.is((await rowsOf(sub)).length, 1);

  // Keys are per caller: another caller's identical key is a new message of theirs.
  const b = await caller();
  assert.is((await post('/v1/messages', b.sub, { ...body, connectionId: b.conn }, key)).statusCode, 202);

  for (const bad of ['', 'x'.repeat(201)]) {
    const res = await post('/v1/messages', sub, body, { 'idempotency-key': bad });
    assert.is(res.statusCode, 400, `key of ${bad.length}`);
    assert.is(json(res).error.details[0].path, 'headers.idempotency-key');
  }
});

test('connection not active → 409 CONNECTION_NOT_ACTIVE, nothing stored', async () => {
  const { sub, conn } = await caller('awaiting-code');
  const res = await post('/v1/messages', sub, { connectionId: conn, chat: '@release_notes', text: 'Hello' });
  assert.is(res.statusCode, 409);
  assert.is(json(res).error.code, 'CONNECTION_NOT_ACTIVE');
  assert.equal(json(res).error.details, [{ path: 'connectionId', message: 'connection is awaiting-code' }]);
  assert.equal(await rowsOf(sub), []);
  assert.equal(await auditOf(sub), []);
});

test('another caller: 404 on GET of my message and on POST with my connection; lists never show it', async () => {
  const me = await caller();
  const them = await caller();
  const mine = json(await post('/v1/messages', me.sub, { connectionId: me.conn, chat: '@release_notes', text: 'mine' }));
  const peek = await get(`/v1/messages/${mine.id}`, them.sub);
  assert.is(peek.statusCode, 404);
  assert.is(json(peek).error.code, 'NOT_FOUND');
  for (const url of ['/v1/messages/not-a-uuid', `/v1/messages/${randomUUID()}`, "/v1/messages/1'%20or%20'1'='1"]) {
    const res = await get(url, me.sub);
    assert.is(res.statusCode, 404, url);
  }
  const hijack = await post('/v1/messages', them.sub, { connectionId: me.conn, chat: '@release_notes', text: 'theirs' });
  assert.is(hijack.statusCode, 404);
  assert.equal(json(hijack).error.details, [{ path: 'connectionId', message: 'not found' }]);
  assert.equal(await rowsOf(them.sub), []);
  assert.equal(json(await get('/v1/messages', them.sub)).items, []);
  assert.equal(json(await get(`/v1/messages?connectionId=${me.conn}`, them.sub)).items, []);
});

test('chat as one of our chat ids: resolved owner- and connection-scoped to its platform id', async () => {
  const { sub, conn } = await caller();
  const other = randomUUID();
  await insertConnection(db.sql, { id: other, owner: sub, platform: 'telegram', kind: 'bot', shard: 0, machineVersion: 1 });
  live.live.set(other, 'active');
  const check = { platformChatId: '-1009876543210', type: 'channel' as const, title: 'News', isAdmin: true, canSend: true, rights: {} };
  const { row: chat } = await upsertChat(db.sql, sub, conn, check);
  const res = await post('/v1/messages', sub, { connectionId: conn, chat: chat.id, text: 'via our id' });
  assert.is(res.statusCode, 202);
  assert.is(json(res).chat, chat.id);
  assert.equal((await rowsOf(sub)).map((r) => [r.chat, r.platform_chat_id]), [[chat.id, '-1009876543210']]);

  // The same chat id through another connection of the same owner, another owner's, or an unknown id: 404.
  const them = await caller();
  const cases: [string, string, string][] = [[sub, other, chat.id], [them.sub, them.conn, chat.id], [sub, conn, randomUUID()]];
  for (const [who, connectionId, chatId] of cases) {
    const r = await post('/v1/messages', who, { connectionId, chat: chatId, text: 'no' });
    assert.is(r.statusCode, 404);
    assert.equal(json(r).error.details, [{ path: 'chat', message: 'no such chat on this connection' }]);
  }
  assert.is((await rowsOf(sub)).length, 1);
});

test('malformed bodies → 400 VALIDATION_ERROR naming the fields; 4096 chars pass, 4097 do not', async () => {
  const { sub, conn } = await caller();
  const ok = { connectionId: conn, chat: '@release_notes', text: 'x' };
  const cases: [unknown, string[]][] = [
    [{}, ['connectionId', 'chat', 'text']],
    [{ ...ok, text: 'x'.repeat(4097) }, ['text']],
    [{ ...ok, text: '' }, ['text']],
    [{ ...ok, text: ' \n\t ' }, ['text']],
    [{ ...ok, text: 'a\u0000b' }, ['text']],
    [{ ...ok, connectionId: 'abc' }, ['connectionId']],
    [{ ...ok, chat: 'release_notes' }, ['chat']],
    [{ ...ok, chat: 'https://t.me/+invite' }, ['chat']],
    [{ ...ok, parseMode: 'markdownv3' }, ['parseMode']],
    [{ ...ok, priority: 'urgent' }, ['priority']],
    [{ ...ok, replyTo: -1 }, ['replyTo']],
    [{ ...ok, silent: 'loud' }, ['silent']],
    [{ ...ok, status: 'sent' }, ['status']],
    [{ ...ok, text: 42 }, ['text']],
  ];
  for (const [payload, paths] of cases) {
    const res = await post('/v1/messages', sub, payload);
    assert.is(res.statusCode, 400, JSON.stringify(payload).slice(0, 80));
    const err = json(res).error;
    assert.is(err.code, 'VALIDATION_ERROR');
    assert.equal(err.details.map((d: { path: string }) => d.path).sort(), [...paths].sort(), JSON.stringify(payload).slice(0, 80));
  }
  const notJson = await shell.server.inject({ method: 'POST', url: '/v1/messages', headers: { ...bearer(shell.token(sub)), 'content-type': 'application/json' }, payload: '{"text":' });
  assert.is(notJson.statusCode, 400);
  assert.equal(await rowsOf(sub), []);

  const longest = await post('/v1/messages', sub, { ...ok, text: 'x'.repeat(4096) });
  assert.is(longest.statusCode, 202);
  assert.is(json(longest).text.length, 4096);
});

test('markup comes back verbatim as JSON text', async () => {
  const { sub, conn } = await caller();
  const text = '<script>alert("x")</script> & <b>bold</b> \u202e';
  const res = await post('/v1/messages', sub, { connectionId: conn, chat: '@release_notes', text, parseMode: 'html' });
  assert.is(res.statusCode, 202);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.is(json(res).text, text);
  const listed = await get('/v1/messages', sub);
  assert.match(String(listed.headers['content-type']), /^application\/json/);
  assert.is(json(listed).items[0].text, text);
});

test('batch: all accepted in order with their keys; one invalid or inactive → nothing stored', async () => {
  const { sub, conn } = await caller();
  const sleepy = randomUUID();
  await insertConnection(db.sql, { id: sleepy, owner: sub, platform: 'telegram', kind: 'bot', shard: 0, machineVersion: 1 });
  live.live.set(sleepy, 'error');
  const msg = (i: number, extra: object = {}) => ({ connectionId: conn, chat: '@release_notes', text: `m${i}`, ...extra });

  const invalid = await post('/v1/messages/batch', sub, { messages: [msg(0), msg(1, { text: 'x'.repeat(4097) }), msg(2)] });
  assert.is(invalid.statusCode, 400);
  assert.equal(json(invalid).error.details.map((d: { path: string }) => d.path), ['messages.1.text']);

  const inactive = await post('/v1/messages/batch', sub, { messages: [msg(0), msg(1, { connectionId: sleepy })] });
  assert.is(inactive.statusCode, 409);
  assert.is(json(inactive).error.code, 'CONNECTION_NOT_ACTIVE');
  assert.equal(json(inactive).error.details, [{ path: 'messages.1.connectionId', message: 'connection is error' }]);

  const foreign = await caller();
  const notMine = await post('/v1/messages/batch', sub, { messages: [msg(0), msg(1, { connectionId: foreign.conn })] });
  assert.is(notMine.statusCode, 404);
  assert.equal(json(notMine).error.details, [{ path: 'messages.1.connectionId', message: 'not found' }]);

  const nulKey = await post('/v1/messages/batch', sub, { messages: [msg(0, { idempotencyKey: 'k\u0000' })] });
  assert.equal(json(nulKey).error.details.map((d: { path: string }) => d.path), ['messages.0.idempotencyKey']);
  for (const messages of [[], Array.from({ length: 501 }, (_, i) => msg(i, { text: 'x' }))]) {
    const res = await post('/v1/messages/batch', sub, { messages });
    assert.is(res.statusCode, 400, `${messages.length} messages`);
  }
  assert.equal(await rowsOf(sub), []);
  assert.equal(await auditOf(sub), []);

  const before = notified;
  const messages = Array.from({ length: 500 }, (_, i) => msg(i, { idempotencyKey: `b-${i}` }));
  const ok = await post('/v1/messages/batch', sub, { messages });
  assert.is(ok.statusCode, 202);
  const items = json(ok).items as { id: string; text: string; status: string }[];
  assert.equal(items.map((m) => m.text), messages.map((m) => m.text));
  assert.ok(items.every((m) => m.status === 'queued'));
  assert.is((await rowsOf(sub)).length, 500);
  assert.is((await auditOf(sub)).length, 500);
  assert.is(notified, before + 1, 'one wake-up per request');

  // Replays answer the first messages; a new one among them makes it 202, all replays 200.
  const replay = await post('/v1/messages/batch', sub, { messages: messages.slice(0, 3) });
  assert.is(replay.statusCode, 200);
  assert.equal(json(replay).items.map((m: { id: string }) => m.id), items.slice(0, 3).map((m) => m.id));
  const mixed = await post('/v1/messages/batch', sub, { messages: [messages[0], msg(999)] });
  assert.is(mixed.statusCode, 202);
  assert.is(json(mixed).items[0].id, items[0]!.id);
  const conflict = await post('/v1/messages/batch', sub, { messages: [msg(998), { ...messages[7], text: 'changed' }] });
  assert.is(conflict.statusCode, 409);
  assert.is(json(conflict).error.code, 'IDEMPOTENCY_CONFLICT');
  assert.is((await rowsOf(sub)).length, 501);
});

test('list: newest first, filters, cursor pages cover every message once', async () => {
  const { sub, conn } = await caller();
  const second = randomUUID();
  await insertConnection(db.sql, { id: second, owner: sub, platform: 'telegram', kind: 'bot', shard: 0, machineVersion: 1 });
  live.live.set(second, 'active');
  const batch = Array.from({ length: 7 }, (_, i) => ({ connectionId: i % 2 ? second : conn, chat: '@release_notes', text: `m${i}` }));
  const ids = new Set((json(await post('/v1/messages/batch', sub, { messages: batch })).items as { id: string }[]).map((m) => m.id));
  const seen: string[] = [];
  let url = '/v1/messages?limit=3';
  for (let page = 0; page < 5; page++) {
    const res = await get(url, sub);
    assert.is(res.statusCode, 200);
    const p = json(res);
    seen.push(...p.items.map((m: { id: string }) => m.id));
    if (!p.nextCursor) break;
    url = `/v1/messages?limit=3&cursor=${p.nextCursor}`;
  }
  assert.is(seen.length, 7);
  assert.equal(new Set(seen), ids);
  const byConn = json(await get(`/v1/messages?connectionId=${second}`, sub)).items as { connectionId: string }[];
  assert.is(byConn.length, 3);
  assert.ok(byConn.every((m) => m.connectionId === second));
  assert.is(json(await get('/v1/messages?status=sent', sub)).items.length, 0);
  assert.is(json(await get('/v1/messages?status=queued', sub)).items.length, 7);
  for (const q of ['limit=0', 'limit=101', 'status=lost', 'cursor=%25%25', 'connectionId=x', `cursor=${Buffer.from('nope').toString('base64url')}`]) {
    const res = await get(`/v1/messages?${q}`, sub);
    assert.is(res.statusCode, 400, q);
    assert.is(json(res).error.code, 'VALIDATION_ERROR', q);
  }
});

test('search: q matches whole words of the caller\'s texts only, combines with connectionId and status, pages by cursor', async () => {
  const { sub, conn } = await caller();
  const second = randomUUID();
  await insertConnection(db.sql, { id: second, owner: sub, platform: 'telegram', kind: 'bot', shard: 0, machineVersion: 1 });
  live.live.set(second, 'active');
  const texts = ['Release 1.4 is out', 'release notes: beta', 'Nothing to see', 'The RELEASE party', 'Released yesterday', 'Релиз готов', 'release'];
  const batch = texts.map((text, i) => ({ connectionId: i % 2 ? second : conn, chat: '@release_notes', text }));
  const items = json(await post('/v1/messages/batch', sub, { messages: batch })).items as { id: string; text: string }[];
  const idOf = (text: string) => items.find((m) => m.text === text)!.id;
  // One transaction gave them one created_at: spread them a second apart, in the order above.
  for (const [i, text] of texts.entries()) await db.sql`update messages set created_at = now() - ${texts.length - i} * interval '1 second' where id = ${idOf(text)}`;
  await db.sql`update messages set status = 'sent' where id = ${idOf('release')}`;
  // Another caller's matching text is never found.
  const other = await caller();
  await post('/v1/messages', other.sub, { connectionId: other.conn, chat: '@x_chan', text: 'release for someone else' });

  const search = async (query: string) => {
    const res = await get(`/v1/messages?${query}`, sub);
    assert.is(res.statusCode, 200, `${query}: ${res.payload}`);
    return (json(res).items as { text: string }[]).map((m) => m.text);
  };
  // Newest first; case-insensitive; no stemming ("Released" is another word).
  assert.equal(await search('q=release'), ['release', 'The RELEASE party', 'release notes: beta', 'Release 1.4 is out']);
  assert.equal(await search('q=RELEASE%20-beta'), ['release', 'The RELEASE party', 'Release 1.4 is out']);
  assert.equal(await search(`q=${encodeURIComponent('"release notes"')}`), ['release notes: beta']);
  assert.equal(await search('q=party%20or%20yesterday'), ['Released yesterday', 'The RELEASE party']);
  assert.equal(await search(`q=${encodeURIComponent('релиз')}`), ['Релиз готов']);
  assert.equal(await search(`q=release&connectionId=${second}`), ['The RELEASE party', 'release notes: beta']);
  assert.equal(await search('q=release&status=sent'), ['release']);
  assert.equal(await search('q=release&status=queued&limit=2').then((t) => t.length), 2);
  assert.equal(await search('q=absent'), []);

  const seen: string[] = [];
  let url = '/v1/messages?q=release&limit=1';
  for (let page = 0; page < 10; page++) {
    const p = json(await get(url, sub));
    seen.push(...p.items.map((m: { text: string }) => m.text));
    if (!p.nextCursor) break;
    url = `/v1/messages?q=release&limit=1&cursor=${p.nextCursor}`;
  }
  assert.equal(seen, await search('q=release'), 'the pages of a search are the search, each message once');

  for (const q of ['q=', 'q=%21%21%21', `q=${'a'.repeat(201)}`, 'q=a&q=b']) {
    const res = await get(`/v1/messages?${q}`, sub);
    assert.is(res.statusCode, 400, q);
    assert.is(json(res).error.code, 'VALIDATION_ERROR', q);
    assert.ok(json(res).error.details.some((d: { path: string }) => d.path.includes('q')), q);
  }
  // Operators and quotes that do not parse as a query still answer (websearch syntax never errors).
  for (const q of ['"unclosed', 'a & b | !c', "' or 1=1 --", 'or', '-']) {
    const res = await get(`/v1/messages?q=${encodeURIComponent(q)}`, sub);
    assert.ok(res.statusCode === 200 || res.statusCode === 400, `${q}: ${res.statusCode}`);
  }
});

test('both POST routes count in the send group; OpenAPI documents the routes with labelled schemas', async () => {
  const { sub, conn } = await caller();
  const res = await post('/v1/messages', sub, { connectionId: conn, chat: '@release_notes', text: 'x' });
  assert.is(res.headers['ratelimit-limit'], '10000');
  const batch = await post('/v1/messages/batch', sub, { messages: [{ connectionId: conn, chat: '@release_notes', text: 'y' }] });
  assert.is(Number(batch.headers['ratelimit-remaining']), Number(res.headers['ratelimit-remaining']) - 1);

  const doc = json(await shell.server.inject('/openapi.json'));
  const send = doc.paths['/v1/messages'].post;
  assert.ok(send.tags.includes('messages'));
  for (const code of ['200', '202', '400', '401', '404', '409', '413', '429']) assert.ok(send.responses[code], `POST /v1/messages documents ${code}`);
  assert.match(send.responses['409'].description, /CONNECTION_NOT_ACTIVE/);
  assert.match(send.responses['409'].description, /IDEMPOTENCY_CONFLICT/);
  assert.ok(send.parameters.some((p: { name: string; in: string }) => p.name === 'idempotency-key' && p.in === 'header'));
  assert.ok(doc.paths['/v1/messages/batch'].post && doc.paths['/v1/messages/{id}'].get && doc.paths['/v1/messages'].get);
  for (const schema of ['Message', 'SendMessage', 'SendMessageBatch', 'BatchMessage', 'MessagePage', 'MessageBatchResult']) {
    assert.ok(doc.components.schemas[schema], `schema ${schema}`);
  }
});

test('hostile input: random near-valid bodies and SQL-injection strings → 202 or a 4xx with a code, never 5xx', async () => {
  const { sub, conn } = await caller();
  const injections = ["' or 1=1 --", '"; drop table messages; --', "'); delete from audit; --", '@x\u0000y', '-1 union select 1'];
  const value = fc.oneof(fc.string(), fc.constantFrom(...injections), fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 1 }));
  // Each field is valid four times in five, so some bodies pass and reach the store.
  const mostly = <T>(good: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: value, weight: 1 });
  const nearValid = fc.record({
    connectionId: mostly(fc.oneof(fc.constant(conn), fc.uuid())),
    chat: mostly(fc.constantFrom('@release_notes', '-1001234567890', randomUUID())),
    text: mostly(fc.oneof(fc.string({ minLength: 1, maxLength: 50 }), fc.constantFrom(...injections))),
    parseMode: mostly(fc.constantFrom('html', 'markdown')),
    replyTo: mostly(fc.integer({ min: 1, max: 1000 })),
    priority: mostly(fc.constantFrom('high', 'low')),
    silent: mostly(fc.boolean()),
  }, { requiredKeys: ['connectionId', 'chat', 'text'] });
  await fc.assert(fc.asyncProperty(nearValid, fc.boolean(), async (msg, asBatch) => {
    const res = asBatch
      ? await post('/v1/messages/batch', sub, { messages: [msg] })
      : await post('/v1/messages', sub, msg);
    if (res.statusCode === 202) return;
    assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} ${res.payload.slice(0, 200)}`);
    assert.type(json(res).error?.code, 'string');
  }), { numRuns: 150 });
  for (const bad of injections) {
    assert.is((await get(`/v1/messages?connectionId=${encodeURIComponent(bad)}`, sub)).statusCode, 400);
    assert.is((await get(`/v1/messages/${encodeURIComponent(bad)}`, sub)).statusCode, 404);
  }
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${sub}`;
  assert.ok(n > 0, 'some random bodies were valid and stored');
});

test.run();
