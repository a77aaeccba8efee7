// Runs every tests/**/*.test.ts in its own Node process (isolation: one suite's open handles or
// global state cannot hang or poison another), two at a time on this two-core machine, and ends
// with the plain "N passed, N failed" line. Usage: node --import tsx tests/run.ts [path-filter ...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
// A suite that runs longer than this is hung, not slow: the longest (the kill -9 e2e files) take
// 60–120 s on a quiet machine and reached 200 s at load 20; the whole `npm test` budget is ~15 minutes.
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 360_000);

const walk = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'bench') return [];
    return statSync(path).isDirectory() ? walk(path) : name.endsWith('.test.ts') ? [path] : [];
  });

const files = walk(join(root, 'tests'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

interface Result { file: string; passed: number; failed: number; skipped: number; code: number | null; ms: number; out: string }

// Detached groups do not get the terminal's Ctrl-C: pass it on to every file still running.
const running = new Set<number>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const pid of running) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    process.exit(130);
  });
}

const runFile = (file: string): Promise<Result> =>
  new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root, env: { ...process.env, NODE_ENV: 'test', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a file killed at the timeout takes the processes it spawned with it (a
      // demo or daemon left behind held port 8080 and failed a later file).
      detached: true,
    });
    const killGroup = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } };
    running.add(child.pid!);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[run] ${file} exceeded ${fileTimeoutMs} ms, killed\n`;
      killGroup();
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      killGroup(); // whatever the file started and did not stop
      running.delete(child.pid!);
      const num = (label: string) => Number(out.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped');
      let failed = total - passed; // uvu's Total already leaves skipped tests out
      if (code !== 0 && failed === 0) failed = 1; // crashed or timed out outside a test
      resolve({ file, passed, failed, skipped, code, ms: Date.now() - started, out });
    });
  });

// Files that run several daemons or restart Postgres/RabbitMQ under load: two of them side by side on
// two cores stalled daemons past their lease deadlines and flood-wait windows. At most one runs at a
// time, started first (they are the longest), while the other worker takes the light files.
const heavy = [/^tests\/cluster\/.*\.e2e\.test\.ts$/, /^tests\/delivery\/(faults|media-crash)\.e2e\.test\.ts$/, /^tests\/webhooks\/daemon-crash\.e2e\.test\.ts$/, /^tests\/events\/incoming-faults\.e2e\.test\.ts$/];
const isHeavy = (f: string) => heavy.some((re) => re.test(f));
const heavyQueue = files.filter(isHeavy);
const lightQueue = files.filter((f) => !isHeavy(f));
let heavyRunning = false;
const next = (): { file: string; heavy: boolean } | undefined => {
  if (!heavyRunning && heavyQueue.length > 0) return { file: heavyQueue.shift()!, heavy: true };
  if (lightQueue.length > 0) return { file: lightQueue.shift()!, heavy: false };
  return undefined;
};

const results: Result[] = [];
const worker = async () => {
  for (;;) {
    const n = next();
    // Only heavy files left and one is running: wait for it rather than run two at once.
    if (!n) {
      if (heavyQueue.length === 0) return;
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const file = n.file;
    if (n.heavy) heavyRunning = true;
    const r = await runFile(file).finally(() => { if (n.heavy) heavyRunning = false; });
    results.push(r);
    const mark = r.failed ? 'FAIL' : 'ok  ';
    console.log(`${mark} ${r.file}  ${r.passed} passed, ${r.failed} failed (${(r.ms / 1000).toFixed(1)} s)`);
    if (r.failed || process.env.TEST_VERBOSE) console.log(r.out.replace(/^/gm, '    | '));
  }
};
await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));

const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
if (files.length === 0) console.log('no test files matched');
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
