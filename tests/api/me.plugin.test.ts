import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exportSchema } from '../../src/api/schemas.ts';
import { readEvents } from '../../src/store/events.ts';
import { listAudit, toAuditView } from '../../src/store/audit.ts';
import { toChat, type ChatRow } from '../../src/store/chats.ts';
import { toConnection, type ConnectionRow } from '../../src/store/connections.ts';
import { consentHistory, toConsent } from '../../src/store/consents.ts';
import { acceptMessages, type MessageRow } from '../../src/store/messages.ts';
import { toApiUpload, type UploadRow } from '../../src/store/uploads.ts';
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

/** The whole export as the former in-memory implementation built it: every row at once, same order. */
async function reference(sub: string, exportedAt: string) {
  const connections = await t.sql<ConnectionRow[]>`select * from connections where owner = ${sub} order by created_at, id`;
  const chats = await t.sql<ChatRow[]>`select * from chats where owner = ${sub} order by created_at, id`;
  const messages = await t.sql<MessageRow[]>`select * from messages where owner = ${sub} order by created_at, id`;
  const audit = await listAudit(t.sql, { owner: sub, limit: 1_000_000 });
  return {
    subject: sub,
    exportedAt,
    connections: connections.map(toConnection),
    chats: chats.map(toChat),
    messages: messages.map((r) => ({
      id: r.id, connectionId: r.connection_id, chat: r.chat, platformChatId: r.platform_chat_id, text: r.text, parseMode: r.parse_mode,
      silent: r.silent, replyTo: r.reply_to, priority: r.priority, status: r.status, attempts: r.attempts,
      platformMessageId: r.platform_message_id,
      error: r.error ? { code: r.error.code, message: r.error.message, ...(r.error.retryAt && { retryAt: r.error.retryAt }) } : null,
      idempotencyKey: r.idempotency_key, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
      sentAt: r.sent_at?.toISOString() ?? null,
      media: r.media, editedAt: r.edited_at?.toISOString() ?? null, deletedAt: r.deleted_at?.toISOString() ?? null,
      operation: r.op ? { type: r.op, messageId: r.target_id } : null,
      direction: r.direction, from: r.sender,
    })),
    uploads: (await t.sql<UploadRow[]>`select * from uploads where owner = ${sub} and completed_at is not null order by created_at, id`).map(toApiUpload),
    audit: audit.map(toAuditView),
    consents: (await consentHistory(t.sql, sub, { limit: 1_000_000 })).map(toConsent),
    events: (await readEvents(t.sql, sub, { afterPos: 0, limit: 1_000_000 }))
      .map((e) => ({ id: e.id, pos: e.pos, type: e.type, occurredAt: e.occurredAt, connectionId: e.connectionId ?? null, data: e.data })),
  };
}

test('GET /v1/me/export streamed: byte for byte the document the in-memory export made, across pages and equal timestamps', async () => {
  const a = await person();
  // More than one 500-row page per section, many rows sharing one created_at (the keyset's tie-break is the id).
  const at = '2026-03-01T10:00:00.123456Z';
  await t.sql`insert into connections (id, owner, platform, kind, status, shard, created_at)
              select gen_random_uuid(), ${a.sub}, 'telegram', 'bot', 'active', 0, ${at}::timestamptz from generate_series(1, 3)`;
  await t.sql`insert into chats (id, owner, connection_id, platform_chat_id, type, title, created_at)
              select gen_random_uuid(), ${a.sub}, ${a.conn.id}, '-100' || n, 'channel', 'chat ' || n, ${at}::timestamptz from generate_series(1, 501) n`;
  await t.sql`insert into messages (id, owner, connection_id, chat, text, status, shard, created_at, error)
              select gen_random_uuid(), ${a.sub}, ${a.conn.id}, '@c', 'text ' || n || ' "quoted" \u2713', 'failed', 0, ${at}::timestamptz,
                     '{"code":"MESSAGE_EXPIRED","message":"expired"}'::jsonb
              from generate_series(1, 1201) n`;
  await t.sql`insert into audit (owner, actor, action, target) select ${a.sub}, ${a.sub}, 'bulk', n::text from generate_series(1, 1100) n`;
  await t.sql`insert into consents (owner, purpose, version, granted, at)
              select ${a.sub}, case when n % 2 = 0 then 'processing' else 'message-retention' end, 'v' || n, n % 3 <> 0, ${at}::timestamptz
              from generate_series(1, 501) n`;

  const res = await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: a.as });
  assert.is(res.statusCode, 200);
  assert.is(res.headers['content-type'], 'application/json; charset=utf-8');
  assert.is(res.headers['content-length'], undefined, 'streamed, not built whole');
  const data = body(res);
  assert.is(res.payload, JSON.stringify(data), 'the formatting of JSON.stringify: no spaces, same key order');
  assert.equal(data, await reference(a.sub, data.exportedAt));
  assert.equal([data.connections.length, data.chats.length, data.messages.length, data.consents.length], [4, 502, 1202, 501]);
  assert.ok(data.audit.length >= 1103);
  assert.is(new Set(data.messages.map((m: { id: string }) => m.id)).size, 1202, 'no row twice across the pages');
  // The route's documented schema, checked here on the whole document since Hapi cannot on a stream.
  const { error } = exportSchema.validate(data);
  assert.is(error, undefined);
});

test('GET /v1/me/export: a field outside the contract never reaches the client, at the first row or mid-stream', async () => {
  const marker = 'LEAK-5d1e';
  const a = await person();
  // A login step that stored more than the contract names (say a code hash): the first page fails → 500, nothing sent.
  await t.sql`update connections set login = ${t.sql.json({ method: 'phone', phoneCodeHash: marker })} where id = ${a.conn.id}`;
  const first = await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: a.as });
  assert.is(first.statusCode, 500);
  assert.is(body(first).error.code, 'INTERNAL');
  assert.not.ok(first.payload.includes(marker));

  const b = await person();
  // A chat row the schema refuses, after the connections were already written: the stream ends there.
  await t.sql`update chats set rights = ${t.sql.json({ postMessages: marker })} where id = ${b.chat.id}`;
  // Hapi ends the response when its stream fails after the head went out: the client (here shot)
  // sees a broken response, never a complete document, and never the row.
  const mid = await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: b.as }).then((r) => r.payload, (e: Error) => e);
  assert.instance(mid, Error);
  assert.not.ok(String((mid as Error & { data?: unknown }).message).includes(marker));
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
  assert.equal([empty.connections, empty.chats, empty.messages, empty.audit, empty.consents], [[], [], [], [], []]);
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
