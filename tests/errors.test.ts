import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError, endsConnection, errorSpec, isErrorCode, registerErrorCodes } from '../src/errors.ts';

test('core codes map to the statuses of API.md; a platform registers its own', () => {
  assert.is(errorSpec('CONNECTION_NOT_ACTIVE')?.status, 409);
  assert.is(new AppError('VALIDATION_ERROR', 'bad').status, 400);
  assert.is(errorSpec('QUOTA_EXCEEDED')?.status, 403, 'a refusal that waiting does not lift, not a rate (429)');
  assert.not.ok(isErrorCode('XX_TEST_WAIT'));
  registerErrorCodes({ XX_TEST_WAIT: { status: 429, category: 'rate-limited-until' }, XX_TEST_NO: { status: 422, category: 'rejected' } });
  assert.ok(isErrorCode('XX_TEST_WAIT'));
  assert.is(new AppError('XX_TEST_WAIT', 'wait', { retryAfter: 3 }).status, 429);
  // The same meaning again is fine (two registries in one process); another meaning is a bug.
  registerErrorCodes({ XX_TEST_WAIT: { status: 429, category: 'rate-limited-until' } });
  assert.throws(() => registerErrorCodes({ XX_TEST_WAIT: { status: 503, category: 'retry' } }), /different meanings/);
});

test('retryable and outcomeUnknown follow the category, not the message', () => {
  assert.is(new AppError('DEPENDENCY_UNAVAILABLE', 'down').retryable, true);
  assert.is(new AppError('XX_TEST_WAIT', 'wait', { retryAfter: 3 }).retryable, true);
  assert.is(new AppError('XX_TEST_NO', 'refused').retryable, false);
  assert.is(new AppError('QUOTA_EXCEEDED', 'full').retryable, false);
  assert.is(new AppError('INTERNAL', 'x', { category: 'outcome-unknown' }).outcomeUnknown, true);
  assert.is(new AppError('INTERNAL', 'x').outcomeUnknown, false);
});

test('an unregistered code answers 500 rather than something it is not', () => {
  const e = new AppError('NO_SUCH_CODE', 'typo');
  assert.is(e.status, 500);
  assert.is(e.category, 'retry');
});

test('only failures about the connection end it: revoked, fatal, or a link without answers', () => {
  assert.ok(endsConnection(new AppError('MEMORY_BUDGET_EXCEEDED', 'x')));
  assert.ok(endsConnection(new AppError('PLATFORM_UNAVAILABLE', 'no answer', { scope: 'connection' })));
  assert.ok(endsConnection(new AppError('INTERNAL', 'cut', { category: 'outcome-unknown', scope: 'connection' })));
  assert.is(endsConnection(new AppError('PLATFORM_UNAVAILABLE', 'the platform answered 500')), false);
  assert.is(endsConnection(new AppError('XX_TEST_WAIT', 'wait', { retryAfter: 3, scope: 'connection' })), false);
  assert.is(endsConnection(new AppError('XX_TEST_NO', 'refused')), false);
});

test('toJSON never carries the cause', () => {
  const err = new AppError('PLATFORM_UNAVAILABLE', 'down', { cause: new Error('session=SECRET') });
  assert.equal(JSON.parse(JSON.stringify(err)), { code: 'PLATFORM_UNAVAILABLE', message: 'down' });
  assert.ok(isErrorCode('NOT_FOUND'));
  assert.not.ok(isErrorCode('nope'));
});

test.run();
