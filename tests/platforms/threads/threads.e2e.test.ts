import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import { secretVault } from '../../../src/supervisor/secrets.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { until } from '../../helpers/stack.ts';
import { consent } from '../oauth-stack.ts';
import { clipOf, connectAccount, driverOf, message, photoOf, postsOf, startMetaWorld, type MetaWorld } from '../meta/user-world.ts';

// Threads through the core's OAuth plumbing and container publishing, against the emulator over real
// sockets, on real Postgres: connect by the redirect (code exchanged on graph.threads.net, then the
// long-lived token), text, image and video posts once each, the publishing limit read from the API
// (the emulator set to 5 a day: the 6th refused before any call), refresh at 59 days and through 5xx,
// revocation and re-authorization, denial, tenancy, no token in answers or logs.

let w: MetaWorld;
test.before(async () => { w = await startMetaWorld('threads', { postLimit: 5 }); });
test.after(async () => { await w.close(); });

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

test('connect by the redirect: Threads authorize URL, long-lived token stored encrypted, state single use; quota shown', async () => {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username: 'th_one' });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  const c = await w.stack.connections.create('alice', { platform: 'threads', kind: 'account' });
  const u = new URL(c.login!.authorizeUrl as string);
  assert.is(u.searchParams.get('scope'), 'threads_basic,threads_content_publish');
  assert.is(u.searchParams.get('redirect_uri'), 'http://127.0.0.1:9/v1/oauth/threads/callback');
  const q = await consent(c.login!.authorizeUrl as string, 'threads');
  const to = new URL(await w.stack.connections.authorizationCallback('threads', q));
  assert.is(to.searchParams.get('status'), 'active');
  const live = await w.stack.connections.get('alice', c.id);
  assert.equal([live.status, live.platformUserId, live.username], ['active', json.accountId, 'th_one']);
  assert.equal(live.quotas?.map((x) => [x.name, x.used, x.limit]), [['threads.posts.24h', 0, 5]]);
  const rows = await w.stack.db.sql<Array<{ ciphertext: string }>>`select ciphertext from connection_secrets where connection_id = ${c.id}`;
  assert.ok(rows.length > 0 && rows.every((r) => !r.ciphertext.includes('THAA')));
  await rejects(w.stack.connections.authorizationCallback('threads', q), 'OAUTH_STATE_INVALID');
  await rejects(w.stack.connections.get('mallory', c.id), 'NOT_FOUND');
});

test('denied consent → PLATFORM_AUTH_DENIED', async () => {
  await ctl(w.emu, 'POST', '/consent', { deny: true });
  const c = await w.stack.connections.create('bob', { platform: 'threads', kind: 'account' });
  const to = new URL(await w.stack.connections.authorizationCallback('threads', await consent(c.login!.authorizeUrl as string, 'threads')));
  assert.is(to.searchParams.get('code'), 'PLATFORM_AUTH_DENIED');
  assert.is((await w.stack.connections.get('bob', c.id)).error?.code, 'PLATFORM_AUTH_DENIED');
});

test('text, image and video posts published once each; a retry answers the same post; the 6th of the day refused before any call', async () => {
  const { id, accountId } = await connectAccount(w, 'carol', 'th_pub');
  const d = driverOf(w, 'carol', id);
  const text = message(id, 'hello threads');
  const a = await d.send(text);
  const photo = photoOf(40_000);
  const b = await d.send(message(id, 'a picture', photo));
  const clip = clipOf(200_000);
  const c = await d.send(message(id, 'a clip', clip));
  assert.is((await d.send({ ...text, attempts: 2 })).platformMessageId, a.platformMessageId);
  const posts = await postsOf(w, accountId);
  assert.equal(posts.map((p) => [p.id, p.mediaType, p.caption]), [
    [a.platformMessageId, 'TEXT_POST', 'hello threads'], [b.platformMessageId, 'IMAGE', 'a picture'], [c.platformMessageId, 'VIDEO', 'a clip'],
  ]);
  assert.equal([posts[1].mediaSha256, posts[2].mediaSha256], [photo.sha256, clip.sha256]);
  await d.send(message(id, 'four'));
  await d.send(message(id, 'five'));
  const real = globalThis.fetch;
  const urls: string[] = [];
  globalThis.fetch = (input, init) => {
    urls.push(String(input instanceof Request ? input.url : input));
    return real(input, init);
  };
  let err;
  try {
    err = await rejects(d.send(message(id, 'six')), 'PLATFORM_QUOTA_EXCEEDED');
  } finally {
    globalThis.fetch = real;
  }
  assert.ok(err.retryAfter! > 0 && err.retryAfter! <= 86_400);
  assert.equal(urls.filter((x) => !/\/me\?/.test(x)), [], 'no call for the refused post');
  assert.is((await postsOf(w, accountId)).length, 5);
  assert.equal((await w.stack.connections.get('carol', id)).quotas?.map((x) => [x.used, x.limit]), [[5, 5]]);
});

test('59 days on: refreshed (th_refresh_token) by the connection\'s actor, still active; through three 5xx as well', async () => {
  const { id } = await connectAccount(w, 'dave', 'th_refresh');
  const d = driverOf(w, 'dave', id);
  const before = (await secretVault(w.stack.db.sql, w.stack.keyring, id).load()).access_token;
  w.emu.fault({ type: 'http-5xx', count: 3 });
  w.clock.advance(59 * 86_400);
  await until(() => d.keeper.refreshes >= 1, 'refreshed');
  assert.is.not((await secretVault(w.stack.db.sql, w.stack.keyring, id).load()).access_token, before);
  assert.is((await w.stack.connections.get('dave', id)).status, 'active');
});

test('revoked at Threads → error PLATFORM_AUTH_REVOKED; re-authorize → active', async () => {
  const { id, accountId } = await connectAccount(w, 'erin', 'th_revoked');
  await ctl(w.emu, 'POST', '/revoke', { account: accountId });
  await until(async () => (await w.stack.connections.get('erin', id)).status === 'error', 'error after revocation');
  assert.is((await w.stack.connections.get('erin', id)).error?.code, 'PLATFORM_AUTH_REVOKED');
  const again = await w.stack.connections.reauthorize('erin', id);
  await ctl(w.emu, 'POST', '/consent', { account: accountId });
  await w.stack.connections.authorizationCallback('threads', await consent(again.login!.authorizeUrl as string, 'threads'));
  await until(async () => (await w.stack.connections.get('erin', id)).status === 'active', 'active again');
  assert.not.ok(w.logs.lines.some((l) => l.includes('THAA')), 'a token in the logs');
});

test.run();
