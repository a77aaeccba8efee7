import { randomUUID } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressKey, rateLimitGroupOf, type RateLimitOptions } from '../../src/api/rate-limit.plugin.ts';
import { startApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { registry } from '../../src/observability/metrics.ts';
import { bearer, shellServer } from './shell-server.ts';

const limits = { connect: 10, send: 100, status: 1000 };

async function withServer(rateLimit: RateLimitOptions) {
  const srv = await shellServer({ rateLimit });
  srv.server.route([
    { method: 'POST', path: '/v1/connections', options: { plugins: { rateLimit: { group: 'connect' } } }, handler: (_r, h) => h.response({ ok: true }).code(201) },
    { method: 'POST', path: '/v1/messages', options: { plugins: { rateLimit: { group: 'send' } } }, handler: (_r, h) => h.response({ ok: true }).code(202) },
    { method: 'GET', path: '/v1/connections', handler: () => ({ items: [] }) },
    { method: 'GET', path: '/v1/connections/{id}', handler: () => { throw new Error('boom'); } },
  ]);
  await srv.server.initialize();
  return srv;
}

const rejectedCount = async () => Number((await registry.metrics()).match(/integration_rate_limited_total\{group="connect"\} (\d+)/)?.[1] ?? 0);

function behaviours(name: string, make: () => Promise<RateLimitOptions & { close?: () => Promise<void> | void }>) {
  const s = suite(name);
  let srv: Awaited<ReturnType<typeof withServer>>;
  let close: (() => Promise<void> | void) | undefined;
  s.before(async () => {
    const opts = await make();
    close = opts.close;
    srv = await withServer(opts);
  });
  s.after(async () => {
    await srv.server.stop();
    await close?.();
  });

  s('the 11th connect call in a minute → 429 with headers; other callers are independent', async () => {
    const alice = bearer(srv.token(`alice-${randomUUID()}`));
    for (let i = 1; i <= 10; i++) {
      const res = await srv.server.inject({ method: 'POST', url: '/v1/connections', headers: alice });
      assert.is(res.statusCode, 201, `call ${i}`);
      assert.is(res.headers['ratelimit-limit'], '10');
      assert.is(res.headers['ratelimit-remaining'], String(10 - i));
      assert.ok(Number(res.headers['ratelimit-reset']) > 0 && Number(res.headers['ratelimit-reset']) <= 60);
    }
    const before = await rejectedCount();
    const refused = await srv.server.inject({ method: 'POST', url: '/v1/connections', headers: alice });
    assert.is(refused.statusCode, 429);
    const err = JSON.parse(refused.payload).error;
    assert.is(err.code, 'RATE_LIMITED');
    assert.ok(err.retryAfter > 0 && err.retryAfter <= 60);
    assert.is(refused.headers['retry-after'], String(err.retryAfter));
    assert.is(refused.headers['ratelimit-remaining'], '0');
    assert.is(refused.headers['ratelimit-limit'], '10');
    assert.is(await rejectedCount(), before + 1);

    const bob = await srv.server.inject({ method: 'POST', url: '/v1/connections', headers: bearer(srv.token(`bob-${randomUUID()}`)) });
    assert.is(bob.statusCode, 201);
    // Groups are separate budgets: alice can still send and read.
    const send = await srv.server.inject({ method: 'POST', url: '/v1/messages', headers: alice });
    assert.is(send.statusCode, 202);
    assert.is(send.headers['ratelimit-limit'], '100');
  });

  s('every GET under /v1 counts in status, error answers carry the headers; service routes do not', async () => {
    const carol = bearer(srv.token(`carol-${randomUUID()}`));
    const list = await srv.server.inject({ url: '/v1/connections', headers: carol });
    assert.is(list.headers['ratelimit-limit'], '1000');
    assert.is(list.headers['ratelimit-remaining'], '999');
    const failed = await srv.server.inject({ url: '/v1/connections/x', headers: carol });
    assert.is(failed.statusCode, 500);
    assert.is(failed.headers['ratelimit-remaining'], '998');
    const live = await srv.server.inject('/health/live');
    assert.is(live.headers['ratelimit-limit'], undefined);
  });

  s('HEAD runs the GET route and counts in its group like the GET', async () => {
    const dan = bearer(srv.token(`dan-${randomUUID()}`));
    const heads = [];
    for (let i = 0; i < 3; i++) heads.push(await srv.server.inject({ method: 'HEAD', url: '/v1/connections', headers: dan }));
    assert.equal(heads.map((r) => [r.statusCode, r.headers['ratelimit-limit'], r.headers['ratelimit-remaining']]),
      [[200, '1000', '999'], [200, '1000', '998'], [200, '1000', '997']]);
    const get = await srv.server.inject({ url: '/v1/connections', headers: dan });
    assert.is(get.headers['ratelimit-remaining'], '996');
  });
  s.run();
}

behaviours('Redis', async () => {
  const redis = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  await new Promise((resolve, reject) => { redis.once('ready', resolve); redis.once('error', reject); });
  return { redis, ...limits, close: async () => { await redis.quit(); } };
});

behaviours('Redis down: memory insurance keeps serving', async () => {
  // A port that was free a moment ago: nothing listens there.
  const probe = createNetServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  const redis = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 1000, lazyConnect: true });
  redis.on('error', () => {});
  redis.connect().catch(() => {});
  return { redis, ...limits, close: () => redis.disconnect() };
});

