// The local keyring in database mode (several nodes on one Postgres): its key versions live in
// keyring_versions wrapped by KEYRING_KEY. Each "node" here is its own keyring with its own pool on a
// real Postgres database, so locks and races are the server's, not the test's.
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isKeyringError, type KeyringError } from '../../src/crypto/keyring.ts';
import { LocalKeyring } from '../../src/crypto/local-keyring.ts';
import { rewrapAll } from '../../src/crypto/rewrap.ts';
import { putSecret } from '../../src/store/connections.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const DAY = 86_400_000;
const test = suite('shared local keyring (database mode)');
const cleanups: (() => Promise<unknown>)[] = [];
test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const database = async (): Promise<TestDatabase> => {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  return db;
};
// A node's own pool on the shared database.
const pool = (db: TestDatabase) => {
  const sql = postgres(db.url, { max: 2, onnotice: () => undefined });
  cleanups.push(() => sql.end({ timeout: 5 }));
  return sql;
};
const tempFile = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shared-keyring-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'keyring.json');
};
const versions = (db: TestDatabase) =>
  db.sql<{ version: number; source: string; created_at: Date; wrapped_key: string }[]>`select version, source, created_at, wrapped_key from keyring_versions order by version`;
const rejects = async (p: Promise<unknown>): Promise<KeyringError> => {
  try {
    await p;
  } catch (err) {
    assert.ok(isKeyringError(err), `expected a KeyringError, got ${String(err)}`);
    return err as KeyringError;
  }
  throw new Error('expected a rejection');
};
const newKey = () => randomBytes(32).toString('base64');

test('two nodes with the same KEYRING_KEY decrypt each other\'s secrets; no file is written', async () => {
  const db = await database();
  const key = newKey();
  const file = await tempFile(); // configured but absent: with KEYRING_KEY the database is enough
  const a = await LocalKeyring.open({ masterKey: key, file, sql: pool(db) });
  const b = await LocalKeyring.open({ masterKey: Buffer.from(key, 'base64'), sql: pool(db) });
  assert.is(a.mode, 'database');
  assert.is(a.currentVersion, 1);
  const fromA = await a.encrypt('session of A', 'connection:a:session');
  const fromB = await b.encrypt('token of B', 'connection:b:bot_token');
  assert.match(fromA, /^local:v1:/);
  assert.is(await b.decrypt(fromA, 'connection:a:session'), 'session of A');
  assert.is(await a.decrypt(fromB, 'connection:b:bot_token'), 'token of B');
  await rejects(b.decrypt(fromA, 'connection:x:session')); // the context still binds it to its row

  const rows = await versions(db);
  assert.equal(rows.map((r) => [r.version, r.source]), [[1, 'created']]);
  assert.not.ok(rows[0]!.wrapped_key.includes(key), 'only the wrapped data key is stored');
  assert.is(await readFile(file).then(() => 'exists', () => 'absent'), 'absent');
  await a.ping(); // the absent file is not this keyring's business
});

test('a node with another KEYRING_KEY refuses to start, says why, and prints no key material', async () => {
  const db = await database();
  const key = newKey();
  const a = await LocalKeyring.open({ masterKey: key, sql: pool(db) });
  const secret = await a.encrypt('session', 'c');
  const wrongKey = newKey();
  const err = await rejects(LocalKeyring.open({ masterKey: wrongKey, sql: pool(db) }));
  assert.is(err.reason, 'config');
  assert.match(err.message, /does not open version 1 in the database \(keyring_versions\) \(every node must start with the same KEYRING_KEY\)/);
  const [row] = await versions(db);
  for (const material of [key, wrongKey, row!.wrapped_key, Buffer.from(key, 'base64').toString('hex')]) {
    assert.not.ok(err.message.includes(material));
  }
  assert.is((await versions(db)).length, 1, 'nothing added by the refused node');
  assert.is(await a.decrypt(secret, 'c'), 'session');
  // Nor does a node without any KEYRING_KEY (and no file to generate a master into) invent one.
  const keyless = await rejects(LocalKeyring.open({ sql: pool(db) }));
  assert.match(keyless.message, /needs KEYRING_KEY or KEYRING_FILE/);
  const fresh = await tempFile();
  const noKey = await rejects(LocalKeyring.open({ file: fresh, sql: pool(db) }));
  assert.match(noKey.message, /made by another node: start this one with the same KEYRING_KEY/);
  assert.is(await readFile(fresh).then(() => 'exists', () => 'absent'), 'absent', 'no useless master generated');
});

