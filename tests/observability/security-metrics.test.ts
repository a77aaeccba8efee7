// The series the security alerts read (ops/prometheus/alerts.yml) are really produced: a failed keyring
// operation, Telegram's AUTH_KEY_DUPLICATED, and refused requests by status.
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errors } from 'telegram';
import { openKeyring } from '../../src/crypto/keyring.ts';
import { registry } from '../../src/observability/metrics.ts';
import { mapTelegramError } from '../../src/platforms/telegram/errors.ts';

const value = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0);
};

test('a keyring operation that fails is counted by op and reason; one that works is not', async () => {
  const ring = await openKeyring({ keyringKey: randomBytes(32) });
  const ok = await ring.encrypt('secret', 'ctx');
  assert.is(await ring.decrypt(ok, 'ctx'), 'secret');
  assert.is(await value('integration_keyring_errors_total'), 0);
  await ring.decrypt(ok, 'another-row').then(() => assert.unreachable('decrypted with the wrong context'), () => undefined);
  await ring.decrypt('not a ciphertext').catch(() => undefined);
  assert.is(await value('integration_keyring_errors_total', { op: 'decrypt' }), 2);
  assert.ok(ring.needsRewrap(ok) === false, 'the other methods still work through the wrapper');
  await ring.close();
});

test('AUTH_KEY_DUPLICATED is counted (and still means: log in again)', async () => {
  const before = await value('integration_auth_key_duplicated_total', { platform: 'telegram' });
  const err = mapTelegramError(new errors.RPCError('AUTH_KEY_DUPLICATED', {} as never, 406));
  assert.is(err.code, 'TG_SESSION_EXPIRED');
  mapTelegramError(new errors.RPCError('PHONE_CODE_INVALID', {} as never, 400));
  assert.is(await value('integration_auth_key_duplicated_total', { platform: 'telegram' }), before + 1);
});

test.run();
