// Per-owner quotas through the routes: connections, chats per connection, and messages not yet sent.
// A refusal is 403 QUOTA_EXCEEDED and stores nothing (no row, no audit entry); requests racing for
// the last slot get exactly one through. The check lives in the store (insertConnection, upsertChat,
// acceptMessages), which the supervisor uses too (tests/supervisor/quota.e2e.test.ts).
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
const quotas = { connectionsPerOwner: 3, chatsPerConnection: 2, queuedMessagesPerOwner: 5 };
test.before(async () => { t = await routesServer({ quotas, messages: true }); });
test.after(async () => { await t.close(); });

const owner = () => {
  const sub = `q-${randomUUID()}`;
  return { sub, as: t.as(sub) };
};
let botIds = 1000;
const createBot = (as: { authorization: string }) =>
  t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'bot', token: `${botIds++}:tok` } });
const addChat = (as: { authorization: string }, conn: string, chat: string) =>
  t.server.inject({ method: 'POST', url: `/v1/connections/${conn}/chats`, headers: as, payload: { chat } });
const send = (as: { authorization: string }, conn: string, headers: Record<string, string> = {}) =>
  t.server.inject({ method: 'POST', url: '/v1/messages', headers: { ...as, ...headers }, payload: { connectionId: conn, chat: '@quota_chan', text: 'hi' } });
const count = async (table: 'connections' | 'chats' | 'messages' | 'audit', sub: string) =>
  (await t.sql<{ n: number }[]>`select count(*)::int as n from ${t.sql(table)} where owner = ${sub}`)[0]!.n;

function assertQuotaRefusal(res: { statusCode: number; payload: string }, quota: RegExp) {
  assert.is(res.statusCode, 403);
  const { error } = body(res);
  assert.is(error.code, 'QUOTA_EXCEEDED');
  assert.match(error.message, quota);
}

test('connections: the one past the quota is 403 QUOTA_EXCEEDED, no row, no audit entry; deleting one makes room', async () => {
  const { sub, as } = owner();
  const created = [];
  for (let i = 0; i < 3; i++) created.push(body(await createBot(as)));
  const auditBefore = await count('audit', sub);
  const res = await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'user', phone: '+12015550123' } });
  assertQuotaRefusal(res, /quota of 3 connections per owner reached \(3 in use\)/);
  assert.is(await count('connections', sub), 3);
  assert.is(await count('audit', sub), auditBefore, 'nothing audited for a refused create');
  // Another owner is not affected by this one's quota.
  assert.is((await createBot(owner().as)).statusCode, 201);
  assert.is((await t.server.inject({ method: 'DELETE', url: `/v1/connections/${created[0].id}`, headers: as })).statusCode, 204);
  assert.is((await createBot(as)).statusCode, 201);
});

test('connections: 20 parallel creates with one slot left → exactly one 201, nineteen 403', async () => {
  const { sub, as } = owner();
  for (let i = 0; i < 2; i++) assert.is((await createBot(as)).statusCode, 201);
  const answers = await Promise.all(Array.from({ length: 20 }, () => createBot(as)));
  const codes = answers.map((r) => r.statusCode).sort();
  assert.equal(codes, [201, ...Array<number>(19).fill(403)]);
  assert.ok(answers.filter((r) => r.statusCode === 403).every((r) => body(r).error.code === 'QUOTA_EXCEEDED'));
  assert.is(await count('connections', sub), 3);
});

test('chats: a new chat past the quota of a connection is 403 with nothing stored; a re-add of a stored one still refreshes', async () => {
  const { sub, as } = owner();
  const conn = body(await createBot(as)).id as string;
  assert.is((await addChat(as, conn, '@quota_one')).statusCode, 201);
  assert.is((await addChat(as, conn, '@quota_two')).statusCode, 201);
  const auditBefore = await count('audit', sub);
  assertQuotaRefusal(await addChat(as, conn, '@quota_three'), /quota of 2 chats per connection reached \(2 in use\)/);
  assert.is(await count('chats', sub), 2);
  assert.is(await count('audit', sub), auditBefore, 'the audit entry rolls back with the refused chat');
  assert.is((await addChat(as, conn, '@quota_two')).statusCode, 200, 'an existing chat is a refresh, not one more');
  // The quota is per connection: the owner's second connection has its own.
  const other = body(await createBot(as)).id as string;
  assert.is((await addChat(as, other, '@quota_three')).statusCode, 201);
});

