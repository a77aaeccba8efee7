// The media, edit and delete parts of /v1/messages over server.inject, against a test double of the
// connection service (a real owner-scoped row, status `active`): what each kind takes by its send
// capabilities (PLATFORM_UNSUPPORTED), malformed input (400), other callers' ids (404), the answers of
// PATCH and DELETE. Nothing is sent here; delivery is media.e2e.test.ts's.
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { messagesPlugin } from '../../src/api/messages.plugin.ts';
import { AppError } from '../../src/errors.ts';
import { saveFile } from '../../src/media/files.ts';
import { Egress } from '../../src/net/egress.ts';
import type { SendCapabilities } from '../../src/platforms/adapter.ts';
import { markSendingMany, markSentMany } from '../../src/store/messages.ts';
import { getConnection, insertConnection, toConnection, type Connection } from '../../src/store/connections.ts';
import type { ConnectionService } from '../../src/connections/types.ts';
import { telegramCapabilities } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, shellServer } from './shell-server.ts';

let db: TestDatabase;
let shell: Awaited<ReturnType<typeof shellServer>>;
const egress = new Egress();
const telegram = telegramCapabilities();
// A kind that sends text only: no media, no edits, no deletes.
const textOnly: SendCapabilities = { text: { maxLength: 1000, parseModes: [] }, resendSafe: false, pacing: () => ({ chat: [], connection: [] }) };
// A kind that posts carousels of 2 or 3 photos of at most 4 KiB each.
const carousels: SendCapabilities = { ...textOnly, media: { types: { photo: { maxBytes: 4096 }, document: { maxBytes: 4096 } }, captionMaxLength: 100, carousel: { minItems: 2, maxItems: 3, types: ['photo'] } } };
const capabilities = (platform: string, kind: string) => (platform === 'fake' ? (kind === 'carousel' ? carousels : textOnly) : telegram(platform, kind));

const connections: ConnectionService = (() => {
  const unused = () => { throw new Error('not used by the messages routes'); };
  const get = async (owner: string, id: string): Promise<Connection> => {
    const row = await getConnection(db.sql, owner, id);
    if (!row) throw new AppError('NOT_FOUND', 'not found');
    return { ...toConnection(row), status: 'active' };
  };
  return {
    get, create: unused, list: unused, submitCode: unused, submitPassword: unused, qr: unused,
    reconnect: unused, remove: unused, removeAll: unused, stopAll: unused, checkChat: unused, chatRef: unused, actors: unused, actorPages: unused, actor: unused, restart: unused,
  };
})();

test.before(async () => {
  db = await createTestDatabase();
  await db.sql`insert into platform_kinds (platform, kind) values ('fake', 'token'), ('fake', 'carousel') on conflict do nothing`;
  shell = await shellServer({ rateLimit: { connect: 10_000, send: 10_000, status: 100_000 } });
  await shell.server.register({ plugin: messagesPlugin, options: { sql: db.sql, connections, delivery: { notify: () => undefined }, capabilities, egress } });
  await shell.server.initialize();
});
test.after(async () => {
  await shell.server.stop();
  await egress.close();
  await db.drop();
});

const json = (res: { payload: string }) => JSON.parse(res.payload) as Record<string, any>;
const inject = (method: string, url: string, sub: string, payload?: unknown) =>
  shell.server.inject({ method, url, headers: bearer(shell.token(sub)), ...(payload === undefined ? {} : { payload: payload as object }) });
const limits = { maxBytes: 60 * 1024 * 1024, retentionHours: 24, deadlineMs: 60_000 };

async function caller(platform = 'telegram', kind = 'bot') {
  const sub = `u-${randomUUID()}`;
  const conn = randomUUID();
  await insertConnection(db.sql, { id: conn, owner: sub, platform, kind, shard: 0, machineVersion: 1 });
  const file = await saveFile(db.sql, sub, [randomBytes(2048)], { contentType: 'application/pdf', filename: 'a.pdf' }, limits);
  return { sub, conn, file: file.id };
}

