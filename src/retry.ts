// One retry policy for writes that record something which already happened elsewhere (Telegram has
// the message, has sent the login code): repeating the write is safe, losing it is not. A Postgres
// or Vault restart takes 3–10 s, so callers give it tens of seconds.

export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: RetryClock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export interface RetryOptions {
  clock?: RetryClock;
  /** Called after each failed try (1, 2, …); returning false stops at once. */
  onError?: (err: unknown, tries: number) => boolean | void;
}

/**
 * Runs `attempt` until it resolves, waiting 0.2 s doubling to 2 s between tries. When the next wait
 * would end past `budgetMs` from the first try (or onError says stop), the last error is thrown.
 */
export async function retryFor<T>(budgetMs: number, attempt: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const clock = o.clock ?? realClock;
  const deadline = clock.now() + budgetMs;
  for (let tries = 1, delay = 200; ; tries++, delay = Math.min(delay * 2, 2000)) {
    try {
      return await attempt();
    } catch (err) {
      if (o.onError?.(err, tries) === false || clock.now() + delay > deadline) throw err;
      await clock.sleep(delay);
    }
  }
}