behaviours('memory only (no Redis)', async () => ({ ...limits }));

const shared = suite('Redis counts are shared between replicas');
shared('two servers on one Redis share a caller budget', async () => {
  const r1 = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
  const r2 = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
  await Promise.all([r1, r2].map((r) => new Promise((ok) => r.once('ready', ok))));
  const a = await withServer({ redis: r1, ...limits });
  const b = await withServer({ redis: r2, ...limits });
  const dave = bearer(a.token(`dave-${randomUUID()}`));
  for (let i = 0; i < 5; i++) await a.server.inject({ method: 'POST', url: '/v1/connections', headers: dave });
  for (let i = 0; i < 5; i++) await b.server.inject({ method: 'POST', url: '/v1/connections', headers: dave });
  const eleventh = await b.server.inject({ method: 'POST', url: '/v1/connections', headers: dave });
  assert.is(eleventh.statusCode, 429);
  await a.server.stop();
  await b.server.stop();
  await r1.quit();
  await r2.quit();
});
shared.run();

// Per client address, before authentication: real sockets, since the address is the peer's.
const perAddress = suite('per-address limit');
let addr: Awaited<ReturnType<typeof withServer>>;
let base = '';
perAddress.before(async () => {
  addr = await withServer({ ...limits, perAddress: 3, trustedProxies: ['127.0.0.0/8'] });
  await addr.server.start();
  base = `http://127.0.0.1:${(addr.server.listener.address() as AddressInfo).port}`;
});
perAddress.after(() => addr.server.stop());

perAddress('the 4th request from one address in a minute → 429 RATE_LIMITED with Retry-After, with or without a token; probes exempt', async () => {
  // Behind the trusted loopback proxy each test picks its own client address.
  const from = { 'x-forwarded-for': '198.51.100.7' };
  const answers = [
    await fetch(`${base}/v1/connections`, { headers: from }),
    await fetch(`${base}/v1/connections`, { headers: { ...from, ...bearer(addr.token(`p-${randomUUID()}`)) } }),
    await fetch(`${base}/v1/nowhere`, { headers: from }),
    await fetch(`${base}/v1/connections`, { headers: { ...from, ...bearer(addr.token(`p-${randomUUID()}`)) } }),
  ];
  assert.equal(answers.map((r) => r.status), [401, 200, 404, 429]);
  const refused = answers[3]!;
  const body = await refused.json() as { error: { code: string; retryAfter: number; message: string } };
  assert.is(body.error.code, 'RATE_LIMITED');
  assert.match(body.error.message, /from one address/);
  assert.ok(body.error.retryAfter > 0 && body.error.retryAfter <= 60);
  assert.is(refused.headers.get('retry-after'), String(body.error.retryAfter));
  assert.is((await fetch(`${base}/health/live`, { headers: from })).status, 200);
  // Another client behind the same proxy has its own budget.
  assert.is((await fetch(`${base}/v1/connections`, { headers: { 'x-forwarded-for': '198.51.100.8' } })).status, 401);
});

