// Static secrets from Vault KV v2 (against the loopback fake that follows Vault's HTTP API, see
// tests/helpers/fake-vault.ts): Vault wins over the environment, the environment fills what the entry
// lacks, only secret names are taken, AppRole works, and an unreadable Vault stops the start.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/config.ts';
import { isVaultSecretName, secretsFromVault } from '../src/vault-secrets.ts';
import { startFakeVault, type FakeVault } from './helpers/fake-vault.ts';

const test = suite<{ vault: FakeVault }>('vault secrets', {} as { vault: FakeVault });
test.before(async (ctx) => { ctx.vault = await startFakeVault(); });
test.after(async ({ vault }) => { await vault.close(); });

const jwt = 'j'.repeat(40);

test('without VAULT_ADDR the environment is used as it is', async () => {
  const env = { JWT_SECRET: 'from-env' };
  const r = await secretsFromVault(env);
  assert.is(r.env, env);
  assert.equal(r.loaded, []);
});

test('Vault KV wins over the environment; names it does not hold come from the environment', async ({ vault }) => {
  vault.putSecret('integration-service/config', { JWT_SECRET: jwt, TELEGRAM_API_HASH: 'hash-from-vault' });
  const r = await secretsFromVault({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken, JWT_SECRET: 'e'.repeat(40), TELEGRAM_API_ID: '12345', INSTAGRAM_APP_SECRET: 'from-env' });
  assert.equal(r.loaded, ['JWT_SECRET', 'TELEGRAM_API_HASH']);
  assert.is(r.env.JWT_SECRET, jwt);
  assert.is(r.env.INSTAGRAM_APP_SECRET, 'from-env');
  // The configuration sees Vault's values: the API hash comes with its id, the JWT secret from Vault.
  const config = loadConfig({ ...r.env, DATABASE_URL: 'postgres://x@127.0.0.1/db', DATA_DIR: '/tmp' });
  assert.is(config.jwt.secret, jwt);
  assert.is(config.telegram.apiHash, 'hash-from-vault');
  assert.is(config.telegram.apiId, 12345);
});

test('only secret names are taken from the entry (it cannot point the daemon at another database)', async ({ vault }) => {
  vault.putSecret('integration-service/other', { DATABASE_URL: 'postgres://evil@example/db', TIKTOK_CLIENT_SECRET: 'tt', WHATSAPP_VERIFY_TOKEN: 'wv' });
  const r = await secretsFromVault({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken, VAULT_KV_PATH: 'integration-service/other', DATABASE_URL: 'postgres://ok@127.0.0.1/db' });
  assert.equal(r.loaded, ['TIKTOK_CLIENT_SECRET', 'WHATSAPP_VERIFY_TOKEN']);
  assert.equal(r.ignored, ['DATABASE_URL']);
  assert.is(r.env.DATABASE_URL, 'postgres://ok@127.0.0.1/db');
  assert.ok(isVaultSecretName('YOUTUBE_CLIENT_SECRET'));
  assert.not.ok(isVaultSecretName('VAULT_ADDR'));
});

test('AppRole login, as the daemon runs in compose and Kubernetes', async ({ vault }) => {
  vault.addAppRole('role-1', 'secret-1');
  vault.putSecret('integration-service/config', { JWT_SECRET: jwt });
  const r = await secretsFromVault({ VAULT_ADDR: vault.url, VAULT_ROLE_ID: 'role-1', VAULT_SECRET_ID: 'secret-1' });
  assert.equal(r.loaded, ['JWT_SECRET']);
  assert.ok(vault.logins >= 1);
});

test('an entry that does not exist leaves the environment; a refused token stops the start with a clear message', async ({ vault }) => {
  const missing = await secretsFromVault({ VAULT_ADDR: vault.url, VAULT_TOKEN: vault.rootToken, VAULT_KV_PATH: 'nothing/here', JWT_SECRET: 'env' });
  assert.equal(missing.loaded, []);
  assert.is(missing.env.JWT_SECRET, 'env');
  const err = await secretsFromVault({ VAULT_ADDR: vault.url, VAULT_TOKEN: 'hvs.wrong-token' }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /could not read secret\/data\/integration-service\/config .*HTTP 403/);
  assert.not.match((err as Error).message, /hvs\.wrong-token/);
});

test.run();
