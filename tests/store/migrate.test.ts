import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MigrationError, migrate, readMigrations } from '../../src/store/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const cleanups: Array<() => Promise<void> | void> = [];

const migrationsDir = (files: Record<string, string>) => {
  const dir = mkdtempSync(join(tmpdir(), 'mig-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const emptyDb = async (): Promise<TestDatabase> => {
  const db = await createTestDatabase({ migrate: false });
  cleanups.push(() => db.drop());
  return db;
};

// postgres.js answers a Result (an Array subclass with extra fields); compare plain rows.
const plain = async <T>(q: Promise<T[]>): Promise<T[]> => [...(await q)];

const rejects = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
};

const two = {
  '001_people.sql': 'create table people (id bigserial primary key, name text not null);\ninsert into people (name) values (\'first\');',
  '002_pets.sql': 'create table pets (id bigserial primary key, owner bigint references people (id));',
};

test('applies in order, records version/name/checksum, and a second run applies nothing', async () => {
  const db = await emptyDb();
  const dir = migrationsDir(two);
  const first = await migrate(db.sql, { dir });
  assert.equal(first, { applied: ['001_people', '002_pets'], current: 2 });
  const second = await migrate(db.sql, { dir });
  assert.equal(second, { applied: [], current: 2 });
  const rows = await db.sql<{ version: number; name: string; checksum: string }[]>`select version, name, checksum from schema_migrations order by version`;
  const files = await readMigrations(dir);
  assert.equal(rows.map((r) => [r.version, r.name, r.checksum]), files.map((f) => [f.version, f.name, f.checksum]));
  // The seed row proves 001 ran exactly once.
  assert.equal(await plain(db.sql`select name from people`), [{ name: 'first' }]);
});

test('two runners with separate pools at once: each migration applied once, no error', async () => {
  const db = await emptyDb();
  // 002 holds its transaction for 300 ms so the runners really overlap inside the lock.
  const dir = migrationsDir({ ...two, '002_pets.sql': `${two['002_pets.sql']}\nselect pg_sleep(0.3);`, '003_more.sql': 'insert into people (name) values (\'third\');' });
  const a = postgres(db.url, { max: 2, onnotice: () => undefined });
  const b = postgres(db.url, { max: 2, onnotice: () => undefined });
  try {
    const [ra, rb] = await Promise.all([migrate(a, { dir }), migrate(b, { dir })]);
    assert.equal([...ra.applied, ...rb.applied].sort(), ['001_people', '002_pets', '003_more']);
    assert.ok(ra.applied.length === 0 || rb.applied.length === 0, 'one runner did all the work, the other found it done');
    assert.equal(await plain(db.sql`select count(*)::int as n from people`), [{ n: 2 }]);
    assert.equal(await plain(db.sql`select count(*)::int as n from schema_migrations`), [{ n: 3 }]);
  } finally {
    await Promise.all([a.end({ timeout: 5 }), b.end({ timeout: 5 })]);
  }
});

test('a changed checksum of an applied file is refused', async () => {
  const db = await emptyDb();
  const dir = migrationsDir(two);
  await migrate(db.sql, { dir });
  writeFileSync(join(dir, '001_people.sql'), `${two['001_people.sql']}\n-- edited later`);
  writeFileSync(join(dir, '003_new.sql'), 'create table later (id int);');
  const err = await rejects(migrate(db.sql, { dir }));
  assert.instance(err, MigrationError);
  assert.match(err.message, /^migration 001_people was changed after it was applied \(checksum [0-9a-f]{12} in the database, [0-9a-f]{12} on disk\)/);
  // Nothing after the drift was applied.
  assert.equal(await plain(db.sql`select to_regclass('later') as t`), [{ t: null }]);
});

test('a failing migration rolls back entirely and is not recorded; earlier ones stay', async () => {
  const db = await emptyDb();
  const dir = migrationsDir({ ...two, '002_pets.sql': 'create table pets (id int);\nselect no_such_function();' });
  const err = await rejects(migrate(db.sql, { dir }));
  assert.instance(err, MigrationError);
  assert.match(err.message, /^migration 002_pets failed: function no_such_function\(\) does not exist/);
  assert.equal(await plain(db.sql`select version from schema_migrations`), [{ version: 1 }]);
  assert.equal(await plain(db.sql`select to_regclass('pets') as t`), [{ t: null }]);
  // The lock was released: a fixed file applies on the next run.
  writeFileSync(join(dir, '002_pets.sql'), two['002_pets.sql']);
  assert.equal((await migrate(db.sql, { dir })).applied, ['002_pets']);
});

test('file names and numbering are checked before anything runs', async () => {
  const bad = migrationsDir({ '001_a.sql': 'select 1;', 'two.sql': 'select 1;' });
  assert.match((await rejects(readMigrations(bad))).message, /must look like 001_name\.sql, got "two\.sql"/);
  const gap = migrationsDir({ '001_a.sql': 'select 1;', '003_c.sql': 'select 1;' });
  assert.match((await rejects(readMigrations(gap))).message, /without gaps; found 003_c at position 2/);
});

test('a database ahead of the code is refused', async () => {
  const db = await emptyDb();
  await migrate(db.sql, { dir: migrationsDir(two) });
  const older = migrationsDir({ '001_people.sql': two['001_people.sql'] });
  assert.match((await rejects(migrate(db.sql, { dir: older }))).message, /has migration 2 \(pets\) that is not in the migrations directory/);
});

test('the shipped migrations apply cleanly to a fresh database', async () => {
  const db = await emptyDb();
  const result = await migrate(db.sql);
  assert.ok(result.applied.length >= 1);
  assert.is(result.applied[0], '001_init');
  const tables = await db.sql<{ t: string }[]>`select tablename as t from pg_tables where schemaname = 'public' order by 1`;
  assert.equal(tables.map((r) => r.t), ['audit', 'chats', 'cluster_nodes', 'connection_secrets', 'connections', 'consents', 'event_cursors', 'events', 'keyring_versions', 'log_salts', 'messages', 'oauth_states', 'platform_kinds', 'purpose_keys', 'schema_migrations', 'service_windows', 'shard_leases', 'upload_chunks', 'uploads', 'webhook_deliveries', 'webhook_endpoints']);
});

test.after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test.run();
