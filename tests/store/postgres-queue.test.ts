// postgres.js 3.4.9's Queue is patched on install (ops/patches/postgres-queue.mjs): upstream keeps one slot per
// item ever shifted while a queue never empties, so a pool's CPU per query grows with every query it has run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { files, original, patch, patched, version } from '../../ops/patches/postgres-queue.mjs';
import { testServerUrl } from '../helpers/db.ts';
import { withFakePackage } from '../helpers/fake-package.ts';

interface Queue<T> { readonly length: number; push(x: T): T; shift(): T | undefined; remove(x: T): T | null }
type MakeQueue = <T>(initial?: T[]) => Queue<T>;

const root = join(import.meta.dirname, '../..');
const pkgDir = join(root, 'node_modules/postgres');
const tmp = mkdtempSync(join(tmpdir(), 'pgq-test-'));
const load = async (name: string, text: string): Promise<MakeQueue> => {
  writeFileSync(join(tmp, name), text);
  return ((await import(pathToFileURL(join(tmp, name)).href)) as { default: MakeQueue }).default;
};

let upstream: MakeQueue;
let installedEsm: MakeQueue;
let installedCjs: MakeQueue;

test.before(async () => {
  upstream = await load('upstream.mjs', original('src/queue.js'));
  installedEsm = ((await import(pathToFileURL(join(pkgDir, 'src/queue.js')).href)) as { default: MakeQueue }).default;
  installedCjs = createRequire(import.meta.url)(join(pkgDir, 'cjs/src/queue.js')) as MakeQueue;
});
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('the installed postgres.js is 3.4.9 with all three queue.js copies patched (npm ci ran the postinstall)', () => {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  assert.is(pkg.version, version);
  for (const file of files) assert.is(readFileSync(join(pkgDir, file), 'utf8'), patched(file), file);
  // The compaction branch and the remove() from the head are what the patch is for.
  assert.match(patched('src/queue.js'), 'xs.splice(0, index)');
  assert.match(patched('src/queue.js'), 'xs.indexOf(x, index)');
  const check = spawnSync(process.execPath, [join(root, 'ops/patches/postgres-queue.mjs'), '--check'], { encoding: 'utf8' });
  assert.is(check.status, 0, check.stderr);
});

test('patch(): patches the original, is idempotent, refuses unknown text and other versions', () => {
  withFakePackage('pgq-pkg-', (dir, write) => {
    write('package.json', JSON.stringify({ version }));
    for (const file of files) write(file, original(file));
    assert.throws(() => patch(dir, { check: true }), /not patched/);
    assert.equal(patch(dir), files);
    for (const file of files) assert.is(readFileSync(join(dir, file), 'utf8'), patched(file));
    assert.equal(patch(dir), []);
    assert.equal(patch(dir, { check: true }), []);
    write('cjs/src/queue.js', original('cjs/src/queue.js').replace('index++', 'index += 1'));
    assert.throws(() => patch(dir), /neither the known 3\.4\.9 original nor the patched text/);
    write('package.json', JSON.stringify({ version: '3.4.10' }));
    assert.throws(() => patch(dir), /node_modules\/postgres is 3\.4\.10, the patch is for 3\.4\.9/);
  });
});

// Operations on numbers 0..19 (duplicates, removing shifted or absent items, shifting an empty queue).
const op = fc.oneof(
  fc.record({ push: fc.integer({ min: 0, max: 19 }) }),
  fc.record({ remove: fc.integer({ min: 0, max: 19 }) }),
  fc.constant({ shift: true as const }),
);
const run = (make: MakeQueue, initial: number[], ops: Array<{ push?: number; remove?: number; shift?: true }>) => {
  const q = make(initial);
  return ops.map((o) => {
    const out = o.push !== undefined ? q.push(o.push) : o.remove !== undefined ? q.remove(o.remove) : q.shift();
    return [out, q.length];
  });
};
const model = (initial: number[], ops: Array<{ push?: number; remove?: number; shift?: true }>) => {
  const xs = initial.slice();
  return ops.map((o) => {
    let out: number | null | undefined;
    if (o.push !== undefined) out = (xs.push(o.push), o.push);
    else if (o.remove !== undefined) {
      const i = xs.indexOf(o.remove);
      out = i === -1 ? null : (xs.splice(i, 1), o.remove);
    } else out = xs.shift();
    return [out, xs.length];
  });
};

test('push/shift/remove/length answer exactly as upstream 3.4.9 and as a plain array (ESM and CJS copies)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 19 }), { maxLength: 5 }), fc.array(op, { maxLength: 300 }), (initial, ops) => {
    const expected = model(initial, ops);
    assert.equal(run(upstream, initial, ops), expected);
    assert.equal(run(installedEsm, initial, ops), expected);
    assert.equal(run(installedCjs, initial, ops), expected);
  }), { numRuns: 500 });
});

// The backing array is private; Array species makes it observable without timing: initial.slice() and
// splice() build their results with the constructor of `initial`, so every array the queue owns is a Tracked.
const made: unknown[][] = [];
class Tracked<T> extends Array<T> {
  constructor(length = 0) {
    super(length);
    made.push(this);
  }
}
const longestBackingArray = (make: MakeQueue, live: number, cycles: number) => {
  made.length = 0;
  const q = make(Tracked.from<number>([]) as number[]);
  let next = 0;
  for (; next < live; next++) q.push(next);
  for (let i = 0; i < cycles; i++) {
    q.push(next++);
    assert.is(q.shift(), i);
  }
  // A far item (the newest) is found and removed; the order of the rest is kept.
  assert.is(q.remove(next - 1), next - 1);
  assert.is(q.remove(0), null); // shifted long ago
  assert.is(q.length, live - 1);
  assert.is(q.shift(), cycles);
  return Math.max(...made.map((xs) => xs.length));
};

test('a queue that never empties keeps its backing array within twice its length over 100,000 push/shift', () => {
  assert.ok(made.length === 0);
  for (const live of [2, 10, 1000]) {
    assert.ok(longestBackingArray(installedEsm, live, 100_000) <= 2 * live + 2, `esm live ${live}`);
    assert.ok(longestBackingArray(installedCjs, live, 100_000) <= 2 * live + 2, `cjs live ${live}`);
  }
  // Control: upstream keeps a slot per item ever shifted.
  assert.ok(longestBackingArray(upstream, 10, 100_000) > 100_000);
});

test('a max 2 pool answers 200,000 queries correctly (64 in flight, so its queues never empty)', async () => {
  const sql = postgres(testServerUrl, { max: 2, onnotice: () => undefined });
  try {
    const total = 200_000;
    let next = 0;
    let wrong = 0;
    let answered = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const [r] = await sql<{ i: number }[]>`select ${i}::int as i`;
        if (r?.i !== i) wrong++;
        answered++;
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    assert.is(answered, total);
    assert.is(wrong, 0);
  } finally {
    await sql.end({ timeout: 5 });
  }
});

test.run();