test('a document by upload: 202 with the file\'s facts; text optional (it is the caption)', async () => {
  const c = await caller();
  const res = await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', media: { type: 'document', uploadId: c.file } });
  assert.is(res.statusCode, 202, res.payload);
  const m = json(res);
  assert.equal([m.text, m.media.type, m.media.uploadId, m.media.filename, m.media.size, m.media.contentType], ['', 'document', c.file, 'a.pdf', 2048, 'application/pdf']);
  const caption = await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', media: { type: 'photo', uploadId: c.file, caption: 'look', filename: 'x.jpg' } });
  assert.equal([json(caption).text, json(caption).media.filename], ['look', 'x.jpg']);
});

test('malformed media → 400 naming the field', async () => {
  const c = await caller();
  const base = { connectionId: c.conn, chat: '@chan_x' };
  for (const [media, path] of [
    [{ type: 'sticker', uploadId: c.file }, 'media.type'],
    [{ type: 'photo' }, 'media'],
    [{ type: 'photo', uploadId: c.file, url: 'https://example.com/a.jpg' }, 'media'],
    [{ type: 'photo', url: 'not a url' }, 'media.url'],
    [{ type: 'photo', uploadId: 'nope' }, 'media.uploadId'],
    [{ type: 'photo', uploadId: c.file, filename: '../x' }, 'media.filename'],
    [{ type: 'photo', uploadId: c.file, extra: 1 }, 'media.extra'],
  ] as const) {
    const res = await inject('POST', '/v1/messages', c.sub, { ...base, media });
    assert.is(res.statusCode, 400, JSON.stringify(media));
    assert.ok(json(res).error.details.some((d: { path: string }) => d.path === path), `${JSON.stringify(media)}: ${res.payload}`);
  }
  const both = await inject('POST', '/v1/messages', c.sub, { ...base, text: 'a', media: { type: 'photo', uploadId: c.file, caption: 'b' } });
  assert.equal([both.statusCode, json(both).error.details[0].path], [400, 'media.caption']);
  assert.is((await inject('POST', '/v1/messages', c.sub, base)).statusCode, 400, 'no text and no media');
});

