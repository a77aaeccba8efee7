import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { until } from '../../helpers/stack.ts';
import { consent } from '../oauth-stack.ts';
import { connectChannel, startYoutubeWorld, type YoutubeWorld } from './helpers.ts';

// Google OAuth through the core's plumbing, against the YouTube emulator: authorize URL with state and
// PKCE, the callback, single-use state, refresh by expires_in, revocation → PLATFORM_AUTH_REVOKED,
// reauthorize. Real Postgres, keyring, supervisor and machines.

let w: YoutubeWorld;
test.before(async () => { w = await startYoutubeWorld(); });
test.after(async () => { await w.close(); });

const rejects = async (p: Promise<unknown>, code: string) => {
  try {
    await p;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    assert.is((err as { code: string }).code, code);
    return err as { code: string; retryAfter?: number; message: string };
  }
  throw new Error(`expected ${code}`);
};

test('create → awaiting-authorization with a Google authorize URL (offline, state, S256 PKCE)', async () => {
  const c = await w.stack.connections.create('alice', { platform: 'youtube', kind: 'account' });
  assert.is(c.status, 'awaiting-authorization');
  const u = new URL(c.login!.authorizeUrl as string);
  assert.is(u.searchParams.get('access_type'), 'offline');
  assert.is(u.searchParams.get('code_challenge_method'), 'S256');
  assert.ok((u.searchParams.get('state') ?? '').length >= 43);
  assert.is(u.searchParams.get('redirect_uri'), 'http://127.0.0.1:9/v1/oauth/youtube/callback');
  // Another owner cannot see it.
  await rejects(w.stack.connections.get('mallory', c.id), 'NOT_FOUND');
});

test('authorize → callback → active with the channel; the state cannot be replayed', async () => {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username: 'chan-one' });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  const c = await w.stack.connections.create('alice', { platform: 'youtube', kind: 'account', redirectUri: 'https://app.example/done' });
  const q = await consent(c.login!.authorizeUrl as string, 'youtube');
  const to = new URL(await w.stack.connections.authorizationCallback('youtube', q));
  assert.is(to.origin + to.pathname, 'https://app.example/done');
  assert.is(to.searchParams.get('connection'), c.id);
  assert.is(to.searchParams.get('status'), 'active');
  const live = await w.stack.connections.get('alice', c.id);
  assert.is(live.status, 'active');
  assert.is(live.platformUserId, json.accountId);
  assert.is(live.login, undefined);
  // Tokens are stored encrypted: the ciphertext does not contain the token's prefix.
  const rows = await w.stack.db.sql<Array<{ name: string; ciphertext: string }>>`select name, ciphertext from connection_secrets where connection_id = ${c.id}`;
  assert.equal(rows.map((r) => r.name).sort(), ['access_expires_at', 'access_token', 'refresh_token']);
  assert.ok(rows.every((r) => !r.ciphertext.includes('ya29.') && !r.ciphertext.includes('1//0')));
  // Replayed state: refused, nothing changes.
  await rejects(w.stack.connections.authorizationCallback('youtube', q), 'OAUTH_STATE_INVALID');
  assert.is((await w.stack.connections.get('alice', c.id)).status, 'active');
});

test('unknown, missing or other-platform state → OAUTH_STATE_INVALID; the waiting connection is untouched', async () => {
  const c = await w.stack.connections.create('bob', { platform: 'youtube', kind: 'account' });
  const state = new URL(c.login!.authorizeUrl as string).searchParams.get('state')!;
  await rejects(w.stack.connections.authorizationCallback('youtube', { code: 'x', state: 'not-a-state' }), 'OAUTH_STATE_INVALID');
  await rejects(w.stack.connections.authorizationCallback('youtube', { code: 'x' }), 'OAUTH_STATE_INVALID');
  // An expired state (10 minutes) is refused too.
  await w.stack.db.sql`update oauth_states set expires_at = now() - interval '1 second' where connection_id = ${c.id}`;
  await rejects(w.stack.connections.authorizationCallback('youtube', { code: 'x', state }), 'OAUTH_STATE_INVALID');
  assert.is((await w.stack.connections.get('bob', c.id)).status, 'awaiting-authorization');
});

