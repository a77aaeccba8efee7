// A fresh, migrated database per test file (or per test) on the server of TEST_DATABASE_URL, so tests
// never share rows. drop() closes the pool and drops the database even if a connection lingers.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { migrate } from '../../src/store/migrate.ts';

export const testServerUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  sql: postgres.Sql;
  url: string;
  name: string;
  drop(): Promise<void>;
}

const quiet = { onnotice: () => undefined } as const;

export async function createTestDatabase(opts: { migrate?: boolean; max?: number } = {}): Promise<TestDatabase> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = postgres(testServerUrl, { max: 1, ...quiet });
  try {
    // Identifiers cannot be parameters; name is [a-f0-9] generated above, so sql() quoting is enough.
    await admin`create database ${admin(name)}`;
  } finally {
    await admin.end();
  }
  const url = new URL(testServerUrl);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: opts.max ?? 5, ...quiet });
  if (opts.migrate !== false) {
    try {
      await migrate(sql);
    } catch (err) {
      await sql.end();
      await dropDatabase(name);
      throw err;
    }
  }
  let dropped = false;
  return {
    sql,
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await sql.end({ timeout: 5 });
      await dropDatabase(name);
    },
  };
}

async function dropDatabase(name: string): Promise<void> {
  const admin = postgres(testServerUrl, { max: 1, ...quiet });
  try {
    await admin`drop database if exists ${admin(name)} with (force)`;
  } finally {
    await admin.end();
  }
}
