// Retry-After as RFC 9110 §10.2.3 writes it: delay-seconds (digits only) or an HTTP-date.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retryAfterMs, retryAfterSeconds } from '../../src/net/retry-after.ts';

// A zone other than UTC, so that a date read as local time shows (Node applies TZ when it changes).
process.env.TZ = 'Europe/Berlin';
const now = Date.parse('2026-12-07T12:00:00Z');

test('delay-seconds and HTTP-dates, in milliseconds from now', () => {
  assert.is(retryAfterMs('120', now), 120_000);
  assert.is(retryAfterMs(' 0 ', now), 0);
  assert.is(retryAfterMs('Mon, 07 Dec 2026 12:01:30 GMT', now), 90_000);
  assert.is(retryAfterMs('Mon, 07 Dec 2026 11:00:00 GMT', now), 0, 'a date in the past is now');
  assert.is(retryAfterMs('Monday, 07-Dec-26 12:00:10 GMT', now), 10_000, 'rfc850-date');
  assert.is(retryAfterMs('Mon Dec  7 12:00:20 2026', now), 20_000, 'asctime-date, GMT whatever the local zone');
});

test('absent or unreadable → undefined; not delay-seconds: fractions, signs, exponents', () => {
  for (const v of [null, undefined, '', 'soon', '1.5', '-3', '1e3', '12345678901']) assert.is(retryAfterMs(v, now), undefined, String(v));
});

test('whole seconds at least 1, or the fallback', () => {
  assert.is(retryAfterSeconds('30', 60, now), 30);
  assert.is(retryAfterSeconds('0', 60, now), 1);
  assert.is(retryAfterSeconds('Mon, 07 Dec 2026 12:00:00 GMT', 60, now + 500), 1);
  assert.is(retryAfterSeconds('Mon, 07 Dec 2026 12:10:00 GMT', 60, now), 600);
  assert.is(retryAfterSeconds(null, 60, now), 60);
  assert.is(retryAfterSeconds('later', 3600, now), 3600);
});

test.run();
