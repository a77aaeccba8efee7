// Follows the events table after a named cursor (event_cursors) under a lease, so that with several
// daemons one consumer of that name works and the others stand by. Each round: hold or take the lease,
// read the events after the cursor, hand them to `handle`, advance. A crash between `handle` and the
// advance repeats the batch, so `handle` must be idempotent or at least once by design. Used by the
// RabbitMQ events publisher (src/delivery/events-publisher.ts) and the webhook feeder.
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { advanceCursor, claimCursor, onEventsCommitted, readAllEvents, releaseCursor, type StoredEvent } from '../store/events.ts';

export interface CursorFollowerOptions {
  sql: postgres.Sql;
  /** event_cursors.consumer */
  consumer: string;
  /** event_cursors.holder: who this process is */
  holder: string;
  /** events per round (one cursor advance each) */
  batch: number;
  /** the lease; another daemon takes over this long after this one stops renewing */
  leaseMs: number;
  /** how often to look for events other daemons stored, and the base of the retry backoff */
  pollMs: number;
  /** a commit in this process is read this long after it is signalled, with all signalled meanwhile (10 ms; see src/events/feed.ts) */
  coalesceMs?: number;
  logger: Logger;
  /** what to do with a batch; a throw retries the same batch after a backoff */
  handle(events: StoredEvent[]): Promise<void>;
  /** the first failure of a run of failures, for the caller's log line */
  onFailure?(err: Error): void;
  /** the lease was taken (with the cursor's position) or lost */
  onHolding?(holding: boolean, pos: number): void;
}

export interface CursorFollower {
  /** resolves once every event stored so far has been handled while holding the lease (tests, benches) */
  caughtUp(): Promise<void>;
  holding(): boolean;
  pos(): number;
  failures(): number;
  /** finishes the round in flight and gives the lease up */
  stop(): Promise<void>;
}

export function followEvents(o: CursorFollowerOptions): CursorFollower {
  let pos = 0;
  let holding = false;
  let stopped = false;
  let poked = false;
  let failed = 0;
  let wake: (() => void) | undefined;
  const poke = () => { poked = true; wake?.(); };
  // A commit wakes the loop coalesceMs later; a poke that came during a round is honoured only once that delay passed.
  const offCommitted = onEventsCommitted(poke, o.coalesceMs ?? 10);
  const idle: (() => void)[] = [];

  const setHolding = (now: boolean) => {
    if (now !== holding) o.onHolding?.(now, pos);
    holding = now;
  };

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    if (poked || stopped) return resolve();
    const t = setTimeout(() => { wake = undefined; resolve(); }, ms);
    wake = () => { clearTimeout(t); wake = undefined; resolve(); };
  });

  // When the lease was last taken or renewed (this process's monotonic clock). Rounds run on every
  // commit of events; claiming each time was 2 of the 4 statements a round made (2 followers, ~3 event
  // commits per message at low load). Renewed by the advance, claimed again only after a third of it.
  let renewedAt = -Infinity;
  const round = async (): Promise<number> => {
    if (!holding || performance.now() - renewedAt > o.leaseMs / 3) {
      const started = performance.now();
      const claimed = await claimCursor(o.sql, o.consumer, o.holder, o.leaseMs);
      if (claimed === undefined) { setHolding(false); return 0; }
      // The row is the truth: while this process holds the lease only it advances the cursor, and after a
      // takeover the row says where the last holder stopped (a batch it handled but did not advance repeats).
      pos = claimed;
      renewedAt = started;
      setHolding(true);
    }
    const events = await readAllEvents(o.sql, pos, o.batch);
    if (events.length === 0) return 0;
    await o.handle(events);
    const last = events.at(-1)!.pos;
    const started = performance.now();
    // Lost the lease mid-batch: the new holder repeats this batch (at least once, never skipped).
    if (!(await advanceCursor(o.sql, o.consumer, o.holder, last, o.leaseMs))) { setHolding(false); return 0; }
    renewedAt = started;
    pos = last;
    return events.length;
  };

  const loop = (async () => {
    let failures = 0;
    while (!stopped) {
      poked = false;
      let n: number;
      try {
        n = await round();
        failures = 0;
      } catch (err) {
        failed += 1;
        failures += 1;
        if (failures === 1) o.onFailure?.(err as Error);
        await sleep(Math.min(5000, o.pollMs * 2 ** Math.min(failures, 5)));
        continue;
      }
      if (n === o.batch) continue;
      if (holding && !poked) for (const r of idle.splice(0)) r();
      // Renew the lease well inside its length even when idle.
      await sleep(Math.min(o.pollMs, o.leaseMs / 3));
    }
  })();

  let stopping: Promise<void> | undefined;
  return {
    caughtUp: () => new Promise<void>((resolve) => { idle.push(resolve); poke(); }),
    holding: () => holding,
    pos: () => pos,
    failures: () => failed,
    stop: () => (stopping ??= (async () => {
      stopped = true;
      offCommitted();
      wake?.();
      await loop;
      for (const r of idle.splice(0)) r();
      if (holding) await releaseCursor(o.sql, o.consumer, o.holder).catch(() => undefined);
    })()),
  };
}
