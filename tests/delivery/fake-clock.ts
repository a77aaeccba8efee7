// A manual clock for pacing tests: sleep() resolves only when advance() moves time past its deadline,
// so a minute of 1 msg/s pacing runs in milliseconds. Implements src/delivery/types.ts Clock.
import type { Clock } from '../../src/delivery/types.ts';

export class FakeClock implements Clock {
  private t: number;
  private timers: { at: number; resolve: () => void }[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = { at: this.t + Math.max(0, ms), resolve };
      this.timers.push(timer);
      signal?.addEventListener('abort', () => {
        this.timers = this.timers.filter((x) => x !== timer);
        resolve();
      }, { once: true });
    });
  }

  /** Moves time forward in steps, letting every woken task run before the next step. */
  async advance(ms: number, stepMs = 10): Promise<void> {
    const end = this.t + ms;
    while (this.t < end) {
      this.t = Math.min(end, this.t + stepMs);
      const due = this.timers.filter((x) => x.at <= this.t);
      this.timers = this.timers.filter((x) => x.at > this.t);
      for (const x of due) x.resolve();
      await flush();
    }
  }
}

export const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};
