import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBreaker } from '../../src/supervisor/breaker.ts';
import { AppError } from '../../src/errors.ts';
import '../../src/platforms/telegram/codes.ts'; // Telegram's codes, as the daemon registers them

const failing = () => Promise.reject(new AppError('TG_UNAVAILABLE', 'down'));

test('opens after more than N failures inside the window, with CIRCUIT_OPEN and retryAfter', async () => {
  let now = 1_000_000;
  const b = createBreaker({ maxFailures: 3, windowMs: 60_000, halfOpenAfterMs: 30_000 }, () => now);
  for (let i = 0; i < 4; i++) {
    const err = await b.run(failing).catch((e) => e);
    assert.is(err.code, 'TG_UNAVAILABLE');
    now += 1000;
  }
  const err = await b.run(() => Promise.resolve(1)).catch((e) => e);
  assert.is(err.code, 'CIRCUIT_OPEN');
  assert.ok(err.retryAfter >= 1 && err.retryAfter <= 30);
  assert.ok(b.openUntil()! > now);
});

test('failures spread wider than the window never open it', async () => {
  let now = 0;
  const b = createBreaker({ maxFailures: 3, windowMs: 10_000, halfOpenAfterMs: 30_000 }, () => now);
  for (let i = 0; i < 10; i++) {
    await b.run(failing).catch(() => undefined);
    now += 5_000;
  }
  assert.is(await b.run(() => Promise.resolve('ok')), 'ok');
});

test('flood waits and permanent errors do not count', async () => {
  const b = createBreaker({ maxFailures: 1, windowMs: 60_000, halfOpenAfterMs: 30_000 });
  for (let i = 0; i < 5; i++) {
    await b.run(() => Promise.reject(new AppError('TG_API_429', 'wait', { retryAfter: 3 }))).catch(() => undefined);
    await b.run(() => Promise.reject(new AppError('TG_SESSION_EXPIRED', 'revoked'))).catch(() => undefined);
  }
  assert.is(await b.run(() => Promise.resolve('ok')), 'ok');
});

test('half-open probe after the delay: success closes, failure reopens', async () => {
  const b = createBreaker({ maxFailures: 1, windowMs: 60_000, halfOpenAfterMs: 50 });
  await b.run(failing).catch(() => undefined);
  await b.run(failing).catch(() => undefined);
  assert.is((await b.run(() => Promise.resolve(1)).catch((e) => e)).code, 'CIRCUIT_OPEN');
  await new Promise((r) => setTimeout(r, 60)); // cockatiel reads Date.now for half-open; 60 ms is the smallest honest wait
  assert.is((await b.run(failing).catch((e) => e)).code, 'TG_UNAVAILABLE');
  assert.is((await b.run(() => Promise.resolve(1)).catch((e) => e)).code, 'CIRCUIT_OPEN');
  await new Promise((r) => setTimeout(r, 60));
  assert.is(await b.run(() => Promise.resolve('probe')), 'probe');
  assert.is(b.openUntil(), undefined);
  assert.is(b.window.failures, 0);
});

test.run();
