import { randomUUID } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { RateLimitOptions } from '../../src/api/rate-limit.plugin.ts';
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
