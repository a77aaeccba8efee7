import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import { secretVault } from '../../../src/supervisor/secrets.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { until } from '../../helpers/stack.ts';
import { consent } from '../oauth-stack.ts';
import { clipOf, connectAccount, driverOf, message, photoOf, postsOf, startMetaWorld, type MetaWorld } from '../meta/user-world.ts';

// Instagram (API with Instagram Login) through the core's OAuth plumbing and container publishing,
// against the emulator over real sockets, on real Postgres: connect by the redirect, a photo and a
// reel published once, the 51st post of 24 hours refused before any call, the token refreshed when
// the clock moves 59 days, a refresh through three 5xx, revocation and re-authorization, tenancy, and
// no token in answers, rows or logs.

let w: MetaWorld;
test.before(async () => { w = await startMetaWorld('instagram'); });
test.after(async () => { await w.close(); });

const rejects = async (p: Promise<unknown>, code: string) => {
  try {
    await p;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    assert.is((err as { code: string }).code, code, (err as Error).message);
    return err as { code: string; retryAfter?: number; category: string; message: string };
  }
  throw new Error(`expected ${code}`);
};

/** Runs `fn` and lists the URLs fetched meanwhile. */
async function watchingFetch<T>(fn: () => Promise<T>): Promise<{ result: T; urls: string[] }> {
  const real = globalThis.fetch;
  const urls: string[] = [];
  globalThis.fetch = (input, init) => {
    urls.push(String(input instanceof Request ? input.url : input));
    return real(input, init);
  };
  try {
    return { result: await fn(), urls };
  } finally {
    globalThis.fetch = real;
  }
}

test('create → an Instagram authorize URL with a single-use state; the redirect followed → active; the state cannot be replayed', async () => {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username: 'ig_one' });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  const c = await w.stack.connections.create('alice', { platform: 'instagram', kind: 'account', redirectUri: 'https://app.example/back' });
  assert.is(c.status, 'awaiting-authorization');
  const u = new URL(c.login!.authorizeUrl as string);
  assert.is(u.pathname, '/oauth/authorize');
  assert.is(u.searchParams.get('client_id'), 'm');
  assert.is(u.searchParams.get('scope'), 'instagram_business_basic,instagram_business_content_publish');
  assert.is(u.searchParams.get('redirect_uri'), 'http://127.0.0.1:9/v1/oauth/instagram/callback');
  assert.ok((u.searchParams.get('state') ?? '').length >= 43);
  const q = await consent(c.login!.authorizeUrl as string, 'instagram');
  const to = new URL(await w.stack.connections.authorizationCallback('instagram', q));
  assert.is(to.origin + to.pathname, 'https://app.example/back');
  assert.is(to.searchParams.get('connection'), c.id);
  assert.is(to.searchParams.get('status'), 'active');
  const live = await w.stack.connections.get('alice', c.id);
  assert.is(live.status, 'active');
  assert.is(live.platformUserId, json.accountId);
  assert.is(live.username, 'ig_one');
  assert.equal(live.quotas, [{ name: 'instagram.posts.24h', used: 0, limit: 50, resetsAt: live.quotas![0]!.resetsAt }]);
  // The long-lived token is what is stored (encrypted): no IGAA prefix in any row.
  const rows = await w.stack.db.sql<Array<{ name: string; ciphertext: string }>>`select name, ciphertext from connection_secrets where connection_id = ${c.id}`;
  assert.equal(rows.map((r) => r.name).sort(), ['access_expires_at', 'access_token', 'meta_token_issued']);
  assert.ok(rows.every((r) => !r.ciphertext.includes('IGAA')));
  const expires = Number((await secretVault(w.stack.db.sql, w.stack.keyring, c.id).load()).access_expires_at);
  assert.ok(expires - w.clock.now() > 59 * 86_400_000, 'a 60-day token, not the 1-hour one');
  // Replayed: refused, nothing changes. Unknown and expired states too.
  await rejects(w.stack.connections.authorizationCallback('instagram', q), 'OAUTH_STATE_INVALID');
  await rejects(w.stack.connections.authorizationCallback('instagram', { code: 'x', state: 'forged-state-of-nobody' }), 'OAUTH_STATE_INVALID');
  assert.is((await w.stack.connections.get('alice', c.id)).status, 'active');
});

test('a state issued for another connection\'s platform or after expiry is refused; the waiting connection is untouched', async () => {
  const c = await w.stack.connections.create('bob', { platform: 'instagram', kind: 'account' });
  const state = new URL(c.login!.authorizeUrl as string).searchParams.get('state')!;
  await w.stack.db.sql`update oauth_states set platform = 'threads' where connection_id = ${c.id}`;
  await rejects(w.stack.connections.authorizationCallback('instagram', { code: 'x', state }), 'OAUTH_STATE_INVALID');
  await w.stack.db.sql`update oauth_states set platform = 'instagram', expires_at = now() - interval '1 second' where connection_id = ${c.id}`;
  await rejects(w.stack.connections.authorizationCallback('instagram', { code: 'x', state }), 'OAUTH_STATE_INVALID');
  assert.is((await w.stack.connections.get('bob', c.id)).status, 'awaiting-authorization');
});