test('nodes starting together on an empty table end with one version and read each other', async () => {
  const db = await database();
  const key = newKey();
  const pools = Array.from({ length: 6 }, () => pool(db));
  await Promise.all(pools.map((sql) => sql`select 1`)); // connected first, so the opens overlap
  const rings = await Promise.all(pools.map((sql) => LocalKeyring.open({ masterKey: key, sql })));
  assert.equal((await versions(db)).map((r) => r.version), [1]);
  const secrets = await Promise.all(rings.map((r, i) => r.encrypt(`node ${i}`, 'c')));
  for (const ring of rings) {
    assert.equal(await Promise.all(secrets.map((s) => ring.decrypt(s, 'c'))), rings.map((_, i) => `node ${i}`));
  }
});

test('an existing keyring file is imported once, byte for byte; old secrets keep decrypting; the file is left alone', async () => {
  const db = await database();
  const key = newKey();
  const file = await tempFile();
  const legacy = await LocalKeyring.open({ masterKey: key, file, now: () => Date.UTC(2026, 5, 1) });
  const v1 = await legacy.encrypt('old session', 'connection:a:session');
  await legacy.rotate();
  await legacy.rotate();
  const v3 = await legacy.encrypt('newer token', 'connection:b:bot_token');
  const before = await readFile(file, 'utf8');
  const fileVersions = (JSON.parse(before) as { versions: { version: number; createdAt: string; key: string }[] }).versions;

  // The upgraded node and a second node (a copy of the same file) start together: one import.
  const copy = await tempFile();
  await copyFile(file, copy);
  const [a, b] = await Promise.all([
    LocalKeyring.open({ masterKey: key, file, sql: pool(db) }),
    LocalKeyring.open({ masterKey: key, file: copy, sql: pool(db) }),
  ]);
  const rows = await versions(db);
  assert.equal(rows.map((r) => [r.version, r.source, r.created_at.toISOString(), r.wrapped_key]),
    fileVersions.map((v) => [v.version, 'imported', v.createdAt, v.key]));
  assert.is(a.currentVersion, 3);
  assert.is(await b.decrypt(v1, 'connection:a:session'), 'old session');
  assert.is(await a.decrypt(v3, 'connection:b:bot_token'), 'newer token');

  // Restarts are idempotent, and a third node needs no file at all.
  await LocalKeyring.open({ masterKey: key, file, sql: pool(db) });
  const c = await LocalKeyring.open({ masterKey: key, sql: pool(db) });
  assert.is(await c.decrypt(v1, 'connection:a:session'), 'old session');
  assert.is((await versions(db)).length, 3);

  // From now on the table is the truth: a rotation goes there, never into the file.
  assert.is(await c.rotate(), 4);
  assert.is(await readFile(file, 'utf8'), before);
  assert.equal((await versions(db)).map((r) => [r.version, r.source]), [[1, 'imported'], [2, 'imported'], [3, 'imported'], [4, 'created']]);
});

test('a file-generated master (no KEYRING_KEY: one embedded node) works across restarts; a file of another keyring is refused', async () => {
  const db = await database();
  const file = await tempFile();
  const first = await LocalKeyring.open({ file, sql: pool(db) });
  const ct = await first.encrypt('session', 'c');
  assert.ok('master' in JSON.parse(await readFile(file, 'utf8')), 'the master is kept in the file');
  assert.equal((await versions(db)).map((r) => [r.version, r.source]), [[1, 'imported']]);
  await first.rotate();
  const again = await LocalKeyring.open({ file, sql: pool(db) });
  assert.is(again.currentVersion, 2);
  assert.is(await again.decrypt(ct, 'c'), 'session');

  // Another keyring's file (same KEYRING_KEY, other data keys) on this database: refused, nothing imported.
  const key = newKey();
  const other = await database();
  const otherFile = await tempFile();
  await LocalKeyring.open({ masterKey: key, sql: pool(other) });
  await LocalKeyring.open({ masterKey: key, file: otherFile }); // a file made before the upgrade, elsewhere
  const err = await rejects(LocalKeyring.open({ masterKey: key, file: otherFile, sql: pool(other) }));
  assert.match(err.message, /holds a version 1 other than the one in the database: it belongs to another keyring/);
  assert.is((await versions(other)).length, 1);
});

