import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errorCodes } from '../../src/errors.ts';
import { describeError, knownErrorCodes } from '../../src/console/app/error-text.ts';

test('every error code of the service has a sentence in the console', () => {
  const missing = Object.keys(errorCodes).filter((c) => !knownErrorCodes().includes(c));
  assert.equal(missing, []);
});

test('flood wait reads as code — sentence with the seconds, from retryAfter or retryAt', () => {
  assert.is(describeError({ code: 'TG_API_429', message: 'FLOOD_WAIT_17', retryAfter: 17 }), 'TG_API_429 — Telegram asks to wait 17 s');
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.is(describeError({ code: 'TG_API_429', message: 'x', retryAt: '2026-01-01T00:00:09.200Z' }, now), 'TG_API_429 — Telegram asks to wait 10 s');
  assert.is(describeError({ code: 'RATE_LIMITED', message: 'x' }), 'RATE_LIMITED — Too many requests; try again shortly');
});

test('codes the table does not know keep the server message', () => {
  assert.is(describeError({ code: 'NEW_CODE', message: 'Something new' }), 'NEW_CODE — Something new');
  assert.is(describeError({ code: 'TG_NOT_ADMIN', message: 'ignored' }), 'TG_NOT_ADMIN — The account is not an admin of this chat');
});

test.run();
