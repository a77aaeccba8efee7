import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp, type App } from '../../../src/app.ts';
import { mintToken } from '../../../src/auth/token.ts';
import { loadConfig } from '../../../src/config.ts';
import { resolveApps } from '../../emulator/platforms/registry.ts';
import { realClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { browse, ctl } from '../../emulator/support/platform-client.ts';
import { startThreadsEmulator } from '../../emulator/threads/index.ts';
import { startInstagramEmulator } from '../../emulator/instagram/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { until } from '../../helpers/stack.ts';
import { freePort } from '../../helpers/private-services.ts';

// The whole daemon (startApp) with Instagram and Threads configured (META_APP_ID, INSTAGRAM_API_URL,
// INSTAGRAM_OAUTH_URL, THREADS_API_URL, THREADS_OAUTH_URL) against the emulators over real sockets. Threads: POST /v1/connections → the authorize URL, followed like a
// browser through the emulator's redirect to the daemon's own callback → 302 back with status=active;
// POST /v1/messages (no chat: a post to the account) → sent once, seen once in the emulator; the
// quota in the connection's answer; another caller's connection is 404; no token in any answer.
// Instagram: a photo stored with POST /v1/uploads, posted with POST /v1/messages; Instagram downloads it
// from the daemon's signed PUBLIC_URL/v1/media link (a tampered or unsigned link is 404).

let emu: PlatformEmulator;
let ig: PlatformEmulator;
let db: TestDatabase;
let app: App;
let secret: string;

test.before(async () => {
  const apps = resolveApps({});
  emu = await startThreadsEmulator({ clock: realClock(), apps });
  ig = await startInstagramEmulator({ clock: realClock(), apps, processingMs: { image: 0 } });
  db = await createTestDatabase();
  secret = randomBytes(32).toString('base64url');
  const port = await freePort();
  app = await startApp({
    ...loadConfig({
      DATABASE_URL: db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'th-e2e-')), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      PUBLIC_URL: `http://127.0.0.1:${port}`, META_APP_ID: apps.meta.appId, META_APP_SECRET: apps.meta.appSecret,
      THREADS_API_URL: emu.urls.api!, THREADS_OAUTH_URL: emu.urls.oauth!, INSTAGRAM_API_URL: ig.urls.api!, INSTAGRAM_OAUTH_URL: ig.urls.oauth!,
      RATE_LIMIT_CONNECT: '1000', RATE_LIMIT_SEND: '100000', OVERLOAD_LAG_MS: '0',
    }),
    port,
  });
});
test.after(async () => {
  await app.stop().catch(() => undefined);
  await emu.stop();
  await ig.stop();
  await db.drop();
});