test('PLATFORM_UNSUPPORTED: a kind without media; a photo over Telegram\'s 10 MB; a caption over 1024 → 400', async () => {
  const fake = await caller('fake', 'token');
  const r = await inject('POST', '/v1/messages', fake.sub, { connectionId: fake.conn, chat: '@chan_x', media: { type: 'document', uploadId: fake.file } });
  assert.equal([r.statusCode, json(r).error.code, json(r).error.details[0].path], [422, 'PLATFORM_UNSUPPORTED', 'media.type']);
  const c = await caller();
  const big = await saveFile(db.sql, c.sub, [Buffer.alloc(11 * 1024 * 1024)], { contentType: 'image/jpeg', filename: 'b.jpg' }, limits);
  const photo = await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', media: { type: 'photo', uploadId: big.id } });
  assert.equal([photo.statusCode, json(photo).error.code, json(photo).error.details[0].path], [422, 'PLATFORM_UNSUPPORTED', 'media.uploadId']);
  assert.match(json(photo).error.message, 'photo files up to 10 MB; send it as a document');
  const asDocument = await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', media: { type: 'document', uploadId: big.id } });
  assert.is(asDocument.statusCode, 202, 'the same file as a document is fine');
  const long = await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', text: 'x'.repeat(1025), media: { type: 'document', uploadId: c.file } });
  assert.equal([long.statusCode, json(long).error.details[0].path], [400, 'text']);
  // In a batch the details name the message.
  const batch = await inject('POST', '/v1/messages/batch', fake.sub, { messages: [{ connectionId: fake.conn, chat: '@chan_x', text: 'ok' }, { connectionId: fake.conn, chat: '@chan_x', media: { type: 'voice', uploadId: fake.file } }] });
  assert.equal([batch.statusCode, json(batch).error.details[0].path], [422, 'messages.1.media.type']);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${fake.sub}`;
  assert.is(n, 0, 'all or none');
});

test('a carousel: each file the caller\'s and unexpired (404), within its type\'s size and of a type the carousel holds (422), 2 to 3 files (400)', async () => {
  const c = await caller('fake', 'carousel');
  const small = await saveFile(db.sql, c.sub, [randomBytes(1024)], { contentType: 'image/jpeg', filename: 's.jpg' }, limits);
  const big = await saveFile(db.sql, c.sub, [randomBytes(8192)], { contentType: 'image/jpeg', filename: 'b.jpg' }, limits);
  const other = await caller('fake', 'carousel');
  const post = (items: unknown[]) => inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@feed', text: 'two', items });
  const ok = await post([{ type: 'photo', uploadId: small.id }, { type: 'photo', uploadId: small.id }]);
  assert.is(ok.statusCode, 202, ok.payload);
  const foreign = await post([{ type: 'photo', uploadId: small.id }, { type: 'photo', uploadId: other.file }]);
  assert.equal([foreign.statusCode, json(foreign).error.code, json(foreign).error.details[0].path], [404, 'NOT_FOUND', 'items.1.uploadId']);
  const tooBig = await post([{ type: 'photo', uploadId: big.id }, { type: 'photo', uploadId: small.id }]);
  assert.equal([tooBig.statusCode, json(tooBig).error.code, json(tooBig).error.details[0].path], [422, 'PLATFORM_UNSUPPORTED', 'items.0.uploadId']);
  assert.match(json(tooBig).error.message, 'photo files up to 0 MB');
  assert.not.match(json(tooBig).error.message, 'send it as a document');
  const notHeld = await post([{ type: 'photo', uploadId: small.id }, { type: 'document', uploadId: small.id }]);
  assert.equal([notHeld.statusCode, json(notHeld).error.details[0].path], [422, 'items.1.type']);
  const four = await post(Array.from({ length: 4 }, () => ({ type: 'photo', uploadId: small.id })));
  assert.equal([four.statusCode, json(four).error.code], [400, 'VALIDATION_ERROR']);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${c.sub}`;
  assert.is(n, 1, 'only the accepted carousel is stored');
});

