import v8 from 'node:v8';
import { metrics } from '../observability/metrics.ts';

// Each connection accounts for the bytes it holds (client caches, buffers, queued work). On each
// check a connection over its budget is trimmed first; one still over after `graceChecks`
// consecutive checks is reported for stopping with MEMORY_BUDGET_EXCEEDED. The process refuses
// new connections once its heap passes `admitRatio` of the limit, so one tenant cannot push
// everyone into an out-of-memory crash.

export interface Accountable {
  id: string;
  bytes(): number;
  trim(): void;
}

export interface MemoryBudgetOptions {
  budgetBytes: number; // 50 MB by default (MEMORY_BUDGET_MB)
  processLimitBytes?: number; // 0/undefined: V8's heap limit
  admitRatio?: number; // 0.9: keep 10% headroom for GC and request bursts
  graceChecks?: number; // 2 checks: a burst that a trim cannot absorb twice in a row is not a burst
  heapUsed?: () => number;
}

const topN = 20;

export class MemoryBudget {
  readonly budgetBytes: number;
  readonly #limit: number;
  readonly #admitRatio: number;
  readonly #grace: number;
  readonly #heapUsed: () => number;
  readonly #strikes = new Map<string, number>();
  readonly #last = new Map<string, number>();

  constructor(opts: MemoryBudgetOptions) {
    this.budgetBytes = opts.budgetBytes;
    this.#limit = opts.processLimitBytes || v8.getHeapStatistics().heap_size_limit;
    this.#admitRatio = opts.admitRatio ?? 0.9;
    this.#grace = opts.graceChecks ?? 2;
    this.#heapUsed = opts.heapUsed ?? (() => process.memoryUsage().heapUsed);
  }

  /** Returns the ids to stop. */
  check(entries: Iterable<Accountable>): string[] {
    const over: string[] = [];
    const seen = new Set<string>();
    let total = 0;
    for (const e of entries) {
      seen.add(e.id);
      let bytes = e.bytes();
      if (bytes > this.budgetBytes) {
        e.trim();
        bytes = e.bytes();
      }
      total += bytes;
      this.#last.set(e.id, bytes);
      if (bytes <= this.budgetBytes) {
        this.#strikes.delete(e.id);
        continue;
      }
      const strikes = (this.#strikes.get(e.id) ?? 0) + 1;
      this.#strikes.set(e.id, strikes);
      if (strikes >= this.#grace) over.push(e.id);
    }
    for (const id of this.#last.keys()) if (!seen.has(id)) this.forget(id);
    this.#export(total);
    return over;
  }

  bytesOf(id: string): number {
    return this.#last.get(id) ?? 0;
  }

  forget(id: string): void {
    this.#strikes.delete(id);
    this.#last.delete(id);
  }

  /** False when the process is near its memory limit: new connections are refused then. */
  canAdmit(): boolean {
    return this.#heapUsed() < this.#limit * this.#admitRatio;
  }

  #export(total: number): void {
    metrics.memoryBytesTotal.set(total);
    metrics.memoryBytes.reset();
    const top = [...this.#last.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN);
    for (const [id, bytes] of top) metrics.memoryBytes.set({ connection: id }, bytes);
  }
}
