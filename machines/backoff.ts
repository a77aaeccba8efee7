// Retry timing shared by the connection machines. Pure: no timers here, only arithmetic on a
// clock that the actor system supplies, so tests drive it with xstate's SimulatedClock.
//
// How time and randomness are injected (one seam, no test-only overrides of machine logic):
// the machines read "now" and "random" from the actor system's clock — the same object xstate
// schedules `after` delays on (`createActor(machine, { clock })`). xstate's `Clock` only has
// setTimeout/clearTimeout, so a clock MAY add `now()` (SimulatedClock has it) and `random()`;
// missing ones fall back to Date.now / Math.random. Production passes nothing; a test passes
// `Object.assign(new SimulatedClock(), { random: () => 1 })` and timers, retryAt and jitter
// all move together. The clock is reached through `system._clock`, which is declared on
// xstate 5.33's public `ActorSystem` type.

export interface BackoffConfig {
  baseMs: number;
  capMs: number;
}

// 1 s then doubling: a dropped MTProto socket usually comes back within a few seconds, and a
// 60 s cap keeps a long outage from pushing the next try out by hours.
export const DEFAULT_BACKOFF: BackoffConfig = { baseMs: 1_000, capMs: 60_000 };

export interface MachineClock {
  now(): number;
  random(): number;
}

export const resolveBackoff = (input?: Partial<BackoffConfig>): BackoffConfig => {
  const baseMs = input?.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const capMs = input?.capMs ?? DEFAULT_BACKOFF.capMs;
  if (!(Number.isFinite(baseMs) && baseMs > 0)) throw new RangeError(`backoff.baseMs must be > 0, got ${baseMs}`);
  if (!(Number.isFinite(capMs) && capMs >= baseMs)) throw new RangeError(`backoff.capMs must be >= baseMs, got ${capMs}`);
  return { baseMs, capMs };
};

// Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): delay is uniform in
// [0, min(cap, base * 2^attempt)). It spreads a thundering herd of 10k connections that all
// dropped at once better than "equal" or "decorrelated" jitter. attempt 0 is the first retry.
export const backoffDelay = (attempt: number, config: BackoffConfig, random: number): number => {
  // 2^attempt overflows to Infinity past ~1024; min() with the cap keeps the result finite.
  const ceiling = Math.min(config.capMs, config.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(Math.min(1, Math.max(0, random)) * ceiling);
};

export const remainingMs = (retryAt: number | null, now: number): number =>
  retryAt === null ? 0 : Math.max(0, retryAt - now);

interface ClockHolder {
  _clock: object;
}

export const clockOf = (system: ClockHolder | undefined): MachineClock => {
  const clock = (system?._clock ?? {}) as Partial<MachineClock>;
  return {
    now: () => (typeof clock.now === 'function' ? clock.now() : Date.now()),
    random: () => (typeof clock.random === 'function' ? clock.random() : Math.random()),
  };
};
