// Live fan-out of committed events: one reader per process follows the events table by pos (at once
// when this process committed events, else every pollMs for those other daemons wrote) and hands
// each event to the listeners of its customer. Because pos is given in commit order
// (migrations/008_events.sql), following "pos > last seen" never skips an event.
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { logger as defaultLogger } from '../observability/logger.ts';
import { lastEventPos, onEventsCommitted, readAllEvents, type StoredEvent } from '../store/events.ts';

export type FeedListener = (event: StoredEvent) => void;

export interface EventFeedOptions {
  /** how often to look for events other daemons committed. 200 ms */
  pollMs?: number;
  /** events read per query. 1000 */
  batch?: number;
  /**
   * A commit is read this long after it is signalled, with whatever else committed meanwhile. 10 ms:
   * at 6,000 messages a minute each of their ~3 event commits was one read per reader (0.9 reads per
   * message for the feed, the RabbitMQ publisher and the webhook feeder together); now at most 100
   * reads a second per reader, whatever the rate.
   */
  coalesceMs?: number;
  logger?: Logger;
}

export class EventFeed {
  readonly #sql: postgres.Sql;
  readonly #o: Required<Omit<EventFeedOptions, 'logger'>> & { logger: Logger };
  readonly #byCustomer = new Map<string, Set<FeedListener>>();
  #pos = 0;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #offCommitted: (() => void) | undefined;

  constructor(sql: postgres.Sql, o: EventFeedOptions = {}) {
    this.#sql = sql;
    this.#o = { pollMs: o.pollMs ?? 200, batch: o.batch ?? 1000, coalesceMs: o.coalesceMs ?? 10, logger: o.logger ?? defaultLogger };
  }

  /** The pos up to which every committed event has been handed to listeners. */
  get pos(): number { return this.#pos; }

  async start(): Promise<void> {
    this.#pos = await lastEventPos(this.#sql);
    this.#stopped = false;
    this.#offCommitted = onEventsCommitted(() => this.poke(), this.#o.coalesceMs);
    const tick = () => {
      if (this.#stopped) return;
      this.poke();
      this.#timer = setTimeout(tick, this.#o.pollMs);
      this.#timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#offCommitted?.();
    await this.#reading;
  }

  /** Listens to one customer's events from now on; returns the unsubscribe. */
  subscribe(customerId: string, listener: FeedListener): () => void {
    const set = this.#byCustomer.get(customerId) ?? new Set<FeedListener>();
    this.#byCustomer.set(customerId, set.add(listener));
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#byCustomer.get(customerId) === set) this.#byCustomer.delete(customerId);
    };
  }

  /** Reads now (coalesced: one read at a time, one more if poked meanwhile). */
  poke(): void {
    if (this.#stopped) return;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = this.#read().finally(() => {
      this.#reading = undefined;
      if (this.#again) {
        this.#again = false;
        this.poke();
      }
    });
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        const events = await readAllEvents(this.#sql, this.#pos, this.#o.batch);
        for (const e of events) {
          this.#pos = e.pos;
          for (const l of this.#byCustomer.get(e.customerId) ?? []) this.#deliver(l, e);
        }
        if (events.length < this.#o.batch || this.#stopped) return;
      }
    } catch (err) {
      // The next poll tries again from the same pos.
      this.#o.logger.warn('live events feed could not read', { error: (err as Error).message });
    }
  }

  #deliver(l: FeedListener, e: StoredEvent): void {
    try {
      l(e);
    } catch (err) {
      this.#o.logger.error('live events listener failed', { type: e.type, error: (err as Error).message });
    }
  }
}
