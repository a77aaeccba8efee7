import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp, type App } from '../../../src/app.ts';
import { mintToken } from '../../../src/auth/token.ts';
import { loadConfig } from '../../../src/config.ts';
import { realClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { startYoutubeEmulator } from '../../emulator/youtube/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { until } from '../../helpers/stack.ts';
import { apps, consent, PUBLIC_URL } from '../oauth-stack.ts';

// The whole daemon (startApp: HTTP, outbox, delivery, supervisor) on real Postgres with YouTube
// configured against its emulator: connect over the API and the OAuth callback, upload a file, send it as a
// message, and see it reach YouTube once as a video, `sent` with the video id.

let emu: PlatformEmulator;
let db: TestDatabase;
let app: App;
const secret = randomBytes(32).toString('base64url');

test.before(async () => {
  emu = await startYoutubeEmulator({ clock: realClock(), apps });
  db = await createTestDatabase();
  app = await startApp({
    ...loadConfig({
      DATABASE_URL: db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'yt-e2e-')), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      PUBLIC_URL, GOOGLE_CLIENT_ID: apps.google.clientId, GOOGLE_CLIENT_SECRET: apps.google.clientSecret,
      GOOGLE_OAUTH_URL: emu.urls.oauth!, YOUTUBE_API_URL: emu.urls.api!, YOUTUBE_UPLOAD_URL: emu.urls.upload!, YOUTUBE_CHUNK_MB: '1',
      BACKOFF_BASE_MS: '100', BACKOFF_CAP_MS: '1000',
    }),
    port: 0,
  });
});
test.after(async () => {
  await app?.stop();
  await emu?.stop();
  await db?.drop();
});

async function call(sub: string | undefined, method: string, path: string, body?: unknown, raw?: { type: string; bytes: Buffer }) {
  const res = await fetch(app.url + path, {
    method, redirect: 'manual',
    headers: {
      ...(sub ? { authorization: `Bearer ${mintToken({ secret, sub })}` } : {}),
      ...(raw ? { 'content-type': raw.type } : body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(raw ? { body: raw.bytes } : body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as any };
}

test('connect over the API, upload, send: one video on the channel, the message sent with its id', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'api-chan' });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const created = await call('alice', 'POST', '/v1/connections', { platform: 'youtube', kind: 'account' });
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is(created.body.status, 'awaiting-authorization');
  const q = new URLSearchParams(await consent(created.body.login.authorizeUrl, 'youtube'));
  const back = await call(undefined, 'GET', `/v1/oauth/youtube/callback?${q}`);
  assert.is(back.status, 302);
  const id = created.body.id as string;
  await until(async () => (await call('alice', 'GET', `/v1/connections/${id}`)).body.status === 'active', 'active');
  assert.is((await call('mallory', 'GET', `/v1/connections/${id}`)).status, 404);

  const file = randomBytes(3 * 1024 * 1024 + 11);
  const up = await call('alice', 'POST', '/v1/uploads?filename=clip.mp4', undefined, { type: 'video/mp4', bytes: file });
  assert.is(up.status, 201, JSON.stringify(up.body));
  const sent = await call('alice', 'POST', '/v1/messages', { connectionId: id, chat: '@mychannel', text: 'Release video\nDetails', media: { type: 'video', uploadId: up.body.id } });
  assert.is(sent.status, 202, JSON.stringify(sent.body));
  const final = await until(async () => {
    const m = (await call('alice', 'GET', `/v1/messages/${sent.body.id}`)).body;
    return ['sent', 'failed'].includes(m.status) ? m : undefined;
  }, 'message final', 30_000);
  assert.is(final.status, 'sent', JSON.stringify(final));
  const videos = (await ctl(emu, 'GET', '/videos')).json;
  assert.is(videos.length, 1);
  assert.is(videos[0].id, final.platformMessageId);
  assert.is(videos[0].mediaSha256, createHash('sha256').update(file).digest('hex'));
  assert.is(videos[0].title, 'Release video');
  const conn = (await call('alice', 'GET', `/v1/connections/${id}`)).body;
  assert.ok(conn.quotas.some((x: any) => x.name === 'youtube.uploads.daily' && x.used === 1), JSON.stringify(conn.quotas));
  // A photo is refused at accept: YouTube takes videos only.
  const photo = await call('alice', 'POST', '/v1/messages', { connectionId: id, chat: '@mychannel', text: 'x', media: { type: 'photo', uploadId: up.body.id } });
  assert.is(photo.status, 422);
  assert.is(photo.body.error.code, 'PLATFORM_UNSUPPORTED');
});

test.run();