test('a template through a kind without templates (a Telegram bot) → 422 PLATFORM_UNSUPPORTED, nothing stored', async () => {
  const c = await caller();
  const r = await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', template: { name: 'hello_world', language: 'en_US' } });
  assert.equal([r.statusCode, json(r).error.code, json(r).error.details[0].path], [422, 'PLATFORM_UNSUPPORTED', 'template']);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${c.sub}`;
  assert.is(n, 0);
});

test('uploads: another caller\'s, an expired or an unknown one → 404; URLs the egress guard refuses → 422 EGRESS_FORBIDDEN', async () => {
  const a = await caller();
  const b = await caller();
  for (const uploadId of [a.file, randomUUID()]) {
    const r = await inject('POST', '/v1/messages', b.sub, { connectionId: b.conn, chat: '@chan_x', media: { type: 'document', uploadId } });
    assert.equal([r.statusCode, json(r).error.code, json(r).error.details[0].path], [404, 'NOT_FOUND', 'media.uploadId']);
  }
  await db.sql`update uploads set expires_at = now() - interval '1 second' where id = ${b.file}`;
  assert.is((await inject('POST', '/v1/messages', b.sub, { connectionId: b.conn, chat: '@chan_x', media: { type: 'document', uploadId: b.file } })).statusCode, 404);
  for (const url of ['http://example.com/a.pdf', 'https://10.0.0.1/a.pdf', 'https://169.254.169.254/a', 'https://[::ffff:127.0.0.1]/a']) {
    const r = await inject('POST', '/v1/messages', a.sub, { connectionId: a.conn, chat: '@chan_x', media: { type: 'document', url } });
    assert.equal([r.statusCode, json(r).error.code], [422, 'EGRESS_FORBIDDEN'], url);
  }
  const ok = await inject('POST', '/v1/messages', a.sub, { connectionId: a.conn, chat: '@chan_x', media: { type: 'document', url: 'https://files.example.com/a.pdf' } });
  assert.is(ok.statusCode, 202, 'a public https URL is accepted (its address is judged when fetched)');
  assert.equal(json(ok).media, { type: 'document', url: 'https://files.example.com/a.pdf' });
});

test('PATCH / DELETE: 404 for other callers and malformed ids, 400 for malformed bodies, PLATFORM_UNSUPPORTED where the kind has none', async () => {
  const c = await caller();
  const sent = json(await inject('POST', '/v1/messages', c.sub, { connectionId: c.conn, chat: '@chan_x', text: 'v1' }));
  const [row] = await db.sql<{ publish_seq: number }[]>`select publish_seq from messages where id = ${sent.id}`;
  await markSendingMany(db.sql, [{ id: sent.id, seq: row!.publish_seq }], 60_000);
  await markSentMany(db.sql, [{ id: sent.id, platformMessageId: '5' }]);
  for (const id of [sent.id, randomUUID()]) {
    assert.is((await inject('PATCH', `/v1/messages/${id}`, 'someone-else', { text: 'x' })).statusCode, 404);
    assert.is((await inject('DELETE', `/v1/messages/${id}`, 'someone-else')).statusCode, 404);
  }
  assert.is((await inject('PATCH', '/v1/messages/not-a-uuid', c.sub, { text: 'x' })).statusCode, 404);
  for (const body of [{}, { text: '' }, { text: '   ' }, { text: 'x'.repeat(4097) }, { text: 'x', other: 1 }]) {
    assert.is((await inject('PATCH', `/v1/messages/${sent.id}`, c.sub, body)).statusCode, 400, JSON.stringify(body).slice(0, 40));
  }
  const edit = await inject('PATCH', `/v1/messages/${sent.id}`, c.sub, { text: 'v2' });
  assert.is(edit.statusCode, 202);
  assert.equal([json(edit).text, json(edit).pendingOperation.type, json(edit).pendingOperation.status, json(edit).pendingOperation.text], ['v1', 'edit', 'queued', 'v2']);
  const listed = json(await inject('GET', `/v1/messages?connectionId=${c.conn}`, c.sub));
  assert.equal(listed.items.map((m: { id: string; pendingOperation?: { type: string } }) => [m.id, m.pendingOperation?.type]), [[sent.id, 'edit']], 'the operation row itself is not listed');
  assert.equal([(await inject('PATCH', `/v1/messages/${sent.id}`, c.sub, { text: 'v2' })).statusCode], [422]);

  const fake = await caller('fake', 'token');
  const m = json(await inject('POST', '/v1/messages', fake.sub, { connectionId: fake.conn, chat: '@chan_x', text: 'hi' }));
  await db.sql`update messages set status = 'sent', attempts = 1 where id = ${m.id}`;
  const r = await inject('PATCH', `/v1/messages/${m.id}`, fake.sub, { text: 'changed' });
  assert.equal([r.statusCode, json(r).error.code], [422, 'PLATFORM_UNSUPPORTED']);
  assert.equal([(await inject('DELETE', `/v1/messages/${m.id}`, fake.sub)).statusCode], [422]);
  const queued = json(await inject('POST', '/v1/messages', fake.sub, { connectionId: fake.conn, chat: '@chan_x', text: 'later' }));
  const cancelled = await inject('DELETE', `/v1/messages/${queued.id}`, fake.sub);
  assert.equal([cancelled.statusCode, json(cancelled).status], [202, 'cancelled'], 'a queued message is cancelled whatever the kind');
});

test.run();
