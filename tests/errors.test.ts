import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError, errorCodes, isErrorCode } from '../src/errors.ts';

test('codes map to the statuses of API.md', () => {
  assert.is(errorCodes.TG_API_429, 429);
  assert.is(errorCodes.CONNECTION_NOT_ACTIVE, 409);
  assert.is(new AppError('TG_CODE_INVALID', 'wrong code').status, 422);
});

test('retryable follows the code, not the message', () => {
  assert.is(new AppError('TG_UNAVAILABLE', 'down').retryable, true);
  assert.is(new AppError('TG_API_429', 'wait', { retryAfter: 3 }).retryable, true);
  assert.is(new AppError('TG_SESSION_EXPIRED', 'revoked').retryable, false);
});

test('toJSON never carries the cause', () => {
  const err = new AppError('TG_UNAVAILABLE', 'down', { cause: new Error('session=SECRET') });
  assert.equal(JSON.parse(JSON.stringify(err)), { code: 'TG_UNAVAILABLE', message: 'down' });
  assert.ok(isErrorCode('NOT_FOUND'));
  assert.not.ok(isErrorCode('nope'));
});

test.run();