test('denied consent → PLATFORM_AUTH_DENIED, connection in error; re-authorize → active', async () => {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username: 'ig_deny' });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId, deny: true });
  const c = await w.stack.connections.create('carol', { platform: 'instagram', kind: 'account' });
  const q = await consent(c.login!.authorizeUrl as string, 'instagram');
  assert.is(q.error, 'access_denied');
  const to = new URL(await w.stack.connections.authorizationCallback('instagram', q));
  assert.is(to.searchParams.get('status'), 'error');
  assert.is(to.searchParams.get('code'), 'PLATFORM_AUTH_DENIED');
  const failed = await w.stack.connections.get('carol', c.id);
  assert.is(failed.status, 'error');
  assert.is(failed.error?.code, 'PLATFORM_AUTH_DENIED');
  const again = await w.stack.connections.reauthorize('carol', c.id);
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  await w.stack.connections.authorizationCallback('instagram', await consent(again.login!.authorizeUrl as string, 'instagram'));
  await until(async () => (await w.stack.connections.get('carol', c.id)).status === 'active', 'active after re-authorizing');
});

test('a photo and a reel are published once each (create → status → publish); a retry answers the same post', async () => {
  const { id, accountId } = await connectAccount(w, 'alice', 'ig_pub');
  const photo = photoOf(300_000);
  const msg = message(id, 'sunrise #one', photo);
  const sent = await driverOf(w, 'alice', id).send(msg);
  const clip = clipOf(700_000);
  const reel = await driverOf(w, 'alice', id).send(message(id, 'a reel', clip));
  const posts = await postsOf(w, accountId);
  assert.is(posts.length, 2);
  assert.equal([posts[0].id, posts[0].mediaType, posts[0].caption, posts[0].mediaSha256], [sent.platformMessageId, 'IMAGE', 'sunrise #one', photo.sha256]);
  assert.equal([posts[1].id, posts[1].mediaType, posts[1].mediaSha256], [reel.platformMessageId, 'VIDEO', clip.sha256]);
  const again = await driverOf(w, 'alice', id).send({ ...msg, attempts: 2 });
  assert.is(again.platformMessageId, sent.platformMessageId);
  assert.is((await postsOf(w, accountId)).length, 2);
  const q = (await w.stack.connections.get('alice', id)).quotas![0]!;
  assert.is(q.used, 2);
  // Text alone is not an Instagram post.
  await rejects(driverOf(w, 'alice', id).send(message(id, 'words only')), 'PLATFORM_UNSUPPORTED');
});

test('a lost publish answer: the retry finds the container PUBLISHED and reads the post from the account\'s media, one post', async () => {
  const { id, accountId } = await connectAccount(w, 'alice', 'ig_lost');
  const msg = message(id, 'lost answer', photoOf(1000));
  const real = globalThis.fetch;
  let dropped = false;
  globalThis.fetch = async (input, init) => {
    const r = await real(input, init);
    if (!dropped && String(input instanceof Request ? input.url : input).includes('/media_publish')) {
      dropped = true;
      throw new TypeError('fetch failed: socket closed after the request was sent');
    }
    return r;
  };
  try {
    const sent = await driverOf(w, 'alice', id).send(msg);
    const posts = await postsOf(w, accountId);
    assert.is(posts.length, 1);
    assert.is(sent.platformMessageId, posts[0].id);
  } finally {
    globalThis.fetch = real;
  }
});

test('the 51st post in 24 hours → 429 PLATFORM_QUOTA_EXCEEDED with retryAfter, before any API call; the window moves on', async () => {
  const { id, accountId } = await connectAccount(w, 'dave', 'ig_quota');
  const d = driverOf(w, 'dave', id);
  for (let i = 0; i < 50; i++) await d.send(message(id, `post ${i}`, photoOf(500 + i)));
  assert.is((await postsOf(w, accountId)).length, 50);
  // Every request this process makes while the 51st is refused (the watcher's own /me aside).
  const calls = await watchingFetch(() => rejects(d.send(message(id, 'post 51', photoOf(99))), 'PLATFORM_QUOTA_EXCEEDED'));
  const err = calls.result;
  assert.is(err.category, 'quota-until');
  assert.ok(err.retryAfter! > 23 * 3600 && err.retryAfter! <= 24 * 3600, String(err.retryAfter));
  assert.equal(calls.urls.filter((u) => !/\/me\?/.test(u)), [], 'the refusal made no API call');
  assert.is((await postsOf(w, accountId)).length, 50);
  const q = (await w.stack.connections.get('dave', id)).quotas![0]!;
  assert.equal([q.name, q.used, q.limit], ['instagram.posts.24h', 50, 50]);
  w.clock.advance(24 * 3600 + 1);
  await d.send(message(id, 'next day', photoOf(98)));
  assert.is((await postsOf(w, accountId)).length, 51);
});

