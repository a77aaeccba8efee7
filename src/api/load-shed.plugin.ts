import type { Plugin } from '@hapi/hapi';
import { AppError } from '../errors.ts';
import { metrics } from '../observability/metrics.ts';

/** How far behind the event loop runs now, in ms. */
export interface LagMonitor { lagMs(): number; stop(): void }

export interface LoadShedOptions {
  /** Shed when the loop lags more than this (OVERLOAD_LAG_MS); 0 turns shedding off. */
  thresholdMs: number;
  /** Injected in tests; by default a timer-drift monitor (`lagMonitor`). */
  monitor?: LagMonitor;
}

/** The largest lag recorded within the last `windowMs` (a blocked turn counts for the whole window). */
export class LagWindow {
  readonly #samples: Array<{ at: number; lag: number }> = [];
  constructor(private readonly windowMs: number) {}
  record(at: number, lag: number): void {
    this.#samples.push({ at, lag });
    while (this.#samples.length > 0 && this.#samples[0]!.at < at - this.windowMs) this.#samples.shift();
  }
  max(now: number): number {
    let max = 0;
    for (const s of this.#samples) if (s.at >= now - this.windowMs && s.lag > max) max = s.lag;
    return max;
  }
}

/**
 * Measures lag as the drift of a 50 ms interval timer and reports the largest drift seen in the last
 * second: one blocked turn of 2 s shows as 2 s lag for the next second, not for one tick. A timer
 * rather than perf_hooks' histogram because it also sees a loop starved by the garbage collector.
 */
export function lagMonitor(opts: { intervalMs?: number; windowMs?: number } = {}): LagMonitor {
  const intervalMs = opts.intervalMs ?? 50;
  const window = new LagWindow(opts.windowMs ?? 1000);
  let expected = performance.now() + intervalMs;
  const timer = setInterval(() => {
    const at = performance.now();
    window.record(at, Math.max(0, at - expected));
    expected = at + intervalMs;
  }, intervalMs);
  timer.unref();
  return { lagMs: () => window.max(performance.now()), stop: () => clearInterval(timer) };
}

// Probes and scrapes must still answer when the service is busy: a liveness probe that is shed would
// get a busy daemon restarted, which makes the overload worse.
const exempt = (path: string) => path.startsWith('/health/') || path === '/metrics' || path.startsWith('/_cluster/');

/** Answers 503 OVERLOADED with Retry-After while the event loop lags past the threshold (API.md). */
export const loadShedPlugin: Plugin<LoadShedOptions> = {
  name: 'load-shed',
  register(server, opts) {
    if (opts.thresholdMs <= 0) return;
    const monitor = opts.monitor ?? lagMonitor();
    server.events.on('stop', () => monitor.stop());
    server.ext('onRequest', (request, h) => {
      if (exempt(request.path)) return h.continue;
      const lag = monitor.lagMs();
      if (lag <= opts.thresholdMs) return h.continue;
      metrics.shed.inc();
      // Retry once the loop has had time to drain what made it lag (at least 1 s, at most 30 s).
      const retryAfter = Math.min(30, Math.max(1, Math.ceil(lag / 1000)));
      throw new AppError('OVERLOADED', `the service is overloaded (event loop ${Math.round(lag)} ms behind); retry after ${retryAfter} s`, { retryAfter });
    });
  },
};
