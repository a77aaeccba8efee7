// Load shedding (API.md: OVERLOADED 503 with Retry-After): while the loop lags past the threshold a
// request is refused before auth and the rate limits; probes still answer. The monitor is injected
// for the plugin's decisions; the real monitor is checked against a loop it blocks itself.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { LagWindow, lagMonitor, type LagMonitor } from '../../src/api/load-shed.plugin.ts';
import { shellServer } from './shell-server.ts';

const test = suite('load shedding');

let lag = 0;
const monitor: LagMonitor = { lagMs: () => lag, stop: () => undefined };
let srv: Awaited<ReturnType<typeof shellServer>>;

test.before(async () => {
  srv = await shellServer({ loadShed: { thresholdMs: 500, monitor }, rateLimit: { connect: 10, send: 100, status: 2 } });
  srv.server.route({ method: 'GET', path: '/v1/ping', handler: () => ({ ok: true }) });
});
test.after(() => srv.server.stop());
test.before.each(() => { lag = 0; });

test('a request passes while the loop keeps up', async () => {
  lag = 500;
  const res = await srv.server.inject({ method: 'GET', url: '/v1/ping', headers: { authorization: `Bearer ${srv.token('shed-ok')}` } });
  assert.is(res.statusCode, 200);
});

test('past the threshold: 503 OVERLOADED with Retry-After from the lag, before auth and not counted by the rate limit', async () => {
  lag = 2300;
  const anonymous = await srv.server.inject({ method: 'GET', url: '/v1/ping' });
  assert.is(anonymous.statusCode, 503, 'refused before the token is even checked');
  const token = srv.token('shed-caller');
  for (let i = 0; i < 5; i++) {
    const res = await srv.server.inject({ method: 'GET', url: '/v1/ping', headers: { authorization: `Bearer ${token}` } });
    assert.is(res.statusCode, 503);
    assert.is(res.headers['retry-after'], '3');
    const body = JSON.parse(res.payload) as { error: { code: string; retryAfter: number } };
    assert.is(body.error.code, 'OVERLOADED');
    assert.is(body.error.retryAfter, 3);
  }
  lag = 0;
  // the status limit is 2 per minute: five shed requests did not use it up
  for (let i = 0; i < 2; i++) {
    const res = await srv.server.inject({ method: 'GET', url: '/v1/ping', headers: { authorization: `Bearer ${token}` } });
    assert.is(res.statusCode, 200);
  }
});

test('Retry-After stays within 1..30 s', async () => {
  lag = 600;
  const short = await srv.server.inject({ method: 'GET', url: '/v1/ping' });
  assert.is(short.headers['retry-after'], '1');
  lag = 120_000;
  const long = await srv.server.inject({ method: 'GET', url: '/v1/ping' });
  assert.is(long.headers['retry-after'], '30');
});

test('liveness, readiness and metrics are never shed', async () => {
  lag = 10_000;
  for (const url of ['/health/live', '/health/ready', '/metrics']) {
    const res = await srv.server.inject({ method: 'GET', url });
    assert.is.not(res.statusCode, 503, url);
  }
});

test('threshold 0 turns shedding off', async () => {
  const off = await shellServer({ loadShed: { thresholdMs: 0, monitor } });
  off.server.route({ method: 'GET', path: '/v1/ping', handler: () => ({ ok: true }), options: { auth: false } });
  lag = 60_000;
  const res = await off.server.inject({ method: 'GET', url: '/v1/ping' });
  assert.is(res.statusCode, 200);
  await off.server.stop();
});

test('the monitor sees a loop it blocks: the largest drift of the last second is at least the block', async () => {
  const m = lagMonitor({ intervalMs: 20, windowMs: 5000 });
  try {
    await new Promise((r) => setTimeout(r, 60));
    const until = performance.now() + 300;
    while (performance.now() < until) { /* hold the loop 300 ms */ }
    await new Promise((r) => setTimeout(r, 60));
    // a lower bound only: a loaded machine adds lag, never removes it
    assert.ok(m.lagMs() >= 250, `lag ${m.lagMs()} ms after a 300 ms block`);
  } finally {
    m.stop();
  }
});

test('the window keeps the largest lag of its span and forgets what is older', () => {
  const w = new LagWindow(1000);
  w.record(0, 5);
  w.record(100, 2000);
  w.record(150, 3);
  assert.is(w.max(150), 2000, 'one blocked turn counts for the whole window');
  assert.is(w.max(1099), 2000);
  assert.is(w.max(1101), 3, 'older than the window: forgotten');
  w.record(2000, 7);
  assert.is(w.max(2000), 7);
});

test.run();
