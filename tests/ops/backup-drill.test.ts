// Runs the real backup drill (ops/backup/drill.sh: base backup, WAL archive, point-in-time restore
// after a dropped table, the same restore with pgBackRest and ops/backup/pgbackrest.conf,
// pg_dump/pg_restore). ~10 s on an idle machine (~20 s with both cores busy), so it belongs in
// npm test; it needs root (or the postgres user), PostgreSQL 15's binaries and pgbackrest, as CI has.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('../../', import.meta.url).pathname;

const runDrill = (env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; ms: number }> =>
  new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('bash', ['ops/backup/drill.sh'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // The drill is 10-25 s; 90 s means something hangs (a cluster that never finishes recovery).
    // SIGTERM lets its EXIT trap stop the scratch clusters and remove the temp dir.
    const timer = setTimeout(() => child.kill('SIGTERM'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - started });
    });
  });

const count = (out: string, label: string): number => Number(out.match(new RegExp(`^${label}\\s+(\\d+)`, 'm'))?.[1] ?? NaN);

test('the drill restores the rows from before the accident and round-trips pg_dump', async () => {
  const { code, out, ms } = await runDrill({ DRILL_ROWS: '400' });
  assert.is(code, 0, out);
  assert.is(count(out, 'rows before the accident'), 600);
  assert.is(count(out, 'rows after the accident'), 400); // a third deleted, then the table dropped
  assert.is(count(out, 'rows after PITR restore'), 600);
  // pgBackRest is required here (CI installs it): the production config must really restore.
  assert.is(count(out, 'rows after pgBackRest restore'), 600);
  // pgBackRest only warns about unknown or misplaced options in its config file: none allowed.
  assert.not.match(out, /WARN:/);
  assert.is(count(out, 'rows after pg_dump/pg_restore'), 600);
  assert.match(out, /checksums: on/);
  assert.ok(ms < 90_000, `drill took ${ms} ms`);
  const workdir = out.match(/primary up in (\S+)/)?.[1];
  assert.ok(workdir, out);
  assert.not.ok(existsSync(workdir!), `drill left ${workdir} behind`);
});

test('the drill fails loudly when the restore cannot reach its target', async () => {
  // A WAL archive that cannot be read back: recovery stops short of the rows written after the
  // base backup, so the restored count must differ and the drill must say so.
  const { code, out } = await runDrill({ DRILL_ROWS: '200', DRILL_BREAK_RESTORE: '1', DRILL_PGBACKREST: '0' });
  assert.is.not(code, 0, out);
  assert.match(out, /drill: (MISMATCH|FAILED)/);
});

test.run();
