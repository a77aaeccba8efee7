import { createHmac } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { platformWebhooksPlugin } from '../../../src/api/platform-webhooks.plugin.ts';
import { tiktokAdapter } from '../../../src/platforms/tiktok/index.ts';
import { shellServer } from '../../api/shell-server.ts';
import { realClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { startTiktokEmulator } from '../../emulator/tiktok/index.ts';
import { until } from '../../helpers/stack.ts';
import { apps, consent, startOAuthStack, type OAuthStack } from '../oauth-stack.ts';

// TikTok's authorization.removed webhook into POST /v1/platform-webhooks/tiktok (the real route, the
// connection service and supervisor, the emulator signing with the client secret): a good
// TikTok-Signature moves the creator's connection to error PLATFORM_AUTH_REVOKED; a bad, stale or
// missing signature → 401 and the connection stays active; a malformed body → 400, never 500.

let emu: PlatformEmulator;
let stack: OAuthStack;
let shell: Awaited<ReturnType<typeof shellServer>>;
let hook: string;

test.before(async () => {
  emu = await startTiktokEmulator({ clock: realClock(), apps });
  stack = await startOAuthStack(tiktokAdapter({ clientKey: apps.tiktok.clientKey, clientSecret: apps.tiktok.clientSecret, oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api!, timeoutMs: 5000 }));
  shell = await shellServer();
  await shell.server.register({
    plugin: platformWebhooksPlugin,
    options: {
      sql: stack.db.sql, platforms: stack.platforms, logger: shell.logger,
      // As src/app.ts wires it.
      onRevoked: (c, error) => {
        const rt = stack.supervisor.live(c.owner, c.id);
        if (rt) stack.supervisor.platformError(rt, error);
      },
    },
  });
  await shell.server.start();
  hook = `${shell.server.info.uri}/v1/platform-webhooks/tiktok`;
  await ctl(emu, 'POST', '/webhook-url', { url: hook });
});
test.after(async () => {
  await shell.server.stop();
  await stack.close();
  await emu.stop();
});

async function connect(owner: string, username: string): Promise<{ id: string; openId: string }> {
  const { json } = await ctl(emu, 'POST', '/accounts', { username });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const c = await stack.connections.create(owner, { platform: 'tiktok', kind: 'account' });
  await stack.connections.authorizationCallback('tiktok', await consent(c.login!.authorizeUrl as string, 'tiktok'));
  await until(async () => (await stack.connections.get(owner, c.id)).status === 'active', 'active');
  // The webhook finds connections by the stored account id, written just after the status turns active
  // (under CI load a webhook sent at once found no connection and changed nothing).
  await until(async () => (await stack.db.sql`select 1 from connections where id = ${c.id} and platform_user_id = ${json.accountId}`).length === 1, 'account id stored');
  return { id: c.id, openId: json.accountId };
}

const removedBody = (openId: string, t = Math.floor(Date.now() / 1000)) =>
  JSON.stringify({ client_key: apps.tiktok.clientKey, event: 'authorization.removed', create_time: t, user_openid: openId, content: JSON.stringify({ reason: 1 }) });
const sig = (secret: string, t: number, body: string) => `t=${t},s=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
const post = (body: string, headers: Record<string, string>) =>
  shell.server.inject({ method: 'POST', url: '/v1/platform-webhooks/tiktok', payload: body, headers: { 'content-type': 'application/json', ...headers } });
const codeOf = (res: { payload: string }) => JSON.parse(res.payload).error?.code;

test('a signed authorization.removed from TikTok → the connection goes to error PLATFORM_AUTH_REVOKED; another creator\'s stays active', async () => {
  const a = await connect('alice', 'creator_gone');
  const b = await connect('bob', 'creator_stays');
  const { json: delivery } = await ctl(emu, 'POST', '/events', { account: a.openId, event: 'authorization.removed', reason: 1 });
  assert.is(delivery.status, 200, JSON.stringify(delivery));
  const c = await until(async () => {
    const x = await stack.connections.get('alice', a.id);
    return x.status === 'error' ? x : undefined;
  }, 'error');
  assert.is((c as any).error.code, 'PLATFORM_AUTH_REVOKED');
  assert.is((await stack.connections.get('bob', b.id)).status, 'active');
  // The secret never shows in what the service logged.
  assert.not.match(shell.lines.join('\n'), new RegExp(apps.tiktok.clientSecret));
});

test('bad, stale or missing TikTok-Signature → 401, nothing done; the same body signed right → error', async () => {
  const a = await connect('carol', 'creator_kept');
  const t = Math.floor(Date.now() / 1000);
  const body = removedBody(a.openId, t);
  const old = removedBody(a.openId, t - 3600); // an hour old, signed right: a replay
  const cases: Array<[string, Record<string, string>]> = [
    [body, {}],
    [body, { 'tiktok-signature': sig('not-the-secret', t, body) }],
    [body, { 'tiktok-signature': sig(apps.tiktok.clientSecret, t, body.replace('authorization', 'Authorization')) }],
    [old, { 'tiktok-signature': sig(apps.tiktok.clientSecret, t - 3600, old) }],
    [body, { 'tiktok-signature': `t=${t}` }],
    [body, { 'tiktok-signature': 'garbage' }],
  ];
  for (const [raw, headers] of cases) {
    const res = await post(raw, headers);
    assert.is(res.statusCode, 401, JSON.stringify(headers));
    assert.is(codeOf(res), 'UNAUTHORIZED');
  }
  // The same body correctly signed is what the route acts on (the cases above failed on the signature alone).
  assert.is((await post(body, { 'tiktok-signature': sig(apps.tiktok.clientSecret, t, body) })).statusCode, 200);
  await until(async () => (await stack.connections.get('carol', a.id)).status === 'error', 'error after the good signature');
});

test('signed but malformed → 400 VALIDATION_ERROR, never 500; an event for nobody or another event → 200, nothing changes', async () => {
  const a = await connect('dave', 'creator_other');
  const t = Math.floor(Date.now() / 1000);
  for (const body of ['not json', '[]', '{"event":"authorization.removed"}', JSON.stringify({ client_key: 'someone-else', event: 'authorization.removed', user_openid: a.openId })]) {
    const res = await post(body, { 'tiktok-signature': sig(apps.tiktok.clientSecret, t, body) });
    assert.is(res.statusCode, 400, body);
    assert.is(codeOf(res), 'VALIDATION_ERROR', body);
  }
  for (const body of [removedBody('open-id-nobody-has', t), JSON.stringify({ client_key: apps.tiktok.clientKey, event: 'video.publish.complete', user_openid: a.openId, content: '{}' })]) {
    const res = await post(body, { 'tiktok-signature': sig(apps.tiktok.clientSecret, t, body) });
    assert.is(res.statusCode, 200, body);
  }
  assert.is((await stack.connections.get('dave', a.id)).status, 'active');
});

test.run();