test('chats: 10 parallel adds of different chats with one slot left → exactly one stored', async () => {
  const { as } = owner();
  const conn = body(await createBot(as)).id as string;
  assert.is((await addChat(as, conn, '@race_zero')).statusCode, 201);
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => addChat(as, conn, `@race_chat_${i}`)));
  assert.equal(answers.map((r) => r.statusCode).sort(), [201, ...Array<number>(9).fill(403)]);
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from chats where connection_id = ${conn}`;
  assert.is(n, 2);
});

test('messages: queued past the quota is 403 with nothing stored; a batch counts all or none; replays pass', async () => {
  const { sub, as } = owner();
  const conn = body(await createBot(as)).id as string;
  for (let i = 0; i < 3; i++) assert.is((await send(as, conn, { 'idempotency-key': `k${i}` })).statusCode, 202);
  const batch = (n: number) => t.server.inject({
    method: 'POST', url: '/v1/messages/batch', headers: as,
    payload: { messages: Array.from({ length: n }, (_, i) => ({ connectionId: conn, chat: '@quota_chan', text: `m${i}` })) },
  });
  const auditBefore = await count('audit', sub);
  assertQuotaRefusal(await batch(3), /quota of 5 queued messages per owner reached \(3 in use; this request adds 3\)/);
  assert.is(await count('messages', sub), 3, 'none of the batch is stored');
  assert.is(await count('audit', sub), auditBefore);
  assert.is((await batch(2)).statusCode, 202);
  assertQuotaRefusal(await send(as, conn), /\(5 in use\)/);
  // A replay adds nothing, so it is answered at the limit.
  const replay = await send(as, conn, { 'idempotency-key': 'k1' });
  assert.is(replay.statusCode, 200);
  assert.is(replay.headers['idempotent-replayed'], 'true');
  // Sent (or failed) messages are not queued any more: room comes back.
  await t.sql`update messages set status = 'sent', sent_at = now() where owner = ${sub} and idempotency_key = 'k0'`;
  await t.sql`update messages set status = 'failed' where owner = ${sub} and idempotency_key = 'k1'`;
  assert.is((await batch(2)).statusCode, 202);
  assert.is(await count('messages', sub), 7);
});

test('messages: 20 parallel sends with one slot left → exactly one 202', async () => {
  const { sub, as } = owner();
  const conn = body(await createBot(as)).id as string;
  for (let i = 0; i < 4; i++) assert.is((await send(as, conn)).statusCode, 202);
  const answers = await Promise.all(Array.from({ length: 20 }, () => send(as, conn)));
  assert.equal(answers.map((r) => r.statusCode).sort(), [202, ...Array<number>(19).fill(403)]);
  assert.is(await count('messages', sub), 5);
});

test('OpenAPI names QUOTA_EXCEEDED on the routes that can refuse', async () => {
  const spec = body(await t.server.inject({ method: 'GET', url: '/openapi.json' }));
  const refusal = (path: string) => String(spec.paths[path].post.responses['403']?.description ?? '');
  assert.match(refusal('/v1/connections'), /QUOTA_EXCEEDED/);
  assert.match(refusal('/v1/connections/{id}/chats'), /QUOTA_EXCEEDED/);
  assert.match(refusal('/v1/messages'), /QUOTA_EXCEEDED/);
  assert.match(refusal('/v1/messages/batch'), /QUOTA_EXCEEDED/);
  assert.match(String(spec.info.description), /403 `QUOTA_EXCEEDED`/);
});

test.run();
