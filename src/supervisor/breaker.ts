import { CircuitBreakerPolicy, CircuitState, circuitBreaker, handleWhen, isBrokenCircuitError, type IBreaker } from 'cockatiel';
import { AppError, isAppError } from '../errors.ts';

// Restart intensity, OTP-style: more than `maxFailures` failed (re)connects within `windowMs`
// opens the breaker. cockatiel keeps no timers per breaker, so 10,000 of them cost only memory.
export class WindowBreaker implements IBreaker {
  #failures: number[] = [];
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(maxFailures: number, windowMs: number, now: () => number = Date.now) {
    this.#max = maxFailures;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  get state(): unknown { return { failures: this.#failures }; }
  set state(value: unknown) { this.#failures = (value as { failures?: number[] } | undefined)?.failures ?? []; }

  get failures(): number {
    this.#prune();
    return this.#failures.length;
  }

  success(state: CircuitState): void {
    // A half-open probe that succeeds closes the circuit with a clean slate.
    if (state === CircuitState.HalfOpen) this.#failures = [];
  }

  failure(state: CircuitState): boolean {
    if (state === CircuitState.HalfOpen) return true;
    this.#prune();
    this.#failures.push(this.#now());
    return this.#failures.length > this.#max;
  }

  #prune(): void {
    const since = this.#now() - this.#windowMs;
    while (this.#failures.length > 0 && this.#failures[0]! < since) this.#failures.shift();
  }
}

export interface BreakerOptions { maxFailures: number; windowMs: number; halfOpenAfterMs: number }

// Only failures that a restart could fix count: rate limits and quotas are the platform pacing us,
// and permanent errors (revoked session, bad token) end in `error` without retries anyway.
const counts = (err: unknown) => !isAppError(err) || err.category === 'retry' || err.category === 'outcome-unknown';

export interface ConnectionBreaker {
  policy: CircuitBreakerPolicy;
  window: WindowBreaker;
  /** Runs a (re)connect attempt through the breaker; an open circuit rejects with CIRCUIT_OPEN. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  openUntil(): number | undefined;
}

export function createBreaker(opts: BreakerOptions, now: () => number = Date.now): ConnectionBreaker {
  const window = new WindowBreaker(opts.maxFailures, opts.windowMs, now);
  const policy = circuitBreaker(handleWhen(counts), { halfOpenAfter: opts.halfOpenAfterMs, breaker: window });
  let openedAt: number | undefined;
  policy.onBreak(() => { openedAt = now(); });
  policy.onReset(() => { openedAt = undefined; });
  const openUntil = () => (policy.state === CircuitState.Open && openedAt !== undefined ? openedAt + opts.halfOpenAfterMs : undefined);
  return {
    policy,
    window,
    openUntil,
    async run(fn) {
      try {
        return await policy.execute(fn);
      } catch (err) {
        if (isBrokenCircuitError(err)) {
          const until = openUntil() ?? now() + opts.halfOpenAfterMs;
          throw new AppError('CIRCUIT_OPEN', 'Too many failed reconnects; the circuit breaker is open', {
            retryAfter: Math.max(1, Math.ceil((until - now()) / 1000)),
          });
        }
        throw err;
      }
    },
  };
}

export const breakerStateName = (s: CircuitState): 'closed' | 'open' | 'half-open' | 'isolated' =>
  s === CircuitState.Open ? 'open' : s === CircuitState.HalfOpen ? 'half-open' : s === CircuitState.Isolated ? 'isolated' : 'closed';
