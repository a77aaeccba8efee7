// Forward-only migration runner: migrations/NNN_name.sql, applied in version order, each in its own
// transaction, recorded in schema_migrations with a sha256 checksum. A session-level advisory lock
// serialises runners, so two replicas (or two test pools) starting together apply each file once.
// Because each file runs inside a transaction, it must not use `create index concurrently` or its own
// begin/commit.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import type { Logger } from 'winston';

export const defaultMigrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));

// Arbitrary, fixed: every runner of this service must take the same key, and nothing else here uses it.
const lockKey = 7_358_001;

export interface MigrationFile { version: number; name: string; checksum: string; text: string }
export interface MigrateResult { applied: string[]; current: number }

export class MigrationError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'MigrationError';
  }
}

const fileName = /^(\d{3})_([a-z0-9_]+)\.sql$/;

export async function readMigrations(dir = defaultMigrationsDir): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const n of names) {
    const m = fileName.exec(n);
    if (!m) throw new MigrationError(`migration file name must look like 001_name.sql, got "${n}"`);
    const text = await readFile(join(dir, n), 'utf8');
    const checksum = createHash('sha256').update(text).digest('hex');
    files.push({ version: Number(m[1]), name: m[2]!, checksum, text });
  }
  files.forEach((f, i) => {
    if (f.version !== i + 1) throw new MigrationError(`migrations must be numbered 001, 002, … without gaps; found ${String(f.version).padStart(3, '0')}_${f.name} at position ${i + 1}`);
  });
  return files;
}

interface AppliedRow { version: number; name: string; checksum: string }

export async function migrate(sql: postgres.Sql, opts: { dir?: string; log?: Logger } = {}): Promise<MigrateResult> {
  const files = await readMigrations(opts.dir);
  // One reserved connection: the session lock, the bookkeeping and every migration must share a
  // session (in embedded mode the pool has max 1, so this is also the only connection).
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${lockKey})`;
    try {
      return await applyPending(conn, files, opts.log);
    } finally {
      // If the session died the server already dropped its lock; never let this mask the real error.
      await conn`select pg_advisory_unlock(${lockKey})`.catch(() => undefined);
    }
  } finally {
    conn.release();
  }
}

async function applyPending(conn: postgres.ReservedSql, files: MigrationFile[], log?: Logger): Promise<MigrateResult> {
  await conn`
    create table if not exists schema_migrations (
      version    integer primary key,
      name       text not null,
      checksum   text not null,
      applied_at timestamptz not null default now()
    )`;
  const rows = await conn<AppliedRow[]>`select version, name, checksum from schema_migrations order by version`;
  const applied = new Map(rows.map((r) => [r.version, r]));
  for (const r of rows) {
    const f = files[r.version - 1];
    if (!f) throw new MigrationError(`database has migration ${r.version} (${r.name}) that is not in the migrations directory; this code is older than the database`);
    if (f.checksum !== r.checksum) throw new MigrationError(`migration ${String(r.version).padStart(3, '0')}_${r.name} was changed after it was applied (checksum ${r.checksum.slice(0, 12)} in the database, ${f.checksum.slice(0, 12)} on disk); add a new migration instead`);
  }
  const done: string[] = [];
  for (const f of files) {
    if (applied.has(f.version)) continue;
    const label = `${String(f.version).padStart(3, '0')}_${f.name}`;
    const started = Date.now();
    await conn`begin`;
    try {
      // The one place sql.unsafe is used: a migration file is trusted, versioned SQL with several
      // statements, which only the simple query protocol (unsafe without parameters) can run.
      await conn.unsafe(f.text);
      await conn`insert into schema_migrations (version, name, checksum) values (${f.version}, ${f.name}, ${f.checksum})`;
      await conn`commit`;
    } catch (err) {
      await conn`rollback`.catch(() => undefined);
      throw new MigrationError(`migration ${label} failed: ${(err as Error).message}`, { cause: err });
    }
    done.push(label);
    log?.info('migration applied', { migration: label, ms: Date.now() - started });
  }
  return { applied: done, current: files.length };
}
