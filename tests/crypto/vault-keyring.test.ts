import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { isKeyringError } from '../../src/crypto/keyring.ts';
import { VaultKeyring } from '../../src/crypto/vault-keyring.ts';
import { startFakeVault, type FakeVault } from '../helpers/fake-vault.ts';

const MIN = 60_000;
const rejection = async (p: Promise<unknown>): Promise<AppError> => {
  try {
    await p;
  } catch (err) {
    assert.instance(err, AppError);
    return err as AppError;
  }
  throw new Error('expected a rejection');
};
const keyName = () => `k-${randomBytes(4).toString('hex')}`;

const fake = suite('vault keyring against the fake Vault');
let vault: FakeVault;
let clock = Date.UTC(2026, 5, 1);
const now = () => clock;
const opened: VaultKeyring[] = [];
const open = async (opts: Partial<Parameters<typeof VaultKeyring.open>[0]> = {}) => {
  const ring = await VaultKeyring.open({ addr: vault.url, token: vault.rootToken, keyName: keyName(), now, ...opts });
  opened.push(ring);
  return ring;
};
fake.before(async () => {
  vault = await startFakeVault({ now });
});
fake.after(async () => {
  for (const r of opened) await r.close();
  await vault.close();
});

fake('token auth: creates the transit key as aes256-gcm96, derived, auto-rotating every 168h', async () => {
  const name = keyName();
  await open({ keyName: name });
  const key = vault.keys.get(name)!;
  assert.ok(key, 'key created');
  assert.is(key.type, 'aes256-gcm96');
  assert.is(key.derived, true);
  assert.is(key.autoRotateSeconds, 168 * 3600);
  const again = await open({ keyName: name }); // existing key: no second create
  assert.is(again.latestVersion, 1);
});

fake('encrypt/decrypt round trip with vault:v1: ciphertexts bound to their context', async () => {
  const ring = await open();
  const ct = await ring.encrypt('1BVtsOKABu…session-string', 'connection:a:session');
  assert.match(ct, /^vault:v1:[A-Za-z0-9+/]+=*$/);
  assert.is(await ring.decrypt(ct, 'connection:a:session'), '1BVtsOKABu…session-string');
  const err = await rejection(ring.decrypt(ct, 'connection:b:session'));
  assert.ok(isKeyringError(err) && err.reason === 'authentication', err.message);
  assert.not.ok(err.message.includes('session-string'));
  const plain = await ring.encrypt('no context');
  assert.is(await ring.decrypt(plain), 'no context');
  assert.is(await ring.decrypt(await ring.encrypt('', 'c'), 'c'), '');
  assert.throws(() => ring.needsRewrap('local:v1:AAAA'), (e: unknown) => isKeyringError(e) && e.reason === 'malformed');
});

fake('rotate uses transit/keys/<k>/rotate; needsRewrap and rewrap follow latest_version', async () => {
  const name = keyName();
  const ring = await open({ keyName: name });
  const old = await ring.encrypt('bot-token', 'c');
  assert.not.ok(ring.needsRewrap(old));
  assert.is(await ring.rotate(), 2);
  assert.ok(vault.requests.some((r) => r.method === 'POST' && r.path === `transit/keys/${name}/rotate`));
  assert.not.ok(vault.requests.some((r) => r.path === 'sys/rotate'));
  assert.ok(ring.needsRewrap(old));
  const moved = await ring.rewrap(old, 'c');
  assert.match(moved, /^vault:v2:/);
  assert.not.ok(ring.needsRewrap(moved));
  assert.is(await ring.decrypt(moved, 'c'), 'bot-token');
  assert.is(await ring.decrypt(old, 'c'), 'bot-token', 'old version still decrypts');
  assert.match(await ring.encrypt('x', 'c'), /^vault:v2:/);
  assert.ok(isKeyringError(await rejection(ring.rewrap(old, 'other'))));
});

