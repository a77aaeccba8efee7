// One retry policy for writes that record something which already happened elsewhere (Telegram has
// the message, has sent the login code): repeating the write is safe, losing it is not. A Postgres
// or Vault restart takes 3–10 s, so callers give it tens of seconds.
//
// An attempt that never settles counts as failed after attemptTimeoutMs (10 s): a postgres.js query
// issued while Postgres restarts can wait forever when the server closes the socket during its own
// start-up (porsager/postgres#1193), and tests/delivery/outcome-write.test.ts hung 10 minutes on
// exactly that with the sent write. The next attempt is a new query; the abandoned one may still
// commit later, which is why only idempotent writes belong here.

export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: RetryClock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export interface RetryOptions {
  clock?: RetryClock;
  /** Called after each failed try (1, 2, …); returning false stops at once. */
  onError?: (err: unknown, tries: number) => boolean | void;
  /** An attempt not settled after this long is failed (and left to settle on its own). 10 s */
  attemptTimeoutMs?: number;
}

export class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`the attempt did not settle within ${ms} ms`);
    this.name = 'AttemptTimeout';
  }
}

function bounded<T>(attempt: () => Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // A real timer even under an injected clock: it bounds a real socket, not the retry schedule.
    // Not unref'd: cleared as soon as the attempt settles, and an attempt in flight is work to wait for.
    const timer = setTimeout(() => reject(new AttemptTimeout(ms)), ms);
    attempt().then(
      (v) => { clearTimeout(timer); resolve(v); },
      (e: unknown) => { clearTimeout(timer); reject(e); },
    );
  });
}

/**
 * Runs `attempt` until it resolves, waiting 0.2 s doubling to 2 s between tries. When the next wait
 * would end past `budgetMs` from the first try (or onError says stop), the last error is thrown.
 */
export async function retryFor<T>(budgetMs: number, attempt: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const clock = o.clock ?? realClock;
  const deadline = clock.now() + budgetMs;
  const attemptMs = o.attemptTimeoutMs ?? 10_000;
  for (let tries = 1, delay = 200; ; tries++, delay = Math.min(delay * 2, 2000)) {
    try {
      return await bounded(attempt, attemptMs);
    } catch (err) {
      if (o.onError?.(err, tries) === false || clock.now() + delay > deadline) throw err;
      await clock.sleep(delay);
    }
  }
}
