// A phone or QR login on a service without TELEGRAM_API_ID/HASH is refused at once with a sentence
// that names the missing variables (503 TG_UNAVAILABLE), instead of a connection that retries with
// "unexpected failure" until its breaker opens. With credentials, the same request is accepted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../../src/errors.ts';
import { telegramAdapter } from '../../../src/platforms/telegram/index.ts';

const adapter = (apiId: number, apiHash: string) => telegramAdapter({ account: { apiId, apiHash } as never, bot: { botApiUrl: 'http://127.0.0.1:9' } });

test('no API id/hash: phone and QR logins answer 503 TG_UNAVAILABLE naming the variables', async () => {
  for (const body of [{ kind: 'user', method: 'phone', phone: '+447700900123' }, { kind: 'user', method: 'qr' }]) {
    const err = await adapter(0, '').prepare(body as never).then(() => undefined, (e: unknown) => e as AppError);
    assert.instance(err, AppError);
    assert.is(err!.code, 'TG_UNAVAILABLE');
    assert.is(err!.status, 503);
    assert.match(err!.message, /TELEGRAM_API_ID and TELEGRAM_API_HASH are not set/);
    assert.is(err!.scope, 'request', 'a refused request, not a broken link');
  }
});

test('with credentials the same login is planned', async () => {
  const plan = await adapter(12345, 'hash').prepare({ kind: 'user', method: 'phone', phone: '+447700900123' } as never);
  assert.is(plan.kind, 'user');
  assert.equal(plan.login, { method: 'phone' });
});

test.run();
