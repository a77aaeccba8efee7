// Scripted fakes for the machines' I/O slots, and a simulated clock. No I/O: each fake records
// its inputs and answers from a per-slot script, so a test says exactly what "Telegram" does.
import { fromCallback, fromPromise, SimulatedClock, type EventObject } from 'xstate';
import { errorSpec } from '../../src/errors.ts';
import '../../src/platforms/telegram/codes.ts'; // the fakes speak Telegram's codes: their categories come from its table

// `hang` never settles: the step is still in flight when a test persists the snapshot.
export type Outcome = { ok: unknown } | { err: unknown } | { hang: true };
export const HANG: Outcome = { hang: true };

// 2026-01-01T00:00:00Z: realistic epoch values, so retryAt/expiresAt look like the real thing.
export const T0 = 1_767_225_600_000;

export interface TestClock extends SimulatedClock {
  random(): number;
}

// The machines read now() and random() from the actor's clock (machines/backoff.ts).
export const testClock = (random = 1, start = T0): TestClock => {
  const clock = Object.assign(new SimulatedClock(), { random: () => random });
  clock.set(start);
  return clock;
};

// Lets settled fake promises deliver their done/error events (one macrotask drains microtasks).
export const flush = async (rounds = 3): Promise<void> => {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

type SendBack = (event: { type: string; [key: string]: unknown }) => void;

export class Fakes {
  readonly calls: Record<string, unknown[]> = {};
  private readonly scripts: Record<string, Outcome[]> = {};
  private readonly defaults: Record<string, Outcome> = {};
  private readonly watchers = new Set<SendBack>();
  watchStarts = 0;

  // The next answers of a slot, in order; when the queue is empty the default answers.
  script(slot: string, ...outcomes: Outcome[]): this {
    (this.scripts[slot] ??= []).push(...outcomes);
    return this;
  }

  byDefault(slot: string, outcome: Outcome): this {
    this.defaults[slot] = outcome;
    return this;
  }

  count(slot: string): number {
    return this.calls[slot]?.length ?? 0;
  }

  // An event pushed by every live watcher (what the platform client would report).
  push(event: { type: string; [key: string]: unknown }): void {
    for (const sendBack of this.watchers) sendBack(event);
  }

  get liveWatchers(): number {
    return this.watchers.size;
  }

  // The next scripted answer of a slot, if any (for fakes with their own fallback logic).
  take(slot: string): Outcome | undefined {
    return this.scripts[slot]?.shift() ?? this.defaults[slot];
  }

  promise<O, I>(slot: string) {
    return fromPromise<O, I>(async ({ input }) => {
      (this.calls[slot] ??= []).push(input);
      const outcome = this.take(slot);
      if (outcome === undefined) throw new Error(`test did not script slot ${slot}`);
      if ('hang' in outcome) return new Promise<O>(() => {});
      if ('err' in outcome) throw outcome.err;
      return outcome.ok as O;
    });
  }

  watch<E extends EventObject, I>() {
    return fromCallback<E, I>(({ sendBack, input }) => {
      (this.calls.watch ??= []).push(input);
      this.watchStarts += 1;
      this.watchers.add(sendBack as SendBack);
      return () => {
        this.watchers.delete(sendBack as SendBack);
      };
    });
  }
}

// A failure as a driver throws it: the code, and the category the machines read (the code's own,
// from the registry, unless `extra` says otherwise).
export const err = (code: string, extra: Record<string, unknown> = {}): Outcome => ({
  err: { code, message: `${code} from the fake`, category: errorSpec(code)?.category, ...extra },
});