perAddress('X-Forwarded-For counts only from a trusted proxy, read from the right', async () => {
  // The client wrote the left hops itself; the trusted proxy appended the real one.
  const spoofed = (i: number) => ({ 'x-forwarded-for': `203.0.113.${i}, 192.0.2.44` });
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await fetch(`${base}/v1/connections`, { headers: spoofed(i) })).status);
  assert.equal(statuses, [401, 401, 401, 429]);

  const direct = await withServer({ ...limits, perAddress: 2 }); // no trusted proxy: the header is ignored
  await direct.server.start();
  const url = `http://127.0.0.1:${(direct.server.listener.address() as AddressInfo).port}/v1/connections`;
  const rotating = [];
  for (let i = 0; i < 3; i++) rotating.push((await fetch(url, { headers: { 'x-forwarded-for': `203.0.113.${i}` } })).status);
  await direct.server.stop();
  assert.equal(rotating, [401, 401, 429]);
});

perAddress('addresses: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
  assert.is(addressKey('192.0.2.1'), '192.0.2.1');
  assert.is(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.is(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.is(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.is(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.is(addressKey('1::2:3:4:5:192.0.2.1'), '1:0:2:3::/64');
  assert.is(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
});
perAddress.run();

// Every route of the assembled daemon (startApp: resource, admin, console, docs, health and
// events routes) counts somewhere: in a per-caller group, or, when it needs no token, per address
// only. The exemptions are listed here with the reason.
const exempt: Record<string, string> = {
  'GET /health/live': 'probe of the orchestrator; refusing it would restart a healthy pod under a flood',
  'GET /health/ready': 'probe of the orchestrator and load balancer, same reason',
  'GET /metrics': 'Prometheus scrape every 10-15 s; a refusal would blind the alerts exactly during a flood',
  'GET /_internal/caller': 'reached through server.inject only (the WebSocket token check), counted by the upgrade itself',
  'POST /internal/forward': 'a peer node passing on a call already counted where it came in; all of a peer\'s forwards share its address, and the HMAC signature is the proof',
};
const table = suite('routing table');
table('every route of the app belongs to a rate-limit group, or is public and counted per address, or is exempt with a reason', async () => {
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'route-groups-'));
  const config = loadConfig({ DATABASE_URL: db.url, DATA_DIR: dataDir, JWT_SECRET: 'route-groups-secret-0123456789-abcdef', HOST: '127.0.0.1', LOG_LEVEL: 'error' });
  const app = await startApp({ ...config, port: 0 });
  try {
    const routes = app.server.table();
    const seen = new Set<string>();
    const ungrouped: string[] = [];
    const publicRoutes: string[] = [];
    for (const route of routes) {
      const name = `${route.method.toUpperCase()} ${route.path}`;
      seen.add(name);
      const group = rateLimitGroupOf(route);
      if (exempt[name]) {
        assert.is(group, false, `${name} is listed as exempt but is limited`);
        continue;
      }
      assert.ok(group !== false, `${name} is exempt from every limit without a reason listed in this test`);
      if ((route.settings.auth as unknown) === false) publicRoutes.push(name); // per address only: no caller to count
      else if (!group) ungrouped.push(name);
    }
    assert.equal(ungrouped, [], 'authenticated routes without a group');
    for (const name of Object.keys(exempt)) assert.ok(seen.has(name), `${name} is listed but no longer exists`);
    // What is public is decided, not drifted into: the console, the API description and its page; the
    // platforms' webhooks (the signature over the raw body is the proof) and the OAuth callback (the
    // single-use state is), and the signed media links platforms download posts' files from (the keyring's
    // signature and expiry are). All of them are still counted per client address.
    const decided = ['GET /v1/platform-webhooks/{platform}', 'POST /v1/platform-webhooks/{platform}', 'GET /v1/oauth/{platform}/callback', 'GET /v1/media/{id}'];
    assert.equal(publicRoutes.filter((r) => !/^GET \/(console\/|swaggerui\/|docs|openapi\.json$|$)/.test(r) && !decided.includes(r)), []);
    for (const name of ['POST /v1/connections/{id}/chats', 'DELETE /v1/connections/{id}', 'DELETE /v1/connections/{id}/chats/{chatId}', 'DELETE /v1/me', 'POST /admin/actors/{id}/restart']) {
      assert.is(rateLimitGroupOf(routes.find((r) => `${r.method.toUpperCase()} ${r.path}` === name)!), 'manage', name);
    }
    assert.is(rateLimitGroupOf(routes.find((r) => r.path === '/v1/events' && r.method === 'get')!), 'status');
  } finally {
    await app.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
table.run();
