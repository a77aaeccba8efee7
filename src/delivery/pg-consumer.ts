// Embedded mode (no AMQP_URL): the outbox is consumed straight from Postgres. Due rows are claimed
// with FOR UPDATE SKIP LOCKED (a lease on available_at, a new publish_seq), then go through the same
// Processor as broker copies: same pacing, same status rows, same retries. A process that dies
// mid-claim leaves rows whose lease runs out and which the next claim picks up again.
import type postgres from 'postgres';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'winston';
import { extractContext, SpanKind, withSpan, type TraceCarrier } from '../observability/tracing.ts';
import { claimDue } from '../store/messages.ts';
import type { Processor } from './processor.ts';
import { systemClock, type Clock } from './types.ts';

export interface PgConsumerOptions {
  sql: postgres.Sql;
  processor: Processor;
  logger: Logger;
  clock?: Clock;
  /** messages in progress at once (held for pacing or sending) */
  concurrency?: number;
  pollMs?: number;
  /** claim lease: a claimed row reappears after this if the process dies; 30 s ≫ holdMs (2.5 s) */
  leaseMs?: number;
  /** Several daemons: claims only these shards' rows. */
  shards?: () => number[];
}

export class PgConsumer {
  private readonly clock: Clock;
  private readonly running = new Set<Promise<unknown>>();
  // Every held message listens on this one signal: thousands of listeners are expected, not a leak.
  private readonly abort = withoutListenerLimit(new AbortController());
  private wake = new AbortController();
  private stopped = false;
  private loop?: Promise<void>;

  constructor(private readonly o: PgConsumerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  start(): void {
    this.loop ??= this.run();
  }

  notify(): void {
    // Called for every accepted message; abort() builds a DOMException (with a stack) even when the
    // signal is already aborted: ~3 % of the daemon's CPU at 100,000/min.
    if (!this.wake.signal.aborted) this.wake.abort();
  }

  /** Stops claiming; held messages are rescheduled at once; resolves when in-flight sends finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.notify();
    await this.loop;
    await Promise.allSettled([...this.running]);
  }

  private async run(): Promise<void> {
    const concurrency = this.o.concurrency ?? 64;
    while (!this.stopped) {
      this.wake = new AbortController();
      const signal = this.wake.signal;
      const free = concurrency - this.running.size;
      let claimed = 0;
      const shards = this.o.shards?.();
      if (free > 0 && shards?.length !== 0) {
        try {
          const rows = await claimDue(this.o.sql, { limit: free, leaseMs: this.o.leaseMs ?? 30_000, ...(shards ? { shards } : {}) });
          claimed = rows.length;
          for (const r of rows) this.track(r.id, r.publish_seq, r.trace_context);
        } catch (err) {
          this.o.logger.warn('embedded delivery claim failed', { error: (err as Error).message });
          await this.clock.sleep(1000, signal);
          continue;
        }
      }
      if (this.stopped) break;
      // A full batch means more is due: claim again at once (if there is room).
      if (claimed === 0 || claimed < free) await this.clock.sleep(this.o.pollMs ?? 250, signal);
    }
  }

  private track(id: string, seq: number, trace: TraceCarrier | null): void {
    // No broker in between: the trace continues straight from the context stored with the row.
    const p = withSpan('delivery process', { 'messaging.message.id': id }, () => this.o.processor.process({ id, seq, claimed: true }, this.abort.signal),
      { kind: SpanKind.CONSUMER, parent: extractContext(trace) })
      .catch((err) => this.o.logger.warn('embedded delivery attempt failed; retried after the lease', { messageId: id, error: (err as Error).message }))
      .finally(() => {
        this.running.delete(p);
        this.notify(); // a slot is free
      });
    this.running.add(p);
  }
}

function withoutListenerLimit(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}
