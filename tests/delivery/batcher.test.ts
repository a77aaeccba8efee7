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

test.run();
