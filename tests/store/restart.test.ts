// The readiness promise, checked against a real server: a throwaway PostgreSQL cluster is stopped
// (pg_ctl -m fast: backends get FATAL 57P01 and the port closes) and started again under one open pool.
// initdb ~3 s, start/stop ~0.3 s each. Needs the server binaries (Debian: /usr/lib/postgresql/N/bin).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { AppError } from '../../src/errors.ts';
import { openDatabase, type Database } from '../../src/store/db.ts';
import { pgBinDir, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-services.ts';

const log = winston.createLogger({ silent: true });

const timed = async (p: Promise<unknown>): Promise<{ err?: AppError; ms: number }> => {
  const started = performance.now();
  try {
    await p;
    return { ms: performance.now() - started };
  } catch (err) {
    return { err: err as AppError, ms: performance.now() - started };
  }
};

if (!pgBinDir) {
  // Fail loudly rather than pass silently: this is the only test of the restart promise on a real server.
  test('pool survives a real server restart', () => {
    assert.unreachable('no PostgreSQL server binaries: install the postgresql package or set PG_BINDIR');
  });
} else {
  const dataDir = mkdtempSync(join(tmpdir(), 'pg-restart-'));
  let pg: PrivatePostgres | undefined;
  let db: Database | undefined;

  test.before(async () => { pg = await startPrivatePostgres(); });

  test('pool survives a real server restart: ping fails fast while down, works again when back', async () => {
    db = await openDatabase({ databaseUrl: pg!.url, dataDir }, log, { max: 3 });
    await db.sql`insert into audit (owner, actor, action) values ('o', 'test', 'before-restart')`;
    assert.type(await db.ping(), 'number');

    await pg!.stop();
    for (let i = 0; i < 3; i++) {
      const { err, ms } = await timed(db.ping());
      assert.instance(err, AppError, `ping ${i} while down must fail`);
      assert.is(err!.code, 'DEPENDENCY_UNAVAILABLE');
      assert.ok(ms < 2100, `ping ${i} took ${ms.toFixed(0)} ms`);
    }

    await pg!.start();
    const back = await timed(db.ping());
    assert.is(back.err, undefined, `first ping after the restart failed: ${back.err?.message}`);
    const rows = await db.sql<{ action: string }[]>`select action from audit where owner = 'o'`;
    assert.equal(rows.map((r) => r.action), ['before-restart']);
  });

  test.after(async () => {
    await db?.close({ timeoutMs: 1000 });
    await pg?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
}

test.run();
