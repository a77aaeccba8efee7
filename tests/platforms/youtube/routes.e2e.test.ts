import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { oauthPlugin } from '../../../src/api/oauth.plugin.ts';
import { shellServer } from '../../api/shell-server.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { until } from '../../helpers/stack.ts';
import { consent } from '../oauth-stack.ts';
import { connectChannel, startYoutubeWorld, type YoutubeWorld } from './helpers.ts';

// The OAuth routes over HTTP (Hapi inject) with the real connection service, supervisor and the YouTube
// emulator: the callback's redirect, refusals (400 OAUTH_STATE_INVALID / VALIDATION_ERROR, never 500),
// reauthorize's owner scoping (404) and state rule (409), and no token in any answer.

let w: YoutubeWorld;
let shell: Awaited<ReturnType<typeof shellServer>>;
test.before(async () => {
  w = await startYoutubeWorld();
  shell = await shellServer();
  await shell.server.register({ plugin: oauthPlugin, options: { connections: w.stack.connections, platforms: w.stack.platforms } });
});
test.after(async () => {
  await shell.server.stop();
  await w.close();
});

const get = (url: string) => shell.server.inject({ method: 'GET', url });
const codeOf = (res: { payload: string }) => JSON.parse(res.payload).error?.code;

test('callback → 302 to the redirectUri with status=active; a replay → 400 OAUTH_STATE_INVALID; no token anywhere', async () => {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username: 'route-chan' });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  const c = await w.stack.connections.create('alice', { platform: 'youtube', kind: 'account', redirectUri: 'https://app.example/back' });
  const q = new URLSearchParams(await consent(c.login!.authorizeUrl as string, 'youtube'));
  const res = await get(`/v1/oauth/youtube/callback?${q}`);
  assert.is(res.statusCode, 302, res.payload);
  const to = new URL(res.headers.location as string);
  assert.is(`${to.origin}${to.pathname}`, 'https://app.example/back');
  assert.is(to.searchParams.get('status'), 'active');
  assert.not.match(res.headers.location as string, /ya29\.|1\/\/0|code=/);
  const again = await get(`/v1/oauth/youtube/callback?${q}`);
  assert.is(again.statusCode, 400);
  assert.is(codeOf(again), 'OAUTH_STATE_INVALID');
  assert.not.match(shell.lines.join('\n'), /ya29\.|1\/\/0/);
});

test('malformed callbacks: 400 VALIDATION_ERROR or OAUTH_STATE_INVALID, never 500', async () => {
  for (const url of [
    '/v1/oauth/nosuch/callback?code=x&state=y',
    '/v1/oauth/youtube/callback?code=x&state=y&junk=1',
    `/v1/oauth/youtube/callback?code=x&state=${'s'.repeat(300)}`,
  ]) {
    const res = await get(url);
    assert.is(res.statusCode, 400, url);
    assert.is(codeOf(res), 'VALIDATION_ERROR', url);
  }
  for (const url of ['/v1/oauth/youtube/callback', '/v1/oauth/youtube/callback?code=x', '/v1/oauth/youtube/callback?state=unknown&code=x']) {
    const res = await get(url);
    assert.is(res.statusCode, 400, url);
    assert.is(codeOf(res), 'OAUTH_STATE_INVALID', url);
  }
});

test('reauthorize: 401 without a token, 404 for another owner or a bad id, 409 when active, 200 with a new URL from error', async () => {
  const { id, channelId } = await connectChannel(w, 'bob', 'route-chan-2');
  const post = (path: string, sub?: string) => shell.server.inject({ method: 'POST', url: path, headers: sub ? { authorization: `Bearer ${shell.token(sub)}` } : {} });
  assert.is((await post(`/v1/connections/${id}/reauthorize`)).statusCode, 401);
  const other = await post(`/v1/connections/${id}/reauthorize`, 'mallory');
  assert.is(other.statusCode, 404);
  assert.is(codeOf(other), 'NOT_FOUND');
  assert.is((await post('/v1/connections/not-a-uuid/reauthorize', 'bob')).statusCode, 404);
  const active = await post(`/v1/connections/${id}/reauthorize`, 'bob');
  assert.is(active.statusCode, 409);
  assert.is(codeOf(active), 'INVALID_STATE');
  // Revoked at Google, noticed on refresh → error; then reauthorize.
  await ctl(w.emu, 'POST', '/revoke', { account: channelId });
  const rt = w.stack.supervisor.live('bob', id)!;
  rt.actor.send({ type: 'PLATFORM_ERROR', error: { code: 'PLATFORM_AUTH_REVOKED', message: 'revoked', category: 'reauthorize', scope: 'connection' } });
  await until(async () => (await w.stack.connections.get('bob', id)).status === 'error', 'error');
  const ok = await post(`/v1/connections/${id}/reauthorize`, 'bob');
  assert.is(ok.statusCode, 200, ok.payload);
  const body = JSON.parse(ok.payload);
  assert.is(body.status, 'awaiting-authorization');
  assert.match(body.login.authorizeUrl, /^http:\/\/127\.0\.0\.1:\d+\/o\/oauth2\/v2\/auth\?/);
});

test.run();