fake('a rotation elsewhere (auto_rotate_period, another replica) is seen after the cache lifetime', async () => {
  const name = keyName();
  const a = await open({ keyName: name, refreshMs: 5 * MIN });
  const b = await open({ keyName: name });
  const ct = await a.encrypt('s', 'c');
  await b.rotate();
  assert.not.ok(a.needsRewrap(ct), 'cached latest_version is still 1');
  assert.is(await a.rotateIfDue(), 2, 'rotateIfDue re-reads the key');
  assert.ok(a.needsRewrap(ct));
  await b.rotate();
  clock += 5 * MIN;
  assert.match(await a.encrypt('t', 'c'), /^vault:v3:/);
  assert.is(a.latestVersion, 3);
});

fake('AppRole: logs in with role_id/secret_id and again before the token TTL ends', async () => {
  const roleId = `role-${randomBytes(4).toString('hex')}`;
  const secretId = `secret-${randomBytes(8).toString('hex')}`;
  vault.addAppRole(roleId, secretId, { ttlSeconds: 3600 });
  const before = vault.logins;
  const ring = await open({ token: undefined, roleId, secretId });
  assert.is(vault.logins, before + 1);
  const ct = await ring.encrypt('s', 'c');
  clock += 39 * MIN; // under 2/3 of 60 minutes
  await ring.decrypt(ct, 'c');
  assert.is(vault.logins, before + 1);
  clock += 2 * MIN; // past 40 minutes: re-login before the call
  assert.is(await ring.decrypt(ct, 'c'), 's');
  assert.is(vault.logins, before + 2);
  clock += 61 * MIN; // even a token that expired meanwhile is replaced first
  assert.is(await ring.decrypt(ct, 'c'), 's');
  assert.is(vault.logins, before + 3);
  clock += 41 * MIN; // concurrent calls at renewal time share one login
  const results = await Promise.all(Array.from({ length: 5 }, () => ring.decrypt(ct, 'c')));
  assert.equal(results, ['s', 's', 's', 's', 's']);
  assert.is(vault.logins, before + 4);
});

fake('AppRole: a revoked token → one re-login and the call succeeds', async () => {
  const roleId = `role-${randomBytes(4).toString('hex')}`;
  vault.addAppRole(roleId, 'sid', { ttlSeconds: 3600 });
  const ring = await open({ token: undefined, roleId, secretId: 'sid' });
  const ct = await ring.encrypt('s', 'c');
  const before = vault.logins;
  // revoke the token the adapter holds, as an operator (or Vault's max_ttl) would
  const held = (ring as unknown as { client: { token: string } }).client.token;
  assert.match(held, /^hvs\./);
  vault.revokeToken(held);
  assert.is(await ring.decrypt(ct, 'c'), 's');
  assert.is(vault.logins, before + 1);
});

fake('AppRole: wrong secret_id → DEPENDENCY_UNAVAILABLE without the secret in the message', async () => {
  const roleId = `role-${randomBytes(4).toString('hex')}`;
  vault.addAppRole(roleId, 'right-secret');
  const err = await rejection(VaultKeyring.open({ addr: vault.url, roleId, secretId: 'wrong-secret-XYZ', keyName: keyName(), now }));
  assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
  assert.match(err.message, /approle login/);
  assert.not.ok(err.message.includes('wrong-secret-XYZ'));
});

fake('policy forbids creating keys (403): fine when the key exists, clear error when it does not', async () => {
  const limited = `hvs.limited-${randomBytes(6).toString('hex')}`;
  vault.addToken(limited, { canCreateKeys: false });
  const name = keyName();
  vault.createKey(name, { derived: true, autoRotateSeconds: 168 * 3600 });
  const ring = await open({ token: limited, keyName: name });
  assert.is(await ring.decrypt(await ring.encrypt('s', 'c'), 'c'), 's');
  const err = await rejection(VaultKeyring.open({ addr: vault.url, token: limited, keyName: keyName(), now }));
  assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
  assert.match(err.message, /does not exist and could not be created/);
  assert.not.ok(err.message.includes(limited));
});

fake('an existing key without derived=true is refused (it would drop the context binding)', async () => {
  const name = keyName();
  vault.createKey(name, { derived: false });
  const err = await rejection(VaultKeyring.open({ addr: vault.url, token: vault.rootToken, keyName: name, now }));
  assert.ok(isKeyringError(err) && err.reason === 'config');
  assert.match(err.message, /derived=true/);
});

