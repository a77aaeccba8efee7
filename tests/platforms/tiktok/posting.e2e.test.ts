import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import type { Driver, OutboundMedia, OutboundMessage } from '../../../src/platforms/adapter.ts';
import { tiktokAdapter } from '../../../src/platforms/tiktok/index.ts';
import { realClock, type EmulatorClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { ctl, postForm } from '../../emulator/support/platform-client.ts';
import { startTiktokEmulator } from '../../emulator/tiktok/index.ts';
import { until } from '../../helpers/stack.ts';
import { apps, consent, startOAuthStack, videoOf, type OAuthStack } from '../oauth-stack.ts';

// TikTok through the core's OAuth plumbing and the Content Posting API, against the emulator: connect,
// rotating refresh (the old token dead, one refresh for two callers), Direct Post exactly once across a
// 5xx and a crash mid-upload, the 7th init of a minute paced before the call, error codes mapped.

const MB = 1024 * 1024;
let emu: PlatformEmulator;
let clock: EmulatorClock;
let stack: OAuthStack;

test.before(async () => {
  clock = realClock();
  emu = await startTiktokEmulator({ clock, apps });
  stack = await startOAuthStack(tiktokAdapter({
    clientKey: apps.tiktok.clientKey, clientSecret: apps.tiktok.clientSecret, oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api!,
    chunkBytes: 5 * MB, statusPollMs: 10, statusMaxMs: 5000, timeoutMs: 5000, now: () => clock.now(),
  }));
});
test.after(async () => {
  await stack.close();
  await emu.stop();
});

async function connect(owner: string, username: string): Promise<{ id: string; openId: string }> {
  const { json } = await ctl(emu, 'POST', '/accounts', { username });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const c = await stack.connections.create(owner, { platform: 'tiktok', kind: 'account' });
  assert.is(c.status, 'awaiting-authorization');
  const u = new URL(c.login!.authorizeUrl as string);
  assert.is(u.searchParams.get('client_key'), apps.tiktok.clientKey);
  assert.is(u.searchParams.get('code_challenge_method'), 'S256');
  const to = new URL(await stack.connections.authorizationCallback('tiktok', await consent(c.login!.authorizeUrl as string, 'tiktok')));
  assert.is(to.searchParams.get('status'), 'active');
  await until(async () => (await stack.connections.get(owner, c.id)).status === 'active', 'active');
  return { id: c.id, openId: json.accountId };
}

const driverOf = (owner: string, id: string) => stack.supervisor.live(owner, id)!.driver as Driver & { keeper: { access(): Promise<string> } };
const message = (connectionId: string, media: OutboundMedia, text = 'my clip #fyp'): OutboundMessage => ({
  id: randomUUID(), owner: 'alice', connectionId, chat: 'me', text, silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), media,
});
const posts = async (openId: string) => (await ctl(emu, 'GET', '/posts')).json.filter((p: any) => p.accountId === openId);
const uploads = async (openId: string) => (await ctl(emu, 'GET', '/uploads')).json.filter((p: any) => p.accountId === openId);

const rejects = async (p: Promise<unknown>, code: string) => {
  try {
    await p;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    assert.is((err as { code: string }).code, code, (err as Error).message);
    return err as { code: string; retryAfter?: number; category: string };
  }
  throw new Error(`expected ${code}`);
};

test('connect, then the rotating refresh: one refresh for two callers, the new refresh token stored, the old one dead', async () => {
  const { id } = await connect('alice', 'creator_a');
  const secrets = async () => (await stack.db.sql<Array<{ name: string }>>`select name from connection_secrets where connection_id = ${id}`).map((r) => r.name).sort();
  assert.equal(await secrets(), ['access_expires_at', 'access_token', 'refresh_token']);
  const vault = (await import('../../../src/supervisor/secrets.ts')).secretVault(stack.db.sql, stack.keyring, id);
  const oldRefresh = (await vault.load()).refresh_token!;
  const before = (await ctl(emu, 'GET', '/stats')).json.refreshes;
  clock.advance(2 * 3600);
  const [a, b] = await Promise.all([driverOf('alice', id).keeper.access(), driverOf('alice', id).keeper.access()]);
  assert.is(a, b);
  assert.is((await ctl(emu, 'GET', '/stats')).json.refreshes, before + 1);
  const newRefresh = (await vault.load()).refresh_token!;
  assert.is.not(newRefresh, oldRefresh);
  const old = await postForm(`${emu.urls.api}/v2/oauth/token/`, { client_key: apps.tiktok.clientKey, client_secret: apps.tiktok.clientSecret, grant_type: 'refresh_token', refresh_token: oldRefresh });
  assert.is(old.json.error, 'invalid_grant');
  // Across a restart the stored (new) token is used: no refresh, no failure.
  await stack.restart();
  await until(async () => (await stack.connections.get('alice', id)).status === 'active', 'active after restart');
  assert.is((await ctl(emu, 'GET', '/stats')).json.refreshFailures, 1, 'only the test\'s own use of the dead token failed');
});

