import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isKeyringError, type Keyring } from '../../src/crypto/keyring.ts';
import { LocalKeyring } from '../../src/crypto/local-keyring.ts';
import { purposeKey } from '../../src/crypto/purpose-keys.ts';
import { rewrapAll } from '../../src/crypto/rewrap.ts';
import { VaultKeyring } from '../../src/crypto/vault-keyring.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startFakeVault, type FakeVault } from '../helpers/fake-vault.ts';

const test = suite('purpose keys');
let vault: FakeVault;
test.before(async () => { vault = await startFakeVault(); });
test.after(async () => { await vault.close(); });

const stored = async (db: TestDatabase) => (await db.sql<{ ciphertext: string }[]>`select ciphertext from purpose_keys where purpose = 'log-subjects'`)[0]?.ciphertext;

async function behaves(open: () => Promise<Keyring>, prefix: string) {
  const db = await createTestDatabase();
  const [a, b] = [await open(), await open()];
  try {
    // Two nodes starting at once with the same keyring agree on one key.
    const keys = await Promise.all([a, b, a, b].map((k) => purposeKey(db.sql, k, 'log-subjects')));
    assert.is(keys[0]!.length, 32);
    assert.ok(keys.every((k) => k.equals(keys[0]!)), 'one key');
    const before = (await stored(db))!;
    assert.ok(before.startsWith(prefix), before.slice(0, 12));
    assert.not.ok(before.includes(keys[0]!.toString('base64')), 'stored only encrypted');

    // A rotation and the rewrap job move the ciphertext; the key stays the same.
    await a.rotate();
    const counts = await rewrapAll(db.sql, a);
    assert.equal(counts, { scanned: 1, rewrapped: 1, current: 0, raced: 0, failed: 0 });
    const after = (await stored(db))!;
    assert.is.not(after, before);
    assert.not.ok(a.needsRewrap(after));
    assert.ok((await purposeKey(db.sql, a, 'log-subjects')).equals(keys[0]!));
  } finally {
    await a.close();
    await b.close();
    await db.drop();
  }
}

test('local keyring: every node with the same KEYRING_KEY reads the same key, across a rotation', async () => {
  const master = randomBytes(32);
  const dir = mkdtempSync(join(tmpdir(), 'purpose-keys-'));
  // File mode rotates on demand (derived mode follows the calendar); both nodes share the file.
  try {
    await behaves(() => LocalKeyring.open({ masterKey: master, file: join(dir, 'keyring.json') }), 'local:v');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vault keyring: the same transit key gives the same key, across a rotation', async () => {
  const keyName = `k-${randomBytes(4).toString('hex')}`;
  await behaves(() => VaultKeyring.open({ addr: vault.url, token: vault.rootToken, keyName }), 'vault:v1:');
});

test('another keyring cannot open the stored key: start-up fails instead of logging under a new key', async () => {
  const db = await createTestDatabase();
  const ours = await LocalKeyring.open({ masterKey: randomBytes(32) });
  const theirs = await LocalKeyring.open({ masterKey: randomBytes(32) });
  try {
    await purposeKey(db.sql, ours, 'log-subjects');
    const err = await purposeKey(db.sql, theirs, 'log-subjects').catch((e: unknown) => e);
    assert.ok(isKeyringError(err), String(err));
  } finally {
    await db.drop();
  }
});

test.run();