fake('an existing key without auto_rotate_period gets 168h', async () => {
  const name = keyName();
  vault.createKey(name, { derived: true, autoRotateSeconds: 0 });
  await open({ keyName: name });
  assert.is(vault.keys.get(name)!.autoRotateSeconds, 604_800);
});

fake('a bad token → DEPENDENCY_UNAVAILABLE, and the token is not in the message', async () => {
  const bad = `hvs.bad-${randomBytes(8).toString('hex')}`;
  const err = await rejection(VaultKeyring.open({ addr: vault.url, token: bad, keyName: keyName(), now }));
  assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
  assert.is(err.status, 503);
  assert.match(err.message, /HTTP 403/);
  assert.not.ok(err.message.includes(bad));
  assert.not.ok(JSON.stringify(err).includes(bad));
  assert.is(err.cause, undefined, 'no request (headers, body) travels along as the cause');
  // a token revoked while running fails the same way and says nothing of the plaintext
  const token = `hvs.short-${randomBytes(6).toString('hex')}`;
  vault.addToken(token);
  const ring = await open({ token });
  vault.revokeToken(token);
  const late = await rejection(ring.encrypt('PLAINTEXT-SECRET', 'c'));
  assert.is(late.code, 'DEPENDENCY_UNAVAILABLE');
  assert.not.ok(late.message.includes('PLAINTEXT-SECRET') || late.message.includes(token));
});

fake('ping checks sys/health; an unreachable Vault is DEPENDENCY_UNAVAILABLE', async () => {
  const ring = await open();
  await ring.ping();
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const err = await rejection(VaultKeyring.open({ addr: `http://127.0.0.1:${port}`, token: 't', keyName: keyName(), now }));
  assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
  assert.match(err.message, /ECONNREFUSED/);
});

fake('no credentials at all is a configuration error', async () => {
  const err = await rejection(VaultKeyring.open({ addr: vault.url, keyName: keyName() }));
  assert.ok(isKeyringError(err) && err.reason === 'config');
});

// Runs only against a real Vault (or OpenBao) with a transit mount: VAULT_ADDR + VAULT_TOKEN.
const real = suite('vault keyring against a real Vault');
const realAddr = process.env.VAULT_ADDR;
const realToken = process.env.VAULT_TOKEN;
if (realAddr && realToken) {
  real('round trip, rotate, needsRewrap, rewrap on a throwaway transit key', async () => {
    const name = `integration-service-test-${randomBytes(4).toString('hex')}`;
    const mount = process.env.VAULT_TRANSIT_MOUNT ?? 'transit';
    const ring = await VaultKeyring.open({ addr: realAddr, token: realToken, keyName: name, mount });
    try {
      await ring.ping();
      const ct = await ring.encrypt('real-vault-secret', 'connection:x:session');
      assert.match(ct, /^vault:v1:/);
      assert.is(await ring.decrypt(ct, 'connection:x:session'), 'real-vault-secret');
      assert.ok(isKeyringError(await rejection(ring.decrypt(ct, 'connection:y:session'))));
      assert.is(await ring.rotate(), 2);
      assert.ok(ring.needsRewrap(ct));
      const moved = await ring.rewrap(ct, 'connection:x:session');
      assert.match(moved, /^vault:v2:/);
      assert.is(await ring.decrypt(moved, 'connection:x:session'), 'real-vault-secret');
    } finally {
      const vaultClient = (ring as unknown as { client: { write(p: string, d: unknown): Promise<unknown>; delete(p: string): Promise<unknown> } }).client;
      await vaultClient.write(`${mount}/keys/${name}/config`, { deletion_allowed: true }).catch(() => undefined);
      await vaultClient.delete(`${mount}/keys/${name}`).catch(() => undefined);
      await ring.close();
    }
  });
} else {
  // Not registered without a server (nothing here runs Vault); the fake above covers the protocol.
  console.log('real-Vault test not run: set VAULT_ADDR and VAULT_TOKEN to run it');
}

fake.run();
real.run();
