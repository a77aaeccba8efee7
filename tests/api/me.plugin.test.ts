import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptMessages } from '../../src/store/messages.ts';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
test.before(async () => { t = await routesServer(); });
test.after(async () => { await t.close(); });

const secretMarker = 'SECRET-MARKER-7f3a';

/** A caller with a connection (secret and snapshot stored), a chat, a message and audit entries. */
async function person() {
  const sub = `u-${randomUUID()}`;
  const as = t.as(sub);
  const conn = body(await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'user', phone: '+12015550123' } }));
  await t.server.inject({ method: 'POST', url: `/v1/connections/${conn.id}/code`, headers: as, payload: { code: '12345' } });
  await t.sql`insert into connection_secrets (connection_id, name, ciphertext) values (${conn.id}, 'session', ${`local:v1:${secretMarker}`})`;
  await t.sql`update connections set snapshot = ${t.sql.json({ context: { note: secretMarker } })} where id = ${conn.id}`;
  const chat = body(await t.server.inject({ method: 'POST', url: `/v1/connections/${conn.id}/chats`, headers: as, payload: { chat: '@export_chan' } }));
  const [msg] = await acceptMessages(t.sql, sub, [{ connectionId: conn.id, chat: '@export_chan', text: 'hello <b>world</b>' }], { actor: sub });
  return { sub, as, conn, chat, message: msg!.message };
}

test('GET /v1/me/export: connections, chats, messages and audit of the caller only, no secrets', async () => {
  const a = await person();
  const b = await person();
  const res = await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: a.as });
  assert.is(res.statusCode, 200);
  assert.is(res.headers['cache-control'], 'no-store');
  assert.match(String(res.headers['content-disposition']), /^attachment; filename="personal-data-\d{4}-\d\d-\d\d\.json"$/);
  const data = body(res);
  assert.is(data.subject, a.sub);
  assert.equal(data.connections.map((c: { id: string }) => c.id), [a.conn.id]);
  assert.is(data.connections[0].phone, '+12*****0123');
  assert.equal(data.chats.map((c: { id: string }) => c.id), [a.chat.id]);
  assert.equal(data.messages.map((m: { id: string; text: string }) => [m.id, m.text]), [[a.message.id, 'hello <b>world</b>']]);
  assert.ok(data.audit.length >= 3);
  assert.ok(data.audit.every((e: { actor: string }) => e.actor === a.sub));
  assert.not.ok(res.payload.includes(secretMarker), 'secrets and snapshots are not exported');
  assert.not.ok(res.payload.includes(b.sub) || res.payload.includes(b.conn.id), 'nothing of another caller');
  assert.not.match(res.payload, /5550123/);
});

test('DELETE /v1/me: logs out through the supervisor, deletes every row of the caller, keeps others; repeatable', async () => {
  const a = await person();
  const b = await person();
  const res = await t.server.inject({ method: 'DELETE', url: '/v1/me', headers: a.as });
  assert.is(res.statusCode, 204);
  assert.ok(t.supervisor.calls.some((c) => c.method === 'removeAll' && c.args[0] === a.sub));
  const count = async (sub: string, conn: string) => (await t.sql<{ n: number }[]>`
    select (select count(*) from connections where owner = ${sub}) + (select count(*) from chats where owner = ${sub})
         + (select count(*) from messages where owner = ${sub}) + (select count(*) from audit where owner = ${sub})
         + (select count(*) from connection_secrets where connection_id = ${conn})::int as n`)[0]!.n;
  assert.is(Number(await count(a.sub, a.conn.id)), 0);
  assert.ok(Number(await count(b.sub, b.conn.id)) >= 6, 'the other caller keeps everything');
  const empty = body(await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: a.as }));
  assert.equal([empty.connections, empty.chats, empty.messages, empty.audit], [[], [], [], []]);
  assert.is((await t.server.inject({ method: 'DELETE', url: '/v1/me', headers: a.as })).statusCode, 204);
});

test('rows left behind by the supervisor are deleted too (an actor that failed to stop)', async () => {
  const a = await person();
  const removeAll = t.supervisor.removeAll;
  t.supervisor.removeAll = async () => 0; // the supervisor removed nothing
  try {
    assert.is((await t.server.inject({ method: 'DELETE', url: '/v1/me', headers: a.as })).statusCode, 204);
  } finally {
    t.supervisor.removeAll = removeAll;
  }
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from connections where owner = ${a.sub}`;
  assert.is(n, 0);
});

test.run();
