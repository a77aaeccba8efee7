// Instagram and Threads webhooks into the whole daemon (startApp) from their emulators over real
// sockets: registering the callback URL runs Meta's GET handshake against /v1/platform-webhooks/{platform};
// an Instagram comment and direct message (the connection subscribed the app to them on connect) and a
// Threads reply and mention, each signed with X-Hub-Signature-256 over the raw body, are stored once as
// `message.received` of the owning connection; unsigned or badly signed deliveries answer 401 and store
// nothing; an event for an account nobody connected stores nothing; another caller sees none of it.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp, type App } from '../../../src/app.ts';
import { mintToken } from '../../../src/auth/token.ts';
import { loadConfig } from '../../../src/config.ts';
import { startInstagramEmulator } from '../../emulator/instagram/index.ts';
import { resolveApps } from '../../emulator/platforms/registry.ts';
import { realClock, type EmulatorApps, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { browse, ctl } from '../../emulator/support/platform-client.ts';
import { startThreadsEmulator } from '../../emulator/threads/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { freePort } from '../../helpers/private-services.ts';
import { until } from '../../helpers/stack.ts';

interface Ctx {
  apps: EmulatorApps; ig: PlatformEmulator; th: PlatformEmulator; db: TestDatabase; app: App; secret: string;
  igConn: string; igAccount: string; thConn: string; thAccount: string;
}
const test = suite<Ctx>('instagram and threads webhooks e2e', {} as Ctx);
const owner = 'meta-hooks';

async function call(ctx: Ctx, sub: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(ctx.app.url + path, {
    method,
    headers: { authorization: `Bearer ${mintToken({ secret: ctx.secret, sub })}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function connect(ctx: Ctx, emu: PlatformEmulator, platform: string, username: string): Promise<{ id: string; accountId: string }> {
  const { json } = await ctl(emu, 'POST', '/accounts', { username });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const created = await call(ctx, owner, 'POST', '/v1/connections', { platform, kind: 'account', redirectUri: 'https://app.example/done' });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const back = await browse(created.body.login.authorizeUrl, 'https://app.example/done');
  assert.is(back.location?.searchParams.get('status'), 'active', JSON.stringify(back));
  await until(async () => (await call(ctx, owner, 'GET', `/v1/connections/${created.body.id}`)).body.status === 'active', 'active');
  return { id: created.body.id, accountId: json.accountId };
}

test.before(async (ctx) => {
  ctx.apps = resolveApps({});
  ctx.ig = await startInstagramEmulator({ clock: realClock(), apps: ctx.apps, processingMs: { image: 0, text: 0 }, webhookRetries: 0 });
  ctx.th = await startThreadsEmulator({ clock: realClock(), apps: ctx.apps, processingMs: { text: 0 }, webhookRetries: 0 });
  ctx.db = await createTestDatabase();
  ctx.secret = randomBytes(32).toString('base64url');
  const port = await freePort();
  ctx.app = await startApp({
    ...loadConfig({
      DATABASE_URL: ctx.db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'meta-hooks-')), JWT_SECRET: ctx.secret, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      PUBLIC_URL: `http://127.0.0.1:${port}`, META_APP_ID: ctx.apps.meta.appId, META_APP_SECRET: ctx.apps.meta.appSecret, META_VERIFY_TOKEN: ctx.apps.meta.verifyToken,
      INSTAGRAM_API_URL: ctx.ig.urls.api!, INSTAGRAM_OAUTH_URL: ctx.ig.urls.oauth!, THREADS_API_URL: ctx.th.urls.api!, THREADS_OAUTH_URL: ctx.th.urls.oauth!,
      RATE_LIMIT_CONNECT: '1000', RATE_LIMIT_SEND: '100000', OVERLOAD_LAG_MS: '0',
    }),
    port,
  });
  // Registering the callback URL makes each emulator run Meta's GET handshake against the daemon.
  for (const [emu, platform] of [[ctx.ig, 'instagram'], [ctx.th, 'threads']] as const) {
    const reg = await ctl(emu, 'POST', '/webhook-url', { url: `${ctx.app.url}/v1/platform-webhooks/${platform}` });
    assert.is(reg.json.verified, true, `${platform}: ${JSON.stringify(reg.json)}`);
  }
  const ig = await connect(ctx, ctx.ig, 'instagram', 'hooks_ig');
  ctx.igConn = ig.id;
  ctx.igAccount = ig.accountId;
  const th = await connect(ctx, ctx.th, 'threads', 'hooks_th');
  ctx.thConn = th.id;
  ctx.thAccount = th.accountId;
});
test.after(async (ctx) => {
  await ctx.app?.stop().catch(() => undefined);
  await ctx.ig?.stop();
  await ctx.th?.stop();
  await ctx.db?.drop();
});

