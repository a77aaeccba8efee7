// The readiness promise, checked against a real server: a throwaway PostgreSQL cluster is stopped
// (pg_ctl -m fast: backends get FATAL 57P01 and the port closes) and started again under one open pool.
// initdb ~3 s, start/stop ~0.3 s each. Needs the server binaries (Debian: /usr/lib/postgresql/N/bin).
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { AppError } from '../../src/errors.ts';
import { openDatabase, type Database } from '../../src/store/db.ts';

const run = promisify(execFile);
const log = winston.createLogger({ silent: true });

const binDir = (() => {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  return versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'pg_ctl')));
})();

// initdb refuses to run as root; the Debian package creates the postgres user for exactly this.
const asServerUser = (cmd: string, args: string[]) =>
  process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);

const freePort = async (): Promise<number> => {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
};

const timed = async (p: Promise<unknown>): Promise<{ err?: AppError; ms: number }> => {
  const started = performance.now();
  try {
    await p;
    return { ms: performance.now() - started };
  } catch (err) {
    return { err: err as AppError, ms: performance.now() - started };
  }
};

if (!binDir) {
  // Fail loudly rather than pass silently: this is the only test of the restart promise on a real server.
  test('pool survives a real server restart', () => {
    assert.unreachable('no PostgreSQL server binaries: install the postgresql package or set PG_BINDIR');
  });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'pg-restart-'));
  const data = join(dir, 'data');
  let port = 0;
  let db: Database | undefined;
  const pgCtl = (...args: string[]) => asServerUser(join(binDir, 'pg_ctl'), ['-D', data, '-w', ...args]);
  const start = () => pgCtl('-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start');

  test.before(async () => {
    if (process.getuid?.() === 0) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout.trim()), 0);
    await asServerUser(join(binDir, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    port = await freePort();
    await start();
  });

  test('pool survives a real server restart: ping fails fast while down, works again when back', async () => {
    db = await openDatabase({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, dataDir: dir }, log, { max: 3 });
    await db.sql`insert into audit (owner, actor, action) values ('o', 'test', 'before-restart')`;
    assert.type(await db.ping(), 'number');

    await pgCtl('-m', 'fast', 'stop');
    for (let i = 0; i < 3; i++) {
      const { err, ms } = await timed(db.ping());
      assert.instance(err, AppError, `ping ${i} while down must fail`);
      assert.is(err!.code, 'DEPENDENCY_UNAVAILABLE');
      assert.ok(ms < 2100, `ping ${i} took ${ms.toFixed(0)} ms`);
    }

    await start();
    const back = await timed(db.ping());
    assert.is(back.err, undefined, `first ping after the restart failed: ${back.err?.message}`);
    const rows = await db.sql<{ action: string }[]>`select action from audit where owner = 'o'`;
    assert.equal(rows.map((r) => r.action), ['before-restart']);
  });

  test.after(async () => {
    await db?.close({ timeoutMs: 1000 });
    await pgCtl('-m', 'immediate', 'stop').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
}

test.run();