test('the clock moved 59 days: the connection\'s actor refreshes the token and stays active; posting works', async () => {
  const { id, accountId } = await connectAccount(w, 'erin', 'ig_refresh');
  const vault = secretVault(w.stack.db.sql, w.stack.keyring, id);
  const before = (await vault.load()).access_token;
  const d = driverOf(w, 'erin', id);
  w.clock.advance(59 * 86_400);
  await until(() => d.keeper.refreshes >= 1, 'refreshed by the watcher');
  const after = await vault.load();
  assert.is.not(after.access_token, before);
  assert.ok(Number(after.access_expires_at) - w.clock.now() > 59 * 86_400_000);
  assert.is((await w.stack.connections.get('erin', id)).status, 'active');
  await d.send(message(id, 'after the refresh', photoOf(1234)));
  assert.is((await postsOf(w, accountId)).length, 1);
  // A token younger than 24 hours is not refreshed (Meta refuses it): nothing happens.
  w.clock.advance(3600);
  await new Promise((r) => setTimeout(r, 200));
  assert.is(d.keeper.refreshes, 1);
});

test('a refresh that meets a 5xx three times is retried and never taken for revocation: still active, refreshed', async () => {
  // A world of its own whose watcher does not read the profile: the three 5xx meet the refresh alone.
  const w2 = await startMetaWorld('instagram', { adapter: { probeMs: 30 * 86_400_000 } });
  try {
    const { id } = await connectAccount(w2, 'frank', 'ig_flaky');
    const d = driverOf(w2, 'frank', id);
    w2.emu.fault({ type: 'http-5xx', count: 3 });
    w2.clock.advance(8 * 86_400);
    const seen = new Set<string>();
    const calls = await watchingFetch(() => until(async () => {
      seen.add((await w2.stack.connections.get('frank', id)).status);
      return d.keeper.refreshes >= 1;
    }, 'refreshed after the 5xx'));
    assert.is(calls.urls.filter((u) => new URL(u).pathname === '/refresh_access_token').length, 4, 'three that met a 5xx, one that worked');
    assert.is(d.keeper.refreshFailures, 3, 'three refreshes met the 5xx');
    assert.equal([...seen], ['active']);
    assert.is((await w2.stack.connections.get('frank', id)).status, 'active');
  } finally {
    await w2.close();
  }
});

test('revoked at Instagram → error PLATFORM_AUTH_REVOKED (code 190); re-authorize → active; another owner sees 404', async () => {
  const { id, accountId } = await connectAccount(w, 'gina', 'ig_revoked');
  await ctl(w.emu, 'POST', '/revoke', { account: accountId });
  await until(async () => (await w.stack.connections.get('gina', id)).status === 'error', 'error after revocation');
  const failed = await w.stack.connections.get('gina', id);
  assert.is(failed.error?.code, 'PLATFORM_AUTH_REVOKED');
  await rejects(w.stack.connections.get('mallory', id), 'NOT_FOUND');
  await rejects(w.stack.connections.reauthorize('mallory', id), 'NOT_FOUND');
  const again = await w.stack.connections.reauthorize('gina', id);
  assert.is(again.status, 'awaiting-authorization');
  await ctl(w.emu, 'POST', '/consent', { account: accountId });
  await w.stack.connections.authorizationCallback('instagram', await consent(again.login!.authorizeUrl as string, 'instagram'));
  await until(async () => (await w.stack.connections.get('gina', id)).status === 'active', 'active after re-authorizing');
  await driverOf(w, 'gina', id).send(message(id, 'back again', photoOf(777)));
  assert.is((await postsOf(w, accountId)).length, 1);
});

test('no token in connection answers or in any log line', async () => {
  const { id } = await connectAccount(w, 'hal', 'ig_secret');
  const token = (await secretVault(w.stack.db.sql, w.stack.keyring, id).load()).access_token!;
  assert.ok(token.startsWith('IGAA'));
  const answers = JSON.stringify([await w.stack.connections.get('hal', id), await w.stack.connections.list('hal', { limit: 50 })]);
  assert.not.ok(answers.includes(token));
  assert.not.ok(answers.includes('IGAA'));
  assert.ok(w.logs.lines.length > 0);
  assert.not.ok(w.logs.lines.some((l) => l.includes('IGAA')), 'a token in the logs');
});

test.run();
