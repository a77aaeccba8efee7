// Media, edits and deletes end to end: the whole daemon (startApp) on real Postgres against the
// emulator over real sockets. Files go in by upload and by URL (a file server on this machine, named
// in EGRESS_ALLOW_HOSTS), through a user account (MTProto parts + sendMedia) and a bot (multipart),
// and reach the chat once each with the same SHA-256; edits and deletes go through the outbox.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp, type App } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

interface World {
  emu: Emulator; db: TestDatabase; app: App; secret: string; files: Server; filesBase: string; served: Map<string, Buffer>;
  owner: string; account: Conn; bot: Conn;
}
interface Conn { id: string; chat: string; platformChat: number }
const test = suite<World>('media e2e', { served: new Map() } as unknown as World);

const MB = 1024 * 1024;

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const stamp = randomBytes(3).toString('hex');
let n = 0;

test.before(async (w) => {
  try {
    await setUp(w);
  } catch (err) {
    console.error('media e2e setup failed', err); // uvu hides an error thrown by a hook
    throw err;
  }
});

async function setUp(w: World) {
  w.emu = await startEmulator();
  w.db = await createTestDatabase();
  w.files = createServer((req, res) => {
    const body = w.served.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': req.url!.endsWith('.jpg') ? 'image/jpeg' : 'application/pdf', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => w.files.listen(0, '127.0.0.1', r));
  const port = (w.files.address() as AddressInfo).port;
  w.filesBase = `http://127.0.0.1:${port}`;
  w.secret = randomBytes(32).toString('base64url');
  const config = {
    ...loadConfig({
      // Emulator, client and daemon share this event loop: its lag measures the harness, not the service.
      OVERLOAD_LAG_MS: '0',
      DATABASE_URL: w.db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'media-e2e-')), JWT_SECRET: w.secret, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'media-e2e', TELEGRAM_DC: w.emu.mtproto, TELEGRAM_SERVER_KEYS: w.emu.serverKeys,
      TELEGRAM_BOT_API_URL: w.emu.botApi, RATE_LIMIT_CONNECT: '1000', RATE_LIMIT_SEND: '10000', EGRESS_ALLOW_HOSTS: `127.0.0.1:${port}`,
      BACKOFF_BASE_MS: '100', BACKOFF_CAP_MS: '1000',
    }),
    port: 0,
  };
  w.app = await startApp(config);
  w.owner = `media-${stamp}`;

  // A user account logged in over HTTP, and a bot; one channel each (the account creates it, the bot posts as admin).
  const phone = `+1201555${String(2000 + (process.pid % 50) * 100).slice(-4)}`;
  const { userId } = await w.emu.createUser({ phone, firstName: 'Media' });
  const created = await call(w, w.owner, 'POST', '/v1/connections', { platform: 'telegram', kind: 'user', phone });
  await until(() => w.emu.lastCode(phone) !== undefined, 10_000, 'login code');
  const active = await call(w, w.owner, 'POST', `/v1/connections/${created.body.id}/code`, { code: w.emu.lastCode(phone)!.code });
  assert.is(active.body.status, 'active', JSON.stringify(active.body));
  const bot = w.emu.createBot({ username: `media${stamp}_bot` });
  const botConn = await call(w, w.owner, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(botConn.status, 201, JSON.stringify(botConn.body));
  const channel = async (connectionId: string, member: { id: number; role: 'creator' | 'admin' }) => {
    const username = `media${stamp}c${n++}`;
    const { chatId } = w.emu.createChat({ type: 'channel', title: username, username, members: [member] });
    const chat = await call(w, w.owner, 'POST', `/v1/connections/${connectionId}/chats`, { chat: `@${username}` });
    assert.is(chat.status, 201, JSON.stringify(chat.body));
    return { id: connectionId, chat: chat.body.id as string, platformChat: chatId };
  };
  w.account = await channel(created.body.id, { id: userId, role: 'creator' });
  w.bot = await channel(botConn.body.id, { id: bot.botId, role: 'admin' });
}

test.after(async (w) => {
  await w.app?.stop();
  await w.emu?.stop();
  await w.db?.drop();
  w.files?.close();
});

async function call(w: World, sub: string, method: string, path: string, body?: unknown) {
  const res = await fetch(w.app.url + path, {
    method,
    headers: { authorization: `Bearer ${mintToken({ secret: w.secret, sub })}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as any };
}

async function upload(w: World, sub: string, file: Buffer, type: string, name: string) {
  const res = await fetch(`${w.app.url}/v1/uploads?filename=${name}`, {
    method: 'POST', body: file, headers: { authorization: `Bearer ${mintToken({ secret: w.secret, sub })}`, 'content-type': type },
  });
  return { status: res.status, body: (await res.json()) as any };
}

const final = async (w: World, id: string) => {
  await until(async () => ['sent', 'failed'].includes((await call(w, w.owner, 'GET', `/v1/messages/${id}`)).body.status), 30_000, `message ${id} final`);
  return (await call(w, w.owner, 'GET', `/v1/messages/${id}`)).body;
};

test('a 3 MB document and a photo, by upload and by URL, through an account and a bot: each reaches the chat once, sha256 equal', async (w) => {
  const doc = randomBytes(3 * MB + 17);
  const photo = randomBytes(300_000);
  w.served.set('/report.pdf', doc);
  w.served.set('/cat.jpg', photo);
  const docUpload = await upload(w, w.owner, doc, 'application/pdf', 'report.pdf');
  const photoUpload = await upload(w, w.owner, photo, 'image/jpeg', 'cat.jpg');
  assert.equal([docUpload.status, docUpload.body.sha256, photoUpload.body.sha256], [201, sha(doc), sha(photo)]);
  const cases = [
    { type: 'document', source: { uploadId: docUpload.body.id }, file: doc, how: 'upload' },
    { type: 'photo', source: { uploadId: photoUpload.body.id }, file: photo, how: 'upload' },
    { type: 'document', source: { url: `${w.filesBase}/report.pdf` }, file: doc, how: 'url' },
    { type: 'photo', source: { url: `${w.filesBase}/cat.jpg` }, file: photo, how: 'url' },
  ];
  const sent: Array<{ id: string; caption: string; file: Buffer; chat: number }> = [];
  for (const conn of [w.account, w.bot]) {
    for (const c of cases) {
      const caption = `${stamp} ${conn === w.bot ? 'bot' : 'account'} ${c.type} by ${c.how}`;
      const r = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: conn.id, chat: conn.chat, text: caption, media: { type: c.type, ...c.source } });
      assert.is(r.status, 202, JSON.stringify(r.body));
      sent.push({ id: r.body.id, caption, file: c.file, chat: conn.platformChat });
    }
  }
  for (const s of sent) {
    const m = await final(w, s.id);
    assert.is(m.status, 'sent', `${s.caption}: ${JSON.stringify(m.error)}`);
    assert.equal([m.media.size, m.media.sha256], [s.file.length, sha(s.file)], s.caption);
    const inChat = w.emu.delivered({ chatId: s.chat }).filter((d) => d.text === s.caption);
    assert.is(inChat.length, 1, `${s.caption} reached the chat once`);
    assert.equal([inChat[0]!.media!.size, inChat[0]!.media!.sha256], [s.file.length, sha(s.file)], s.caption);
  }
});

test('refused at accept: URLs to 127.0.0.1 (not allowed), 169.254.169.254, 10.0.0.1 → 422 EGRESS_FORBIDDEN; a photo over 10 MB → 422 PLATFORM_UNSUPPORTED', async (w) => {
  for (const url of ['http://127.0.0.1:9/file.pdf', 'https://127.0.0.1/file.pdf', 'https://169.254.169.254/latest/meta-data/', 'https://10.0.0.1/file.pdf', 'https://[::ffff:10.0.0.1]/f']) {
    const r = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: w.bot.id, chat: w.bot.chat, media: { type: 'document', url } });
    assert.is(r.status, 422, url);
    assert.is(r.body.error.code, 'EGRESS_FORBIDDEN', url);
    assert.is(r.body.error.details[0].path, 'media.url');
  }
  const big = await upload(w, w.owner, randomBytes(11 * MB), 'image/jpeg', 'big.jpg');
  const r = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: w.account.id, chat: w.account.chat, media: { type: 'photo', uploadId: big.body.id } });
  assert.equal([r.status, r.body.error.code], [422, 'PLATFORM_UNSUPPORTED']);
  const [{ n: stored }] = await w.db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${w.owner} and media->>'uploadId' = ${big.body.id}`;
  assert.is(stored, 0);
});

test('a 60 MB upload → 413, nothing stored', async (w) => {
  const count = async () => (await w.db.sql<{ u: number; c: number }[]>`select (select count(*) from uploads)::int as u, (select count(*) from upload_chunks)::int as c`)[0]!;
  const before = await count();
  const r = await upload(w, w.owner, Buffer.alloc(60 * MB), 'video/mp4', 'big.mp4');
  assert.equal([r.status, r.body.error.code], [413, 'PAYLOAD_TOO_LARGE']);
  assert.equal(await count(), before);
});

test('tenancy: another caller\'s upload id is 404 in a message; another caller\'s message is 404 to read, edit or delete', async (w) => {
  const mine = await upload(w, w.owner, randomBytes(1000), 'text/plain', 'a.txt');
  const other = `other-${stamp}`;
  const bot = w.emu.createBot({ username: `media${stamp}o_bot` });
  const conn = await call(w, other, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  const r = await call(w, other, 'POST', '/v1/messages', { connectionId: conn.body.id, chat: '-1001', media: { type: 'document', uploadId: mine.body.id } });
  assert.equal([r.status, r.body.error.code, r.body.error.details[0].path], [404, 'NOT_FOUND', 'media.uploadId']);
  assert.is((await call(w, other, 'GET', `/v1/uploads/${mine.body.id}`)).status, 404);
  const msg = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: w.bot.id, chat: w.bot.chat, text: `${stamp} tenancy` });
  for (const [method, body] of [['GET', undefined], ['PATCH', { text: 'hijacked' }], ['DELETE', undefined]] as const) {
    const res = await call(w, other, method, `/v1/messages/${msg.body.id}`, body);
    assert.equal([res.status, res.body.error.code], [404, 'NOT_FOUND'], method);
  }
  await final(w, msg.body.id);
});

test('edit and delete of sent messages go through the outbox: applied once in the chat; MESSAGE_NOT_MODIFIED at accept', async (w) => {
  const ids: Record<string, { id: string; chat: number }> = {};
  for (const conn of [w.account, w.bot]) {
    const who = conn === w.bot ? 'bot' : 'account';
    const text = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: conn.id, chat: conn.chat, text: `${stamp} ${who} v1` });
    const file = await upload(w, w.owner, randomBytes(5000), 'application/pdf', 'c.pdf');
    const doc = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: conn.id, chat: conn.chat, text: `${stamp} ${who} caption v1`, media: { type: 'document', uploadId: file.body.id } });
    const gone = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: conn.id, chat: conn.chat, text: `${stamp} ${who} to delete` });
    for (const [k, r] of [['text', text], ['doc', doc], ['gone', gone]] as const) {
      assert.is((await final(w, r.body.id)).status, 'sent');
      ids[`${who}-${k}`] = { id: r.body.id, chat: conn.platformChat };
    }
  }
  for (const who of ['account', 'bot']) {
    const edit = await call(w, w.owner, 'PATCH', `/v1/messages/${ids[`${who}-text`]!.id}`, { text: `${stamp} ${who} v2` });
    assert.is(edit.status, 202, JSON.stringify(edit.body));
    assert.equal([edit.body.status, edit.body.pendingOperation.type, edit.body.pendingOperation.text], ['sent', 'edit', `${stamp} ${who} v2`]);
    const same = await call(w, w.owner, 'PATCH', `/v1/messages/${ids[`${who}-text`]!.id}`, { text: `${stamp} ${who} v2` });
    assert.equal([same.status, same.body.error.code], [422, 'MESSAGE_NOT_MODIFIED']);
    assert.is((await call(w, w.owner, 'PATCH', `/v1/messages/${ids[`${who}-doc`]!.id}`, { text: `${stamp} ${who} caption v2` })).status, 202);
    const del = await call(w, w.owner, 'DELETE', `/v1/messages/${ids[`${who}-gone`]!.id}`);
    assert.equal([del.status, del.body.pendingOperation.type], [202, 'delete']);
  }
  const settled = async (id: string) => {
    await until(async () => !(await call(w, w.owner, 'GET', `/v1/messages/${id}`)).body.pendingOperation, 30_000, `operations on ${id}`);
    return (await call(w, w.owner, 'GET', `/v1/messages/${id}`)).body;
  };
  for (const who of ['account', 'bot']) {
    const t = await settled(ids[`${who}-text`]!.id);
    assert.equal([t.text, typeof t.editedAt], [`${stamp} ${who} v2`, 'string']);
    const d = await settled(ids[`${who}-doc`]!.id);
    assert.is(d.text, `${stamp} ${who} caption v2`);
    const g = await settled(ids[`${who}-gone`]!.id);
    assert.equal([g.status, typeof g.deletedAt], ['sent', 'string']);
    const chat = w.emu.delivered({ chatId: ids[`${who}-text`]!.chat });
    const find = (prefix: string) => chat.filter((m) => m.text.startsWith(`${stamp} ${who} ${prefix}`));
    assert.equal(find('v').map((m) => [m.text, m.edits]), [[`${stamp} ${who} v2`, 1]], `${who}: the text edited once`);
    assert.equal(find('caption').map((m) => [m.text, m.edits]), [[`${stamp} ${who} caption v2`, 1]], `${who}: the caption edited once`);
    assert.equal(find('to delete').map((m) => m.deleted), [true], `${who}: deleted in the chat`);
  }
});

