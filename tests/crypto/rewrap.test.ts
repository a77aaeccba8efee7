import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { secretContext, type Keyring } from '../../src/crypto/keyring.ts';
import { LocalKeyring } from '../../src/crypto/local-keyring.ts';
import { rewrapAll } from '../../src/crypto/rewrap.ts';
import { VaultKeyring } from '../../src/crypto/vault-keyring.ts';
import { sealSecret, signingSecrets } from '../../src/webhooks/secrets.ts';
import { newSecret } from '../../src/webhooks/signing.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startFakeVault, type FakeVault } from '../helpers/fake-vault.ts';

const test = suite('rewrapAll over connection_secrets');
let db: TestDatabase;
let vault: FakeVault;
let dir: string;
test.before(async () => {
  db = await createTestDatabase();
  vault = await startFakeVault();
  dir = await mkdtemp(join(tmpdir(), 'rewrap-'));
});
test.after(async () => {
  await db.drop();
  await vault.close();
  await rm(dir, { recursive: true, force: true });
});

interface Seeded { id: string; name: string; plain: string }
// 3 connections × 2 secrets = 6 rows, more than one batch of 4.
async function seed(keyring: Keyring): Promise<Seeded[]> {
  const { sql } = db;
  const rows: Seeded[] = [];
  for (let i = 0; i < 3; i++) {
    const id = randomUUID();
    await sql`insert into connections (id, owner, platform, kind, shard) values (${id}, ${'owner-' + i}, 'telegram', 'user', 0)`;
    for (const name of ['session', 'phone']) {
      const plain = `${name}-${randomBytes(6).toString('hex')}`;
      await sql`insert into connection_secrets (connection_id, name, ciphertext, updated_at)
                values (${id}, ${name}, ${await keyring.encrypt(plain, secretContext(id, name))}, now() - interval '1 day')`;
      rows.push({ id, name, plain });
    }
  }
  return rows;
}

const check = async (keyring: Keyring, seeded: Seeded[], prefix: string) => {
  const ids = seeded.map((s) => s.id);
  const rows = await db.sql<{ connection_id: string; name: string; ciphertext: string; fresh: boolean }[]>`
    select connection_id, name, ciphertext, updated_at > now() - interval '1 hour' as fresh
    from connection_secrets where connection_id in ${db.sql(ids)}`;
  assert.is(rows.length, seeded.length);
  for (const s of seeded) {
    const row = rows.find((r) => r.connection_id === s.id && r.name === s.name)!;
    assert.ok(row.ciphertext.startsWith(prefix), `${row.ciphertext.slice(0, 12)} should start with ${prefix}`);
    assert.ok(row.fresh, 'updated_at moved');
    assert.not.ok(keyring.needsRewrap(row.ciphertext));
    assert.is(await keyring.decrypt(row.ciphertext, secretContext(s.id, s.name)), s.plain);
  }
};

const runFor = async (keyring: Keyring, prefix: string) => {
  await db.sql`delete from connections`;
  const seeded = await seed(keyring);
  await keyring.rotate();
  const first = await rewrapAll(db.sql, keyring, { batchSize: 4 });
  assert.equal(first, { scanned: 6, rewrapped: 6, current: 0, raced: 0, failed: 0 });
  await check(keyring, seeded, prefix);
  const second = await rewrapAll(db.sql, keyring, { batchSize: 4 });
  assert.equal(second, { scanned: 6, rewrapped: 0, current: 6, raced: 0, failed: 0 }, 'idempotent');
};

test('local keyring: every row moves to the newest version and still decrypts', async () => {
  const keyring = await LocalKeyring.open({ file: join(dir, 'keyring.json') });
  await runFor(keyring, 'local:v2:');
});

test('vault keyring: every row moves to the newest version and still decrypts', async () => {
  const keyring = await VaultKeyring.open({ addr: vault.url, token: vault.rootToken, keyName: `k-${randomBytes(4).toString('hex')}` });
  try {
    await runFor(keyring, 'vault:v2:');
  } finally {
    await keyring.close();
  }
});

test('a ciphertext copied from another row fails alone and is left untouched', async () => {
  const keyring = await LocalKeyring.open({ file: join(dir, 'copied.json') });
  await db.sql`delete from connections`;
  const seeded = await seed(keyring);
  const [a, b] = [seeded[0]!, seeded[2]!];
  const [{ ciphertext: copied }] = await db.sql<{ ciphertext: string }[]>`
    select ciphertext from connection_secrets where connection_id = ${a.id} and name = 'session'`;
  await db.sql`update connection_secrets set ciphertext = ${copied!} where connection_id = ${b.id} and name = 'session'`;
  await keyring.rotate();
  const counts = await rewrapAll(db.sql, keyring, { batchSize: 100 });
  assert.equal(counts, { scanned: 6, rewrapped: 5, current: 0, raced: 0, failed: 1 });
  const [{ ciphertext: left }] = await db.sql<{ ciphertext: string }[]>`
    select ciphertext from connection_secrets where connection_id = ${b.id} and name = 'session'`;
  assert.is(left, copied);
});

test('an empty table and a batch size of 1 work', async () => {
  const keyring = await LocalKeyring.open({ file: join(dir, 'empty.json') });
  await db.sql`delete from connections`;
  assert.equal(await rewrapAll(db.sql, keyring), { scanned: 0, rewrapped: 0, current: 0, raced: 0, failed: 0 });
  await seed(keyring);
  await keyring.rotate();
  assert.equal(await rewrapAll(db.sql, keyring, { batchSize: 1 }), { scanned: 6, rewrapped: 6, current: 0, raced: 0, failed: 0 });
});

test('webhook secrets, current and previous, move to the newest version and still sign', async () => {
  const keyring = await LocalKeyring.open({ file: join(dir, 'webhooks.json') });
  await db.sql`delete from connections`;
  const made: Array<{ id: string; secrets: string[] }> = [];
  for (let i = 0; i < 3; i++) {
    const id = randomUUID();
    const [current, previous] = [newSecret(), newSecret()];
    await db.sql`insert into webhook_endpoints (id, owner, url, events, secret, previous_secret, previous_expires_at)
      values (${id}, 'owner-w', 'https://hooks.example.com/', ${['*']}, ${await sealSecret(keyring, id, current)},
              ${i === 0 ? null : await sealSecret(keyring, id, previous)}, now() + interval '1 day')`;
    made.push({ id, secrets: i === 0 ? [current] : [current, previous] });
  }
  await keyring.rotate();
  assert.equal(await rewrapAll(db.sql, keyring, { batchSize: 2 }), { scanned: 5, rewrapped: 5, current: 0, raced: 0, failed: 0 });
  for (const m of made) {
    const [row] = await db.sql<any[]>`select * from webhook_endpoints where id = ${m.id}`;
    assert.ok(row.secret.startsWith('local:v2:'));
    assert.equal(await signingSecrets(keyring, row, new Date()), m.secrets);
  }
  assert.equal(await rewrapAll(db.sql, keyring, { batchSize: 2 }), { scanned: 5, rewrapped: 0, current: 5, raced: 0, failed: 0 });
  await db.sql`delete from webhook_endpoints`;
});

test.run();
