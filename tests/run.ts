// Runs every tests/**/*.test.ts in its own Node process (isolation: one suite's open handles or
// global state cannot hang or poison another), two at a time on this two-core machine, and ends
// with the plain "N passed, N failed" line. Usage: node --import tsx tests/run.ts [path-filter ...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
// A suite that runs longer than this is hung, not slow: the whole `npm test` budget is ~15 minutes.
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 240_000);

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

const runFile = (file: string): Promise<Result> =>
  new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root, env: { ...process.env, NODE_ENV: 'test', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[run] ${file} exceeded ${fileTimeoutMs} ms, killed\n`;
      child.kill('SIGKILL');
    }, fileTimeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const num = (label: string) => Number(out.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? 0);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped');
      let failed = total - passed; // uvu's Total already leaves skipped tests out
      if (code !== 0 && failed === 0) failed = 1; // crashed or timed out outside a test
      resolve({ file, passed, failed, skipped, code, ms: Date.now() - started, out });
    });
  });

const results: Result[] = [];
const queue = [...files];
const worker = async () => {
  for (let file = queue.shift(); file; file = queue.shift()) {
    const r = await runFile(file);
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
