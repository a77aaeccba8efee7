// The whole daemon against a Threads emulator whose publishing limit is 2 posts in 24 hours (the
// limit is read from threads_publishing_limit, as from Meta): two posts through POST /v1/messages
// are sent; the third is refused at once with 429 PLATFORM_QUOTA_EXCEEDED, Retry-After and the
// connection in the details — nothing stored, nothing asked of the platform — and another caller's
// send to the same connection is still 404.
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
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { until } from '../../helpers/stack.ts';
import { freePort } from '../../helpers/private-services.ts';

let emu: PlatformEmulator;
let db: TestDatabase;
let app: App;
let secret: string;

test.before(async () => {
  const apps = resolveApps({});
  emu = await startThreadsEmulator({ clock: realClock(), apps, postLimit: 2 });
  db = await createTestDatabase();
  secret = randomBytes(32).toString('base64url');
  const port = await freePort();
  app = await startApp({
    ...loadConfig({
      DATABASE_URL: db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'quota-e2e-')), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      PUBLIC_URL: `http://127.0.0.1:${port}`, META_APP_ID: apps.meta.appId, META_APP_SECRET: apps.meta.appSecret,
      THREADS_API_URL: emu.urls.api!, THREADS_OAUTH_URL: emu.urls.oauth!,
      RATE_LIMIT_CONNECT: '1000', RATE_LIMIT_SEND: '100000', OVERLOAD_LAG_MS: '0',
    }),
    port,
  });
});
test.after(async () => {
  await app.stop().catch(() => undefined);
  await emu.stop();
  await db.drop();
});

async function call(sub: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const res = await fetch(app.url + path, {
    method,
    headers: { authorization: `Bearer ${mintToken({ secret, sub })}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text, headers: res.headers };
}

test('a post over the publishing limit → 429 PLATFORM_QUOTA_EXCEEDED with Retry-After at accept; nothing stored or published', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'quota_th' });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const created = await call('alice', 'POST', '/v1/connections', { platform: 'threads', kind: 'account', redirectUri: 'https://app.example/done' });
  assert.is(created.status, 201, created.text);
  const id = created.body.id as string;
  const back = await browse(created.body.login.authorizeUrl, 'https://app.example/done');
  assert.is(back.location?.searchParams.get('status'), 'active', JSON.stringify(back));
  await until(async () => (await call('alice', 'GET', `/v1/connections/${id}`)).body.status === 'active', 'active');

  for (const text of ['one', 'two']) {
    const sent = await call('alice', 'POST', '/v1/messages', { connectionId: id, chat: '@quota_th', text });
    assert.is(sent.status, 202, sent.text);
    await until(async () => (await call('alice', 'GET', `/v1/messages/${sent.body.id}`)).body.status === 'sent', `${text} sent`);
  }
  const conn = await call('alice', 'GET', `/v1/connections/${id}`);
  assert.equal(conn.body.quotas.map((q: any) => [q.name, q.used, q.limit]), [['threads.posts.24h', 2, 2]]);

  const third = await call('alice', 'POST', '/v1/messages', { connectionId: id, chat: '@quota_th', text: 'three' });
  assert.is(third.status, 429, third.text);
  assert.is(third.body.error.code, 'PLATFORM_QUOTA_EXCEEDED');
  const retryAfter = Number(third.headers.get('retry-after'));
  assert.ok(retryAfter > 0 && retryAfter <= 86_400, `Retry-After ${retryAfter}`);
  assert.is(third.body.error.retryAfter, retryAfter);
  assert.equal(third.body.error.details.map((d: any) => d.path), ['connectionId']);
  // Nothing stored, nothing published.
  const listed = await call('alice', 'GET', `/v1/messages?connectionId=${id}`);
  assert.equal(listed.body.items.map((m: any) => m.text).sort(), ['one', 'two']);
  const posts = (await ctl(emu, 'GET', '/posts')).json.filter((p: any) => p.accountId === json.accountId);
  assert.is(posts.length, 2);
  // Another caller learns nothing about the connection, quota or not.
  const stranger = await call('mallory', 'POST', '/v1/messages', { connectionId: id, chat: '@quota_th', text: 'x' });
  assert.is(stranger.status, 404, stranger.text);
});

test.run();