test('secrets of a keyring not imported yet: a node without the file does not make a new version 1', async () => {
  const db = await database();
  const key = newKey();
  const file = await tempFile();
  // The database was used by an earlier release, with its keyring file on another node.
  const legacy = await LocalKeyring.open({ masterKey: key, file });
  await db.sql`insert into purpose_keys (purpose, ciphertext) values ('log-subjects', ${await legacy.encrypt('k', 'purpose-key:log-subjects')})`;
  const err = await rejects(LocalKeyring.open({ masterKey: key, sql: pool(db) }));
  assert.match(err.message, /start first the node that has the keyring file/);
  assert.is((await versions(db)).length, 0);
  // Started with the file, the node imports it; then the other starts too.
  await LocalKeyring.open({ masterKey: key, file, sql: pool(db) });
  const other = await LocalKeyring.open({ masterKey: key, sql: pool(db) });
  const [row] = await db.sql<{ ciphertext: string }[]>`select ciphertext from purpose_keys`;
  assert.is(await other.decrypt(row!.ciphertext, 'purpose-key:log-subjects'), 'k');
});

test('a rotation on one node is seen by the other; a due rotation happens once; rewrap moves secrets for both', async () => {
  const db = await database();
  const key = newKey();
  let t = Date.UTC(2026, 5, 1);
  const now = () => t;
  const [sqlA, sqlB] = [pool(db), pool(db)];
  const a = await LocalKeyring.open({ masterKey: key, sql: sqlA, now });
  const b = await LocalKeyring.open({ masterKey: key, sql: sqlB, now });
  const connection = randomUUID();
  await db.sql`insert into connections (id, owner, platform, kind, shard) values (${connection}, 'o', 'telegram', 'bot', 0)`;
  const secret = await b.encrypt('bot token', `connection:${connection}:bot_token`);
  await putSecret(db.sql, connection, 'bot_token', secret);

  assert.is(await a.rotate(), 2);
  const v2 = await a.encrypt('made on A after its rotation', 'c');
  assert.match(v2, /^local:v2:/);
  assert.is(await b.decrypt(v2, 'c'), 'made on A after its rotation', 'B reads the new version on demand');
  assert.is(await b.rotateIfDue(), null, 'B learned v2 with the decryption above: nothing new');
  assert.ok(b.needsRewrap(secret));
  assert.match(await b.encrypt('x', 'c'), /^local:v2:/);

  // A third node that has not decrypted anything new learns the rotation at its next check.
  const c = await LocalKeyring.open({ masterKey: key, sql: pool(db), now });
  assert.is(await a.rotate(), 3);
  assert.is(await c.rotateIfDue(), 3, 'a rotation made elsewhere is reported: a rewrap is due');

  assert.is(await b.rotateIfDue(), 3);
  // Period over: every node checks at once, one version is added, each reports it.
  t += 8 * DAY;
  const results = await Promise.all([a, b, c].map((r) => r.rotateIfDue()));
  assert.equal((await versions(db)).map((r) => r.version), [1, 2, 3, 4]);
  assert.equal(results, [4, 4, 4]);

  const counts = await rewrapAll(db.sql, b);
  assert.is(counts.rewrapped, 1);
  const [row] = await db.sql<{ ciphertext: string }[]>`select ciphertext from connection_secrets where connection_id = ${connection}`;
  assert.match(row!.ciphertext, /^local:v4:/);
  assert.is(await a.decrypt(row!.ciphertext, `connection:${connection}:bot_token`), 'bot token');
});

test('an encryption re-reads the versions now and then, so new secrets follow another node\'s rotation', async () => {
  const db = await database();
  const key = newKey();
  let t = Date.UTC(2026, 5, 1);
  const now = () => t;
  const a = await LocalKeyring.open({ masterKey: key, sql: pool(db), now });
  const b = await LocalKeyring.open({ masterKey: key, sql: pool(db), now });
  await a.rotate();
  assert.match(await b.encrypt('x', 'c'), /^local:v1:/, 'within the refresh interval: the known newest');
  t += 61_000;
  // The re-read runs beside the encryption (it never waits on the database): poll, bounded.
  let ct = await b.encrypt('x', 'c');
  for (let i = 0; i < 500 && !ct.startsWith('local:v2:'); i++) {
    await new Promise((r) => setTimeout(r, 10));
    ct = await b.encrypt('x', 'c');
  }
  assert.match(ct, /^local:v2:/);
});

test.run();