async function call(sub: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(app.url + path, {
    method,
    headers: { authorization: `Bearer ${mintToken({ secret, sub })}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

test('connect through the daemon\'s own callback like a browser, post once with POST /v1/messages, quota shown, tenancy, no token', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'daemon_th' });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const created = await call('alice', 'POST', '/v1/connections', { platform: 'threads', kind: 'account', redirectUri: 'https://app.example/done' });
  assert.is(created.status, 201, created.text);
  assert.is(created.body.status, 'awaiting-authorization');
  const id = created.body.id as string;
  // The browser: the authorize window redirects to the daemon's callback, which redirects to redirectUri.
  const back = await browse(created.body.login.authorizeUrl, 'https://app.example/done');
  assert.ok(back.location, `no redirect back: ${back.status} ${back.body}`);
  assert.is(back.location!.searchParams.get('connection'), id);
  assert.is(back.location!.searchParams.get('status'), 'active');
  await until(async () => (await call('alice', 'GET', `/v1/connections/${id}`)).body.status === 'active', 'active');

  const sent = await call('alice', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_th', text: 'from the daemon' });
  assert.is(sent.status, 202, sent.text);
  const msg = await until(async () => {
    const m = (await call('alice', 'GET', `/v1/messages/${sent.body.id}`)).body;
    return m.status === 'sent' || m.status === 'failed' ? m : undefined;
  }, 'sent');
  assert.is(msg.status, 'sent', JSON.stringify(msg));
  const posts = (await ctl(emu, 'GET', '/posts')).json.filter((p: any) => p.accountId === json.accountId);
  assert.equal(posts.map((p: any) => [p.id, p.caption]), [[msg.platformMessageId, 'from the daemon']]);

  const conn = await call('alice', 'GET', `/v1/connections/${id}`);
  assert.equal(conn.body.quotas.map((q: any) => [q.name, q.used, q.limit]), [['threads.posts.24h', 1, 250]]);
  assert.is((await call('mallory', 'GET', `/v1/connections/${id}`)).status, 404);
  assert.is((await call('mallory', 'POST', `/v1/connections/${id}/reauthorize`)).status, 404);
  const list = await call('alice', 'GET', '/v1/connections');
  for (const text of [created.text, conn.text, list.text, sent.text]) assert.not.ok(text.includes('THAA'), 'a token in an answer');
});

test('deny at the authorize window → redirected with status=error and PLATFORM_AUTH_DENIED; the connection shows it', async () => {
  await ctl(emu, 'POST', '/consent', { deny: true });
  const created = await call('bob', 'POST', '/v1/connections', { platform: 'threads', kind: 'account', redirectUri: 'https://app.example/done' });
  assert.is(created.status, 201, created.text);
  const back = await browse(created.body.login.authorizeUrl, 'https://app.example/done');
  assert.ok(back.location, `no redirect back: ${back.status} ${back.body}`);
  assert.is(back.location!.searchParams.get('status'), 'error');
  assert.is(back.location!.searchParams.get('code'), 'PLATFORM_AUTH_DENIED');
  const conn = await call('bob', 'GET', `/v1/connections/${created.body.id}`);
  assert.equal([conn.body.status, conn.body.error.code], ['error', 'PLATFORM_AUTH_DENIED']);
});

test('Instagram: a stored photo posted by POST /v1/messages is downloaded from the signed media link and published once', async () => {
  const { json } = await ctl(ig, 'POST', '/accounts', { username: 'daemon_ig' });
  await ctl(ig, 'POST', '/consent', { account: json.accountId });
  const created = await call('carol', 'POST', '/v1/connections', { platform: 'instagram', kind: 'account', redirectUri: 'https://app.example/done' });
  assert.is(created.status, 201, created.text);
  const back = await browse(created.body.login.authorizeUrl, 'https://app.example/done');
  assert.is(back.location?.searchParams.get('status'), 'active', JSON.stringify(back));
  const id = created.body.id as string;
  await until(async () => (await call('carol', 'GET', `/v1/connections/${id}`)).body.status === 'active', 'active');

  const photo = randomBytes(150_000);
  const up = await fetch(`${app.url}/v1/uploads?filename=p.jpg`, { method: 'POST', headers: { authorization: `Bearer ${mintToken({ secret, sub: 'carol' })}`, 'content-type': 'image/jpeg' }, body: photo });
  const upload = await up.json() as { id: string; sha256: string };
  assert.is(up.status, 201);
  const sent = await call('carol', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_ig', text: 'from the daemon', media: { type: 'photo', uploadId: upload.id } });
  assert.is(sent.status, 202, sent.text);
  const msg = await until(async () => {
    const m = (await call('carol', 'GET', `/v1/messages/${sent.body.id}`)).body;
    return m.status === 'sent' || m.status === 'failed' ? m : undefined;
  }, 'sent', 20_000);
  assert.is(msg.status, 'sent', JSON.stringify(msg));
  const posts = (await ctl(ig, 'GET', '/posts')).json.filter((p: any) => p.accountId === json.accountId);
  assert.equal(posts.map((p: any) => [p.id, p.caption, p.mediaType, p.mediaSha256]), [[msg.platformMessageId, 'from the daemon', 'IMAGE', upload.sha256]]);
  assert.equal((await call('carol', 'GET', `/v1/connections/${id}`)).body.quotas.map((q: any) => [q.name, q.used, q.limit]), [['instagram.posts.24h', 1, 50]]);

  // The link itself: no signature, a tampered expiry or another file → 404, nothing served.
  for (const q of ['', '?exp=9999999999&sig=x', `?exp=${Math.floor(Date.now() / 1000) + 60}&sig=local%3Av1%3Aabc`]) {
    const res = await fetch(`${app.url}/v1/media/${upload.id}${q}`);
    assert.is(res.status, 404, q);
    await res.arrayBuffer();
  }
});

test('Instagram carousel by POST /v1/messages `items`: three stored files → one CAROUSEL_ALBUM, once; bad carousels refused at accept', async () => {
  const { json } = await ctl(ig, 'POST', '/accounts', { username: 'daemon_carousel' });
  await ctl(ig, 'POST', '/consent', { account: json.accountId });
  const created = await call('dave', 'POST', '/v1/connections', { platform: 'instagram', kind: 'account', redirectUri: 'https://app.example/done' });
  const back = await browse(created.body.login.authorizeUrl, 'https://app.example/done');
  assert.is(back.location?.searchParams.get('status'), 'active', JSON.stringify(back));
  const id = created.body.id as string;
  await until(async () => (await call('dave', 'GET', `/v1/connections/${id}`)).body.status === 'active', 'active');
  const upload = async (sub: string, type: string, name: string) => {
    const res = await fetch(`${app.url}/v1/uploads?filename=${name}`, { method: 'POST', headers: { authorization: `Bearer ${mintToken({ secret, sub })}`, 'content-type': type }, body: randomBytes(40_000) });
    assert.is(res.status, 201);
    return await res.json() as { id: string; sha256: string };
  };
  const files = [await upload('dave', 'image/jpeg', 'a.jpg'), await upload('dave', 'video/mp4', 'b.mp4'), await upload('dave', 'image/jpeg', 'c.jpg')];
  const items = [{ type: 'photo', uploadId: files[0]!.id }, { type: 'video', uploadId: files[1]!.id }, { type: 'photo', uploadId: files[2]!.id }];

  // Refused at accept, nothing queued: one file, media and items together, a document, another caller's upload, Threads.
  assert.is((await call('dave', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_carousel', text: 'x', items: items.slice(0, 1) })).status, 400);
  assert.is((await call('dave', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_carousel', text: 'x', items, media: items[0] })).status, 400);
  const doc = await call('dave', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_carousel', text: 'x', items: [items[0], { type: 'document', uploadId: files[2]!.id }] });
  assert.equal([doc.status, doc.body.error.code], [422, 'PLATFORM_UNSUPPORTED']);
  const foreign = await upload('erin', 'image/jpeg', 'e.jpg');
  const notMine = await call('dave', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_carousel', text: 'x', items: [items[0], { type: 'photo', uploadId: foreign.id }] });
  assert.equal([notMine.status, notMine.body.error.code], [404, 'NOT_FOUND']);

  const sent = await call('dave', 'POST', '/v1/messages', { connectionId: id, chat: '@daemon_carousel', text: 'three at once', items });
  assert.is(sent.status, 202, sent.text);
  assert.equal(sent.body.items.map((x: any) => [x.type, x.uploadId, x.sha256]), files.map((f, i) => [items[i]!.type, f.id, f.sha256]));
  const msg = await until(async () => {
    const m = (await call('dave', 'GET', `/v1/messages/${sent.body.id}`)).body;
    return m.status === 'sent' || m.status === 'failed' ? m : undefined;
  }, 'sent', 30_000);
  assert.is(msg.status, 'sent', JSON.stringify(msg));
  const posts = (await ctl(ig, 'GET', '/posts')).json.filter((p: any) => p.accountId === json.accountId);
  assert.equal(posts.map((p: any) => [p.id, p.caption, p.mediaType]), [[msg.platformMessageId, 'three at once', 'CAROUSEL_ALBUM']]);
  assert.equal(posts[0].children.map((c: any) => c.mediaSha256), files.map((f) => f.sha256), 'each file downloaded from its own signed link, in order');

  const th = await ctl(emu, 'POST', '/accounts', { username: 'daemon_th_car' });
  await ctl(emu, 'POST', '/consent', { account: th.json.accountId });
  const tc = await call('dave', 'POST', '/v1/connections', { platform: 'threads', kind: 'account', redirectUri: 'https://app.example/done' });
  await browse(tc.body.login.authorizeUrl, 'https://app.example/done');
  await until(async () => (await call('dave', 'GET', `/v1/connections/${tc.body.id}`)).body.status === 'active', 'active');
  const threads = await call('dave', 'POST', '/v1/messages', { connectionId: tc.body.id, chat: '@daemon_th_car', text: 'x', items: items.slice(0, 2) });
  assert.equal([threads.status, threads.body.error.code], [422, 'PLATFORM_UNSUPPORTED']);
});

test.run();
