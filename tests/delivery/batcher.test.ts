import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Batcher } from '../../src/delivery/batcher.ts';

test('loads of one turn share one run; each caller gets its own result, in order', async () => {
  const runs: number[][] = [];
  const b = new Batcher<number, string>(async (xs) => {
    runs.push(xs);
    return xs.map((x) => (x % 2 ? `odd ${x}` : undefined));
  });
  const got = await Promise.all([1, 2, 3, 4].map((x) => b.load(x)));
  assert.equal(got, ['odd 1', undefined, 'odd 3', undefined]);
  assert.equal(runs, [[1, 2, 3, 4]]);
  // A later turn is a new run.
  assert.is(await b.load(5), 'odd 5');
  assert.equal(runs, [[1, 2, 3, 4], [5]]);
});

test('max splits a turn into runs of at most max inputs', async () => {
  const runs: number[][] = [];
  const b = new Batcher<number, number>(async (xs) => { runs.push(xs); return xs; }, 3);
  const got = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((x) => b.load(x)));
  assert.equal(got, [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(runs, [[1, 2, 3], [4, 5, 6], [7]]);
});

test('a failed run rejects every caller of that run with its error, and the next run is independent', async () => {
  let fail = true;
  const boom = new Error('database down');
  const b = new Batcher<number, number>(async (xs) => { if (fail) throw boom; return xs; });
  const settled = await Promise.allSettled([b.load(1), b.load(2)]);
  assert.equal(settled.map((s) => (s.status === 'rejected' ? s.reason : s.value)), [boom, boom]);
  fail = false;
  assert.is(await b.load(3), 3);
  // A run that throws synchronously rejects too.
  const sync = new Batcher<number, number>(() => { throw boom; });
  assert.is(await sync.load(1).catch((e: unknown) => e), boom);
});

test('while a run is in flight, later loads wait for it and then go together', async () => {
  const runs: number[][] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => (release = r));
  const b = new Batcher<number, number>(async (xs) => {
    runs.push(xs);
    if (runs.length === 1) await first;
    return xs;
  });
  const a = b.load(1);
  await new Promise((r) => setImmediate(r));
  assert.equal(runs, [[1]]);
  // Three later turns while the first run is in flight: nothing runs yet.
  const later: Promise<number | undefined>[] = [];
  for (const x of [2, 3, 4]) {
    later.push(b.load(x));
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(runs, [[1]]);
  release();
  assert.equal(await Promise.all([a, ...later]), [1, 2, 3, 4]);
  assert.equal(runs, [[1], [2, 3, 4]]);
});

test('a full batch does not wait for the run in flight', async () => {
  const runs: number[][] = [];
  let release!: () => void;
  const first = new Promise<void>((r) => (release = r));
  const b = new Batcher<number, number>(async (xs) => {
    runs.push(xs);
    if (runs.length === 1) await first;
    return xs;
  }, 2);
  const a = b.load(1);
  await new Promise((r) => setImmediate(r));
  const full = [b.load(2), b.load(3)];
  assert.equal(runs, [[1], [2, 3]]);
  assert.equal(await Promise.all(full), [2, 3]);
  release();
  assert.is(await a, 1);
});

test.run();
