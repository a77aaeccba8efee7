import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retryFor, type RetryClock } from '../src/retry.ts';

// Time moves only when the helper sleeps: the schedule is read off the clock.
function fakeClock() {
  let now = 0;
  const sleeps: number[] = [];
  const clock: RetryClock = { now: () => now, sleep: async (ms) => { sleeps.push(ms); now += ms; } };
  return { clock, sleeps };
}

test('retries 0.2 s doubling to 2 s until it succeeds', async () => {
  const { clock, sleeps } = fakeClock();
  let n = 0;
  const v = await retryFor(30_000, async () => { if (++n < 7) throw new Error(`try ${n}`); return 'ok'; }, { clock });
  assert.is(v, 'ok');
  assert.equal(sleeps, [200, 400, 800, 1600, 2000, 2000]);
});

test('gives up with the last error once the next wait would pass the budget', async () => {
  const { clock, sleeps } = fakeClock();
  let n = 0;
  const err = await retryFor(2000, async () => { throw new Error(`try ${++n}`); }, { clock }).catch((e: Error) => e);
  // waits 0.2 + 0.4 + 0.8 s between 4 tries; the next 1.6 s would end at 3.0 s > 2 s
  assert.equal(sleeps, [200, 400, 800]);
  assert.is((err as Error).message, 'try 4');
});

test('onError sees each failure and can stop at once', async () => {
  const { clock, sleeps } = fakeClock();
  const seen: number[] = [];
  const err = await retryFor(30_000, async () => { throw new Error('no'); }, { clock, onError: (_e, tries) => { seen.push(tries); return tries < 3; } })
    .catch((e: Error) => e);
  assert.equal(seen, [1, 2, 3]);
  assert.equal(sleeps, [200, 400]);
  assert.is((err as Error).message, 'no');
});

test('an attempt that never settles is failed after attemptTimeoutMs and the next one goes on', async () => {
  const { clock } = fakeClock();
  let n = 0;
  const errors: string[] = [];
  const v = await retryFor(30_000, () => (++n === 1 ? new Promise<string>(() => undefined) : Promise.resolve(`try ${n}`)), {
    clock, attemptTimeoutMs: 50, onError: (e) => { errors.push((e as Error).name); },
  });
  assert.is(v, 'try 2');
  assert.equal(errors, ['AttemptTimeout']);
});

test.run();
