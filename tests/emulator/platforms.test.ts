import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from './index.ts';
import { parsePlatforms, resolveApps } from './platforms/registry.ts';

// The emulator process with several platforms: `--platforms` / `startEmulator({ platforms })`, the ready
// line, control calls routed by platform prefix, the shared clock and per-platform faults.

let emu: Emulator;
test.before(async () => {
  emu = await startEmulator({ platforms: ['instagram', 'whatsapp'], apps: { meta: { appId: '4242', appSecret: 'shh', verifyToken: 'vt' } } });
});
test.after(async () => {
  await emu.stop();
});

async function ctl(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emu.control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

test('--platforms names: telegram is implied, all means every registered platform, unknown names are refused', () => {
  assert.equal(parsePlatforms(undefined), []);
  assert.equal(parsePlatforms('telegram'), []);
  assert.equal(parsePlatforms('telegram,whatsapp,instagram,whatsapp'), ['whatsapp', 'instagram']);
  assert.equal(parsePlatforms('all'), ['instagram', 'threads', 'whatsapp', 'youtube', 'tiktok']);
  assert.throws(() => parsePlatforms('telegram,myspace'), /unknown platform myspace/);
});

test('app credentials: given values, then the daemon\'s environment variables, then generated ones', () => {
  const env = { META_APP_ID: 'env-app', META_APP_SECRET: 'env-secret', GOOGLE_CLIENT_ID: 'g-env', TIKTOK_CLIENT_KEY: 'tt-env' };
  const apps = resolveApps({ meta: { appId: 'given', appSecret: '', verifyToken: 'v' } }, env);
  assert.is(apps.meta.appId, 'given');
  assert.is(apps.google.clientId, 'g-env');
  assert.is(apps.tiktok.clientKey, 'tt-env');
  assert.is(resolveApps({}, env).meta.appSecret, 'env-secret');
  assert.is.not(resolveApps({}, {}).meta.appSecret, resolveApps({}, {}).meta.appSecret, 'generated secrets differ per start');
  assert.is(emu.apps.meta.appId, '4242');
});

test('control calls go to the platform named by the prefix; a platform not started is 404', async () => {
  assert.is((await ctl('POST', '/instagram/accounts', { username: 'routed' })).status, 200);
  assert.is((await ctl('POST', '/whatsapp/numbers', {})).status, 200);
  assert.is((await ctl('POST', '/threads/accounts', { username: 'x' })).status, 404);
  assert.is((await ctl('GET', '/stats')).status, 200, 'Telegram control calls still answer');
});

test('POST /clock moves every emulator\'s time: the platforms\' and Telegram\'s', async () => {
  const before = emu.clock.now();
  const tgBefore = emu.world.clock.now();
  const res = await ctl('POST', '/clock', { advanceS: 3600 });
  assert.is(res.status, 200);
  assert.ok(emu.clock.now() - before >= 3_600_000);
  assert.ok(emu.world.clock.now() - tgBefore >= 3_600_000);
  assert.ok(Date.parse(res.json.now) >= before + 3_600_000);
  assert.is((await ctl('POST', '/clock', { advanceS: -5 })).status, 400);
  assert.is((await ctl('POST', '/clock', {})).status, 400);
  assert.is((await ctl('POST', '/clock', { advanceS: 'soon' })).status, 400);
});

test('POST /faults with a platform target affects that platform only', async () => {
  const wa = emu.platforms.get('whatsapp')!.urls.api!;
  const ig = emu.platforms.get('instagram')!.urls.api!;
  assert.is((await ctl('POST', '/faults', { type: 'http-5xx', target: 'whatsapp', count: 1 })).status, 200);
  assert.is((await fetch(`${ig}/me`)).status, 400, 'instagram answers normally (no token)');
  assert.is((await fetch(`${wa}/123`)).status, 500);
  assert.is((await fetch(`${wa}/123`)).status, 401, 'one fault, then normal again');
  await ctl('POST', '/faults', { type: 'rate-limit', target: 'whatsapp' });
  const limited = await fetch(`${wa}/123`);
  assert.is(limited.status, 429);
  assert.is(((await limited.json()) as any).error.code, 130429);
});

test('POST /reset forgets the platforms\' state too', async () => {
  await ctl('POST', '/instagram/accounts', { username: 'before_reset' });
  assert.is((await ctl('POST', '/instagram/consent', { account: 'before_reset' })).status, 200);
  assert.is((await ctl('POST', '/reset')).status, 200);
  assert.is((await ctl('POST', '/instagram/consent', { account: 'before_reset' })).status, 404);
});

test('npm run emulator -- --platforms …: the ready line announces each platform and the apps (environment overrides)', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/emulator/main.ts', '--platforms', 'telegram,instagram,whatsapp', '--platform-options', '{"instagram":{"postLimit":7}}'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, META_APP_ID: '777000777', META_VERIFY_TOKEN: 'from-env' },
  });
  try {
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    const ready = JSON.parse(line);
    assert.equal(Object.keys(ready).sort(), ['apps', 'botApi', 'control', 'dcs', 'instagram', 'mtproto', 'serverKeys', 'whatsapp']);
    assert.equal(Object.keys(ready.instagram).sort(), ['api', 'oauth']);
    assert.equal(Object.keys(ready.whatsapp), ['api']);
    assert.is(ready.apps.meta.appId, '777000777');
    assert.is(ready.apps.meta.verifyToken, 'from-env');
    assert.equal(Object.keys(ready.apps).sort(), ['google', 'meta', 'tiktok']);
    const acc = await fetch(`${ready.control}/instagram/accounts`, { method: 'POST', body: JSON.stringify({ username: 'standalone' }) });
    assert.is(acc.status, 200);
    await fetch(`${ready.control}/instagram/consent`, { method: 'POST', body: JSON.stringify({ account: 'standalone' }) });
    const authorize = `${ready.instagram.oauth}/oauth/authorize?${new URLSearchParams({ client_id: '777000777', redirect_uri: 'http://127.0.0.1:9/cb', response_type: 'code', scope: 'instagram_business_basic' })}`;
    const code = new URL((await fetch(authorize, { redirect: 'manual' })).headers.get('location')!).searchParams.get('code')!;
    const token = await (await fetch(`${ready.instagram.oauth}/oauth/access_token`, { method: 'POST', body: new URLSearchParams({ client_id: '777000777', client_secret: ready.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: 'http://127.0.0.1:9/cb', code }) })).json() as any;
    const limit = await (await fetch(`${ready.instagram.api}/me/content_publishing_limit?fields=config&access_token=${token.data[0].access_token}`)).json() as any;
    assert.is(limit.data[0].config.quota_total, 7, '--platform-options reached the platform');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  const bad = spawn(process.execPath, ['--import', 'tsx', 'tests/emulator/main.ts', '--platforms', 'myspace'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const [code] = (await once(bad, 'exit')) as [number];
  assert.is.not(code, 0);
});

test.run();