test('denied consent → redirect with PLATFORM_AUTH_DENIED, connection in error; reauthorize → a new URL that works', async () => {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username: 'chan-deny' });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId, deny: true });
  const c = await w.stack.connections.create('carol', { platform: 'youtube', kind: 'account' });
  const q = await consent(c.login!.authorizeUrl as string, 'youtube');
  assert.is(q.error, 'access_denied');
  const to = new URL(await w.stack.connections.authorizationCallback('youtube', q));
  assert.is(to.searchParams.get('status'), 'error');
  assert.is(to.searchParams.get('code'), 'PLATFORM_AUTH_DENIED');
  const failed = await w.stack.connections.get('carol', c.id);
  assert.is(failed.status, 'error');
  assert.is(failed.error?.code, 'PLATFORM_AUTH_DENIED');
  await rejects(w.stack.connections.reauthorize('mallory', c.id), 'NOT_FOUND');
  const again = await w.stack.connections.reauthorize('carol', c.id);
  assert.is(again.status, 'awaiting-authorization');
  assert.is.not(again.login?.authorizeUrl, c.login?.authorizeUrl);
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  await w.stack.connections.authorizationCallback('youtube', await consent(again.login!.authorizeUrl as string, 'youtube'));
  await until(async () => (await w.stack.connections.get('carol', c.id)).status === 'active', 'active after reauthorize');
});

test('the access token is refreshed before the expires_in Google gave; two callers share one refresh', async () => {
  const { id } = await connectChannel(w, 'dave', 'chan-refresh');
  const driver = w.stack.supervisor.live('dave', id)!.driver as unknown as { keeper: { access(): Promise<string>; refreshes: number } };
  const first = await driver.keeper.access();
  const before = (await ctl(w.emu, 'GET', '/stats')).json.refreshes;
  // 3599 s lifetime, 5 min margin: at +54 min the token is still used as it is …
  w.clock.advance(54 * 60);
  assert.is(await driver.keeper.access(), first);
  // … at +56 min it is renewed, once for two concurrent callers.
  w.clock.advance(2 * 60);
  const [a, b] = await Promise.all([driver.keeper.access(), driver.keeper.access()]);
  assert.is(a, b);
  assert.is.not(a, first);
  assert.is((await ctl(w.emu, 'GET', '/stats')).json.refreshes, before + 1);
  // The renewed token survives a restart (stored, not only cached).
  await w.stack.restart();
  await until(async () => (await w.stack.connections.get('dave', id)).status === 'active', 'active after restart');
  const again = w.stack.supervisor.live('dave', id)!.driver as unknown as { keeper: { access(): Promise<string> } };
  assert.is(await again.keeper.access(), a);
});

test('a revoked grant: refresh → PLATFORM_AUTH_REVOKED (category reauthorize), never a retry', async () => {
  const { id, channelId } = await connectChannel(w, 'erin', 'chan-revoked');
  await ctl(w.emu, 'POST', '/revoke', { account: channelId });
  const rt = w.stack.supervisor.live('erin', id)!;
  const driver = rt.driver as unknown as { keeper: { access(): Promise<string> } };
  w.clock.advance(3600);
  const err = await rejects(driver.keeper.access(), 'PLATFORM_AUTH_REVOKED') as unknown as { category: string; message: string };
  assert.is(err.category, 'reauthorize');
  assert.not.match(err.message, /1\/\/0|ya29\./);
  // Reported to the machine (as delivery does after a failed send): error with the code; reauthorize works.
  rt.actor.send({ type: 'PLATFORM_ERROR', error: err });
  await until(async () => (await w.stack.connections.get('erin', id)).status === 'error', 'error');
  assert.is((await w.stack.connections.get('erin', id)).error?.code, 'PLATFORM_AUTH_REVOKED');
  const again = await w.stack.connections.reauthorize('erin', id);
  assert.is(again.status, 'awaiting-authorization');
});

test.run();
