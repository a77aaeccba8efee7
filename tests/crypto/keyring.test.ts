import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ciphertextVersion, openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { LocalKeyring } from '../../src/crypto/local-keyring.ts';
import { VaultKeyring } from '../../src/crypto/vault-keyring.ts';
import { startFakeVault } from '../helpers/fake-vault.ts';

const test = suite('openKeyring and the port helpers');

test('picks the Vault adapter when vaultAddr is set', async () => {
  const vault = await startFakeVault();
  try {
    const ring = await openKeyring({ vaultAddr: vault.url, vaultToken: vault.rootToken, vaultKeyName: 'factory', keyringKey: randomBytes(32).toString('base64') });
    assert.instance(ring, VaultKeyring);
    assert.match(await ring.encrypt('x', 'c'), /^vault:v1:/);
    await ring.close();
  } finally {
    await vault.close();
  }
});

test('picks the local keyring otherwise: derived with KEYRING_KEY alone, file with KEYRING_FILE', async () => {
  const derived = await openKeyring({ keyringKey: randomBytes(32).toString('base64') });
  assert.instance(derived, LocalKeyring);
  assert.is((derived as LocalKeyring).mode, 'derived');
  const dir = await mkdtemp(join(tmpdir(), 'factory-'));
  try {
    const file = join(dir, 'k.json');
    const ring = await openKeyring({ keyringFile: file, rotateDays: 7 });
    assert.is((ring as LocalKeyring).mode, 'file');
    assert.is((await stat(file)).mode & 0o777, 0o600);
    assert.match(await ring.encrypt('x', 'c'), /^local:v1:/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('secretContext and ciphertextVersion', () => {
  assert.is(secretContext('3f1c…', 'session'), 'connection:3f1c…:session');
  assert.equal(ciphertextVersion('local:v12:AAAA'), { scheme: 'local', version: 12 });
  assert.equal(ciphertextVersion('vault:v3:AAAA'), { scheme: 'vault', version: 3 });
  assert.is(ciphertextVersion('plain text'), null);
});

test.run();