test('DELETE of a queued message cancels it: never sent', async (w) => {
  // A flood wait keeps the bot's next message queued (retried in 60 s); cancelling it stops it there.
  w.emu.fault({ type: 'flood-wait', target: (await w.db.sql<{ platform_user_id: string }[]>`select platform_user_id from connections where id = ${w.bot.id}`)[0]!.platform_user_id, seconds: 60 });
  const m = await call(w, w.owner, 'POST', '/v1/messages', { connectionId: w.bot.id, chat: w.bot.chat, text: `${stamp} never` });
  await until(async () => (await call(w, w.owner, 'GET', `/v1/messages/${m.body.id}`)).body.error?.code === 'TG_API_429', 15_000, 'flood wait');
  const del = await call(w, w.owner, 'DELETE', `/v1/messages/${m.body.id}`);
  assert.equal([del.status, del.body.status, del.body.pendingOperation], [202, 'cancelled', undefined]);
  assert.is((await call(w, w.owner, 'DELETE', `/v1/messages/${m.body.id}`)).body.status, 'cancelled', 'again: the same answer');
  const listed = await call(w, w.owner, 'GET', `/v1/messages?status=cancelled&connectionId=${w.bot.id}`);
  assert.equal(listed.body.items.map((x: { id: string }) => x.id), [m.body.id]);
  assert.equal(w.emu.delivered().filter((d) => d.text === `${stamp} never`), []);
});

test.run();