const received = async (ctx: Ctx, conn: string, sub = owner) => {
  const log = await call(ctx, sub, 'GET', `/v1/events/log?type=message.received&connectionId=${conn}`);
  return ((log.body?.items ?? []) as Array<{ data: { chat: string; from: string; text: string; platformMessageId: string } }>).map((e) => e.data);
};

test('handshake: the right verify token echoes the challenge for both; a wrong one 403', async (ctx) => {
  for (const platform of ['instagram', 'threads']) {
    const hook = `${ctx.app.url}/v1/platform-webhooks/${platform}`;
    const q = (token: string) => `?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${encodeURIComponent(token)}`;
    const ok = await fetch(hook + q(ctx.apps.meta.verifyToken));
    assert.equal([ok.status, await ok.text()], [200, '1158201444']);
    assert.is((await fetch(hook + q('wrong-token'))).status, 403);
  }
});

test('Instagram: connecting subscribed the app to comments and messages of the account', async (ctx) => {
  // The emulator delivers only fields the account subscribed the app to (else delivered: false with the reason).
  const d = await ctl(ctx.ig, 'POST', '/events', { account: ctx.igAccount, type: 'message', text: 'probe', from: { id: '9000000001' } });
  assert.equal([d.json.delivered, d.json.status], [true, 200], JSON.stringify(d.json));
});

