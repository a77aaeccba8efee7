// Runs the real replica failover drill (tests/drills/replica.drill.ts, `npm run drill:replica`): a
// scratch primary and a synchronous streaming replica, the daemon writing through its API, the
// primary crashed, the replica promoted and the daemon restarted on it. ~25 s each here, so it
// belongs in npm test (the default run adds an in-flight batch and takes ~90 s: a drill, not a test).
// Needs root (or the postgres user) and PostgreSQL 15's binaries, as CI has.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../', import.meta.url).pathname;

const runDrill = (env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> => new Promise((resolve) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/drills/replica.drill.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  // ~25 s; 120 s means a cluster that never promotes. SIGTERM lets it stop its clusters.
  const timer = setTimeout(() => child.kill('SIGTERM'), 120_000);
  child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
});
const count = (out: string, label: string) => Number(out.match(new RegExp(`^${label}\\s+(\\d+)`, 'm'))?.[1] ?? NaN);

test('after the primary crashes and the replica is promoted, nothing the service committed is lost', async () => {
  const { code, out } = await runDrill({ DRILL_FLOOD: '0', DRILL_SENT: '6', DRILL_PENDING: '6' });
  assert.is(code, 0, out);
  assert.match(out, /streaming \(sync\)/);
  assert.is(count(out, 'accepted \\(202\\) before the crash'), 12);
  assert.is(count(out, 'accepted messages missing afterwards'), 0);
  assert.is(count(out, 'sent before, not sent afterwards'), 0);
  assert.is(count(out, 'delivered to the chat twice'), 0);
  assert.match(out, /drill passed: nothing committed was lost/);
  const workdir = out.match(/streaming \(sync\) in (\S+)/)?.[1];
  assert.ok(workdir && !existsSync(workdir), `drill left ${workdir} behind`);
});

test('the drill fails loudly when the replica missed commits (cut off, asynchronous)', async () => {
  const { code, out } = await runDrill({ DRILL_FLOOD: '0', DRILL_BREAK: '1', DRILL_SENT: '3', DRILL_PENDING: '3' });
  assert.is.not(code, 0, out);
  assert.match(out, /drill: MISMATCH: 3 of 6 accepted messages are missing after the failover/);
});

test.run();