test('a Direct Post goes out once: init → chunks → status until PUBLISH_COMPLETE', async () => {
  const { id, openId } = await connect('alice', 'creator_b');
  const media = videoOf(12 * MB + 77);
  const sent = await driverOf('alice', id).send(message(id, media));
  const [p, ...more] = await posts(openId);
  assert.is(more.length, 0);
  assert.is(p.mediaSha256, media.sha256);
  assert.is(p.privacy, 'SELF_ONLY');
  assert.is(p.caption, 'my clip #fyp');
  assert.is(sent.platformMessageId, p.publishId, 'SELF_ONLY posts have no public id: the publish id stands for it');
});

test('a 5xx mid-upload: resumed from the chunk TikTok holds, ≤ one chunk re-sent, one post', async () => {
  const { id, openId } = await connect('alice', 'creator_c');
  const media = videoOf(16 * MB);
  const plain = media.read.bind(media);
  let armed = false;
  media.read = async function* () {
    let n = 0;
    for await (const x of plain()) {
      n += x.length;
      if (!armed && n >= 8 * MB) { armed = true; emu.fault({ type: 'http-5xx', count: 1 }); }
      yield x;
    }
  };
  await driverOf('alice', id).send(message(id, media));
  assert.is((await posts(openId)).length, 1);
  const [u, ...others] = await uploads(openId);
  assert.is(others.length, 0);
  assert.ok(u.bytesReceived <= media.size + 5 * MB, `re-sent ${u.bytesReceived - media.size}`);
});

test('a crash mid-upload: the next process resumes the stored publish, one post', async () => {
  const { id, openId } = await connect('alice', 'creator_d');
  const media = videoOf(15 * MB + 3);
  const msg = message(id, media);
  const plain = media.read.bind(media);
  media.read = async function* () {
    let n = 0;
    for await (const x of plain()) {
      n += x.length;
      if (n > 7 * MB) throw new Error('process killed');
      yield x;
    }
  };
  await driverOf('alice', id).send(msg).then(() => assert.unreachable('sent'), () => undefined);
  assert.is((await posts(openId)).length, 0);
  await stack.restart();
  await until(async () => (await stack.connections.get('alice', id)).status === 'active', 'active after restart');
  media.read = plain;
  await driverOf('alice', id).send({ ...msg, attempts: 2 });
  assert.is((await posts(openId)).length, 1);
  const all = await uploads(openId);
  assert.is(all.length, 1, 'the same publish, no second init');
  assert.ok(all[0].bytesReceived <= media.size + 5 * MB);
  // The answer lost after publishing: a retry answers the same post.
  const again = await driverOf('alice', id).send({ ...msg, attempts: 3 });
  assert.is(again.platformMessageId, all[0].publishId);
  assert.is((await uploads(openId)).length, 1);
});

test('the 7th init within a minute is paced before any call, with retryAfter', async () => {
  const { id, openId } = await connect('alice', 'creator_e');
  await ctl(emu, 'POST', '/app', { postsPerDay: 100 });
  for (let i = 0; i < 6; i++) await driverOf('alice', id).send(message(id, videoOf(1000 + i)));
  const err = await rejects(driverOf('alice', id).send(message(id, videoOf(999))), 'PLATFORM_RATE_LIMITED');
  assert.ok(err.retryAfter! >= 1 && err.retryAfter! <= 60, String(err.retryAfter));
  assert.is(err.category, 'rate-limited-until');
  assert.is((await uploads(openId)).length, 6, 'TikTok saw no 7th init');
  const q = (await stack.connections.get('alice', id)).quotas?.[0];
  assert.is(q?.name, 'tiktok.post_inits.minute');
  assert.is(q?.used, 6);
  assert.is(q?.limit, 6);
  clock.advance(61);
  await driverOf('alice', id).send(message(id, videoOf(998)));
  assert.is((await uploads(openId)).length, 7);
});

test('TikTok codes mapped: spam_risk_too_many_posts → PLATFORM_QUOTA_EXCEEDED; rate_limit_exceeded → PLATFORM_RATE_LIMITED; not a video → PLATFORM_UNSUPPORTED', async () => {
  const { id, openId } = await connect('alice', 'creator_f');
  await rejects(driverOf('alice', id).send(message(id, { ...videoOf(100), type: 'photo' })), 'PLATFORM_UNSUPPORTED');
  await ctl(emu, 'POST', '/app', { postsPerDay: 0 });
  try {
    const q = await rejects(driverOf('alice', id).send(message(id, videoOf(100))), 'PLATFORM_QUOTA_EXCEEDED');
    assert.is(q.category, 'quota-until');
    assert.ok(q.retryAfter! > 0);
  } finally {
    await ctl(emu, 'POST', '/app', { postsPerDay: 15 });
  }
  emu.fault({ type: 'rate-limit', count: 1 });
  await rejects(driverOf('alice', id).send(message(id, videoOf(100))), 'PLATFORM_RATE_LIMITED');
  assert.is((await posts(openId)).length, 0);
});

test('revoked at TikTok: the refresh fails PLATFORM_AUTH_REVOKED (reauthorize), and another owner sees nothing', async () => {
  const { id, openId } = await connect('bob', 'creator_g');
  await ctl(emu, 'POST', '/revoke', { account: openId });
  clock.advance(2 * 3600);
  const err = await rejects(driverOf('bob', id).keeper.access(), 'PLATFORM_AUTH_REVOKED');
  assert.is(err.category, 'reauthorize');
  await rejects(stack.connections.get('alice', id), 'NOT_FOUND');
  await rejects(stack.connections.reauthorize('alice', id), 'NOT_FOUND');
});

test.run();
