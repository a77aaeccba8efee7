// CPU per query of a postgres.js pool before and after ops/patches/postgres-queue.mjs.
//   node ops/patches/postgres-queue-bench.mjs original|patched [DATABASE_URL]
// Copies node_modules/postgres to a temp dir with the chosen queue.js (postgres.js has no dependencies),
// then on a fresh max 10 pool each: 100,000 sequential queries, and 300,000 with 64 in flight, printing
// process CPU µs per query for the first and the last 10,000 of each run (after 2,000 to warm up the JIT).
// Hold /tmp/bench.lock.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { files, original, patched } from './postgres-queue.mjs';

const mode = process.argv[2];
if (mode !== 'original' && mode !== 'patched') throw new Error('usage: postgres-queue-bench.mjs original|patched [url]');
const url = process.argv[3] ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const dir = mkdtempSync(join(tmpdir(), 'pgq-bench-'));
cpSync(join(dirname(fileURLToPath(import.meta.url)), '../../node_modules/postgres'), dir, { recursive: true });
for (const file of files) writeFileSync(join(dir, file), (mode === 'original' ? original : patched)(file));
const { default: postgres } = await import(pathToFileURL(join(dir, 'src/index.js')).href);

const window = 10_000;
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };

async function run(label, total, inFlight) {
  const sql = postgres(url, { max: 10, onnotice: () => undefined });
  await Promise.all(Array.from({ length: 10 }, () => sql`select 1`)); // all 10 connections open
  for (let i = 0; i < 2_000; i++) await sql`select ${i}::int as i`;
  const marks = [];
  let next = 0;
  let t = cpu();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const [r] = await sql`select ${i}::int as i`;
      if (r.i !== i) throw new Error(`wrong row ${r.i} for ${i}`);
      if ((i + 1) % window === 0) { const now = cpu(); marks.push((now - t) / window); t = now; }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  await sql.end();
  const at = (k) => marks[k / window - 1].toFixed(1);
  console.log(`${mode} ${label}: CPU µs/query at 10k ${at(window)}, 100k ${at(100_000)}` + (total > 100_000 ? `, ${total / 1000}k ${at(total)}` : ''));
}

try {
  await run('sequential', 100_000, 1);
  await run('64 concurrent', 300_000, 64);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