test('Instagram: a signed comment and a direct message are stored once as message.received; a badly signed one is 401, not stored', async (ctx) => {
  // A comment on one of the account's posts (the id as Instagram gives it).
  const mediaId = '17890000000000001';
  const c = await ctl(ctx.ig, 'POST', '/events', { account: ctx.igAccount, type: 'comment', mediaId, text: 'Nice one', from: { id: '9000000002', username: 'fan_one' } });
  assert.equal([c.json.delivered, c.json.status], [true, 200], JSON.stringify(c.json));
  const m = await ctl(ctx.ig, 'POST', '/events', { account: ctx.igAccount, type: 'message', text: 'Hello there', from: { id: '9000000003' } });
  assert.equal([m.json.delivered, m.json.status], [true, 200]);
  const bad = await ctl(ctx.ig, 'POST', '/events', { account: ctx.igAccount, type: 'comment', mediaId, text: 'forged', from: { id: '9000000004', username: 'forger' }, badSignature: true });
  assert.equal([bad.json.delivered, bad.json.status], [false, 401]);
  const got = await until(async () => {
    const r = await received(ctx, ctx.igConn);
    return r.some((e) => e.text === 'Hello there') && r.some((e) => e.text === 'Nice one') ? r : undefined;
  }, 'stored');
  const comment = got.filter((e) => e.text === 'Nice one');
  assert.equal(comment.map((e) => [e.chat, e.from, e.platformMessageId]), [[mediaId, 'fan_one', c.json.id]]);
  assert.equal(got.filter((e) => e.text === 'Hello there').map((e) => [e.chat, e.from]), [['9000000003', '9000000003']]);
  assert.not.ok(got.some((e) => e.text === 'forged'), 'the badly signed comment is not stored');
  // Meta delivers at least once: the same comment again is stored once.
  const deliveries = await ctl(ctx.ig, 'GET', '/webhooks');
  const again = (deliveries.json as Array<{ body: unknown; ok: boolean }>).find((x) => x.ok && JSON.stringify(x.body).includes('Nice one'))!;
  const raw = JSON.stringify(again.body);
  const res = await fetch(`${ctx.app.url}/v1/platform-webhooks/instagram`, {
    method: 'POST', body: raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${createHmac('sha256', ctx.apps.meta.appSecret).update(raw).digest('hex')}` },
  });
  assert.is(res.status, 200);
  assert.is((await received(ctx, ctx.igConn)).filter((e) => e.text === 'Nice one').length, 1);
  assert.equal(await received(ctx, ctx.igConn, 'someone-else'), [], 'another caller sees none of it');
});

test('Threads: a signed reply and a mention are stored as message.received of the connection; forged → 401, nothing stored', async (ctx) => {
  const sent = await call(ctx, owner, 'POST', '/v1/messages', { connectionId: ctx.thConn, chat: '@hooks_th', text: 'a thread to reply to' });
  assert.is(sent.status, 202, JSON.stringify(sent.body));
  const msg = await until(async () => {
    const m = (await call(ctx, owner, 'GET', `/v1/messages/${sent.body.id}`)).body;
    return m.status === 'sent' || m.status === 'failed' ? m : undefined;
  }, 'sent');
  assert.is(msg.status, 'sent');
  const r = await ctl(ctx.th, 'POST', '/events', { account: ctx.thAccount, type: 'reply', postId: msg.platformMessageId, text: 'Agreed!', from: { username: 'replier' } });
  assert.equal([r.json.delivered, r.json.status], [true, 200], JSON.stringify(r.json));
  const mention = await ctl(ctx.th, 'POST', '/events', { account: ctx.thAccount, type: 'mention', text: 'cc @hooks_th', from: { username: 'mentioner' } });
  assert.equal([mention.json.delivered, mention.json.status], [true, 200]);
  const bad = await ctl(ctx.th, 'POST', '/events', { account: ctx.thAccount, type: 'reply', postId: msg.platformMessageId, text: 'forged', badSignature: true });
  assert.equal([bad.json.delivered, bad.json.status], [false, 401]);
  const got = await until(async () => {
    const x = await received(ctx, ctx.thConn);
    return x.length >= 2 ? x : undefined;
  }, 'stored');
  const byText = Object.fromEntries(got.map((e) => [e.text, e]));
  assert.equal([byText['Agreed!']?.chat, byText['Agreed!']?.from, byText['Agreed!']?.platformMessageId], [msg.platformMessageId, 'replier', r.json.id]);
  assert.equal([byText['cc @hooks_th']?.chat, byText['cc @hooks_th']?.from], [mention.json.id, 'mentioner']);
  assert.not.ok('forged' in byText);
  assert.is(got.length, 2);
});

test('unsigned, wrongly signed and malformed deliveries: 401 / 401 / 400, never 500; an unknown account stores nothing', async (ctx) => {
  for (const platform of ['instagram', 'threads']) {
    const hook = `${ctx.app.url}/v1/platform-webhooks/${platform}`;
    const body = platform === 'instagram'
      ? JSON.stringify({ object: 'instagram', entry: [{ id: '1', time: 1, changes: [{ field: 'comments', value: { id: '5', text: 'x', from: { id: '2', username: 'u' }, media: { id: '3' } } }] }] })
      : JSON.stringify({ app_id: '1', topic: 'moderate', target_id: '1', time: 1, values: { field: 'mentions', value: { id: '5', username: 'u', text: 'x' } } });
    const post = (raw: string, headers: Record<string, string> = {}) => fetch(hook, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...headers } });
    const sign = (secret: string, raw: string) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
    assert.is((await post(body)).status, 401, `${platform} unsigned`);
    assert.is((await post(body, { 'x-hub-signature-256': 'sha256=00' })).status, 401);
    assert.is((await post(body, { 'x-hub-signature-256': sign('another-secret', body) })).status, 401);
    assert.is((await post('{"not":', { 'x-hub-signature-256': sign(ctx.apps.meta.appSecret, '{"not":') })).status, 400);
    assert.is((await post('[]', { 'x-hub-signature-256': sign(ctx.apps.meta.appSecret, '[]') })).status, 400);
    // Correctly signed, for an account no connection has: acknowledged (Meta would retry otherwise), nothing stored.
    assert.is((await post(body, { 'x-hub-signature-256': sign(ctx.apps.meta.appSecret, body) })).status, 200);
  }
  const [{ n }] = await ctx.db.sql<[{ n: number }]>`select count(*)::int as n from messages where direction = 'in' and text = 'x'`;
  assert.is(n, 0);
});

test.run();
