// postgres.js 3.4.9's nextWrite is patched on install (ops/patches/postgres-nextwrite.mjs): upstream throws
// out of a setImmediate when a queued write runs after its socket closed, which ends the process.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { files, original, patch, patched, version } from '../../ops/patches/postgres-nextwrite.mjs';
import { testServerUrl } from '../helpers/db.ts';
import { withFakePackage } from '../helpers/fake-package.ts';

const root = join(import.meta.dirname, '../..');
const pkgDir = join(root, 'node_modules/postgres');

test('the installed postgres.js has nextWrite guarded in all three copies (npm ci ran the postinstall)', () => {
  for (const file of files) assert.ok(readFileSync(join(pkgDir, file), 'utf8').includes(patched), file);
  const check = spawnSync(process.execPath, [join(root, 'ops/patches/postgres-nextwrite.mjs'), '--check'], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stderr);
});

test('a reserved connection whose backend was terminated rejects its next queries with CONNECTION_CLOSED; the process lives', () => {
  // In a child: unpatched, the second query's write throws from setImmediate and the child exits 3.
  const script = `
    import postgres from 'postgres';
    process.on('uncaughtException', (e) => { console.log('uncaught ' + e.message); process.exit(3); });
    const sql = postgres(${JSON.stringify(testServerUrl)}, { max: 2, onnotice: () => {} });
    const admin = postgres(${JSON.stringify(testServerUrl)}, { max: 1, onnotice: () => {} });
    const r = await sql.reserve();
    const [{ pid }] = await r\`select pg_backend_pid() as pid\`;
    await admin\`select pg_terminate_backend(\${pid})\`;
    for (let i = 0; i < 3; i++) {
      try { await r\`select 1\`; console.log('answered'); } catch (e) { console.log('rejected ' + (e.code ?? e.message)); }
      await new Promise((res) => setTimeout(res, 50));
    }
    await admin.end();
    process.exit(0);`;
  const dir = join(root, 'node_modules/.cache');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `nextwrite-${process.pid}.mjs`);
  writeFileSync(file, script);
  try {
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    assert.is(run.status, 0, `${run.stdout}${run.stderr}`);
    const lines = run.stdout.trim().split('\n');
    assert.is(lines.length, 3);
    assert.ok(lines.slice(1).every((l) => l === 'rejected CONNECTION_CLOSED'), run.stdout);
  } finally {
    rmSync(file, { force: true });
  }
});

test('patch(): patches the original, is idempotent, refuses unknown text and other versions', () => {
  withFakePackage('pgnw-pkg-', (dir, write) => {
    const body = (fn: string) => `before\n${fn}    nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n  }\nafter\n`;
    write('package.json', JSON.stringify({ version }));
    for (const file of files) write(file, body(original));
    assert.throws(() => patch(dir, { check: true }), /not patched/);
    assert.equal(patch(dir), files);
    for (const file of files) assert.is(readFileSync(join(dir, file), 'utf8'), body(patched));
    assert.equal(patch(dir), [], 'idempotent');
    write(files[0]!, 'something else');
    assert.throws(() => patch(dir), /known 3\.4\.9 nextWrite/);
    write('package.json', JSON.stringify({ version: '3.4.10' }));
    assert.throws(() => patch(dir), /the patch is for 3\.4\.9/);
  });
});

test.run();
