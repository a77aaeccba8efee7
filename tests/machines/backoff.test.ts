// Backoff arithmetic, failure classification, and the retry schedule the machines actually keep
// under xstate's SimulatedClock.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffDelay, clockOf, DEFAULT_BACKOFF, remainingMs, resolveBackoff } from '../../machines/backoff.ts';
import { applyFailure, failureKind, isConnectionFatal } from '../../machines/failure.ts';
import { advance, startAccount } from './account-fixture.ts';
import { Fakes, T0, err, testClock } from './harness.ts';

const unit = suite('backoff: arithmetic');

unit('full jitter: random × min(cap, base × 2^attempt)', () => {
  const cfg = { baseMs: 1000, capMs: 60_000 };
  assert.equal([0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map((a) => backoffDelay(a, cfg, 1)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
  assert.equal([0, 1, 2, 6].map((a) => backoffDelay(a, cfg, 0.5)), [500, 1000, 2000, 30_000]);
  assert.is(backoffDelay(3, cfg, 0), 0);
  assert.is(backoffDelay(0, cfg, 0.9999), 999, 'whole milliseconds');
});

unit('defaults 1 s / 60 s, and bad config fails at start-up', () => {
  assert.equal(resolveBackoff(), DEFAULT_BACKOFF);
  assert.equal(resolveBackoff({ baseMs: 200 }), { baseMs: 200, capMs: 60_000 });
  assert.throws(() => resolveBackoff({ baseMs: 0 }), /baseMs/);
  assert.throws(() => resolveBackoff({ baseMs: 5000, capMs: 1000 }), /capMs/);
  assert.throws(() => resolveBackoff({ capMs: Number.NaN }), /capMs/);
});

unit('remainingMs never goes negative; clockOf falls back to Date.now and Math.random', () => {
  assert.is(remainingMs(T0 + 500, T0), 500);
  assert.is(remainingMs(T0 - 500, T0), 0);
  assert.is(remainingMs(null, T0), 0);
  const fallback = clockOf({ _clock: {} });
  const before = Date.now();
  assert.ok(fallback.now() >= before);
  const r = fallback.random();
  assert.ok(r >= 0 && r < 1);
  const sim = clockOf({ _clock: testClock(0.25, T0 + 7) });
  assert.is(sim.now(), T0 + 7);
  assert.is(sim.random(), 0.25);
});

const classify = suite('backoff: failure classification');

classify('flood, user, fatal, retry: the category decides, never the code', () => {
  assert.is(failureKind({ code: 'TG_API_429', category: 'rate-limited-until', retryAfter: 3 }), 'flood');
  assert.is(failureKind({ code: 'ANY_QUOTA', category: 'quota-until', retryAfter: 3600 }), 'flood', 'a spent quota is waited out too');
  assert.is(failureKind({ code: 'TG_CODE_INVALID', category: 'rejected' }), 'user');
  assert.is(failureKind({ code: 'TG_SESSION_EXPIRED', category: 'reauthorize' }), 'fatal');
  assert.is(failureKind({ code: 'TG_PHONE_BANNED', category: 'fatal' }), 'fatal');
  assert.is(failureKind({ code: 'TG_UNAVAILABLE', category: 'retry' }), 'retry');
  assert.is(failureKind({ code: 'TG_UNAVAILABLE', category: 'outcome-unknown' }), 'retry');
  assert.is(failureKind({ code: 'TG_SESSION_EXPIRED' }), 'retry', 'a code alone means nothing to a machine');
  assert.is(failureKind({ code: 'SOMETHING_NEW', category: 'something-new' }), 'retry');
  assert.is(failureKind(new Error('boom')), 'retry');
  assert.is(failureKind(undefined), 'retry');
  assert.ok(isConnectionFatal({ code: 'TG_SESSION_EXPIRED', category: 'reauthorize' }));
  assert.ok(isConnectionFatal({ code: 'TG_BOT_TOKEN_INVALID', category: 'fatal' }));
  assert.not.ok(isConnectionFatal({ code: 'TG_CHAT_WRITE_FORBIDDEN', category: 'rejected' }));
});

classify('applyFailure: attempts count retries, not flood waits; unknown text is replaced', () => {
  const clock = clockOf({ _clock: testClock(1) });
  const cfg = { baseMs: 1000, capMs: 60_000 };
  const s0 = { attempt: 0, retryAt: null, error: null };
  const s1 = applyFailure(s0, { code: 'TG_UNAVAILABLE', category: 'retry', message: 'down' }, cfg, clock);
  assert.equal(s1, { attempt: 1, retryAt: T0 + 1000, error: { code: 'TG_UNAVAILABLE', message: 'down', retryAt: T0 + 1000 } });
  const s2 = applyFailure(s1, { code: 'TG_API_429', category: 'rate-limited-until', retryAfter: 42, message: 'wait' }, cfg, clock);
  assert.equal(s2, { attempt: 1, retryAt: T0 + 42_000, error: { code: 'TG_API_429', message: 'wait', retryAt: T0 + 42_000 } });
  const s3 = applyFailure(s2, new Error('token 123:ABC leaked'), cfg, clock);
  assert.is(s3.error?.code, 'PLATFORM_UNAVAILABLE');
  assert.not.match(JSON.stringify(s3), '123:ABC');
  assert.is(s3.retryAt, T0 + 2000);
  const s4 = applyFailure(s3, { code: 'TG_PHONE_BANNED', category: 'fatal', message: 'banned' }, cfg, clock);
  assert.equal(s4, { attempt: 2, retryAt: null, error: { code: 'TG_PHONE_BANNED', message: 'banned' } });
  const long = applyFailure(s0, { code: 'X', message: 'y'.repeat(1000) }, cfg, clock);
  assert.is(long.error?.message.length, 200);
});

const schedule = suite('backoff: schedule in the machine (SimulatedClock)');

// Connect keeps failing; returns the times (ms after T0) at which connect was called.
const callTimes = async (random: number, steps: number, backoff?: { baseMs?: number; capMs?: number }) => {
  const clock = testClock(random);
  const fakes = new Fakes().byDefault('connect', err('TG_UNAVAILABLE'));
  const run = await startAccount({ login: 'session', ...(backoff ? { backoff } : {}) }, { fakes, clock });
  const times: number[] = [0];
  const delays: number[] = [];
  for (let i = 0; i < steps; i += 1) {
    const retryAt = run.ctx().retryAt;
    assert.ok(retryAt !== null);
    const delay = retryAt - clock.now();
    delays.push(delay);
    if (delay > 0) {
      await advance(clock, delay - 1);
      assert.is(fakes.count('connect'), times.length, `retry ${i} fired before the clock reached it`);
    }
    await advance(clock, delay > 0 ? 1 : 0);
    assert.is(fakes.count('connect'), times.length + 1, `retry ${i} did not fire at retryAt`);
    times.push(clock.now() - T0);
  }
  assert.is(run.status(), 'connecting', 'backing off never leaves connecting');
  run.actor.stop();
  return delays;
};

schedule('random = 1: 1 s, 2 s, 4 s, … up to the 60 s cap', async () => {
  assert.equal(await callTimes(1, 9), [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
});

schedule('random = 0.5: half of that', async () => {
  assert.equal(await callTimes(0.5, 8), [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
});

schedule('base and cap come from input', async () => {
  assert.equal(await callTimes(1, 6, { baseMs: 100, capMs: 1000 }), [100, 200, 400, 800, 1000, 1000]);
});

schedule('random = 0: retries at once, still through the clock', async () => {
  assert.equal(await callTimes(0, 3), [0, 0, 0]);
});

unit.run();
classify.run();
schedule.run();
