import type postgres from 'postgres';
import type { Logger } from 'winston';
import { logger as defaultLogger } from '../observability/logger.ts';
import { purgeAudit } from '../store/audit.ts';
import { purgeFinishedMessages } from '../store/messages.ts';

// Retention (RETENTION_DAYS, default 30): audit entries older than that are deleted, and so are
// messages that ended (sent or failed) longer ago than that. Deleting the message row rather than
// blanking its text also drops the chat reference, error and idempotency key, so nothing about the
// content stays behind; the consequence is that an Idempotency-Key reused after RETENTION_DAYS
// creates a new message (clients retry within minutes, not weeks). Queued and sending messages are
// never touched, whatever their age: they are still owed a delivery.

export interface RetentionOptions {
  days: number;
  now?: Date;
  /** Rows per statement: short transactions keep locks and WAL bursts small next to live traffic. */
  batch?: number;
}

export interface RetentionResult { audit: number; messages: number }

const defaultBatch = 5000;

/** Purges everything older than `days` before `now`; idempotent, safe to run on several replicas at once. */
export async function purgeExpired(sql: postgres.Sql, opts: RetentionOptions): Promise<RetentionResult> {
  const batch = opts.batch ?? defaultBatch;
  const cutoff = new Date((opts.now ?? new Date()).getTime() - opts.days * 86_400_000);
  const result: RetentionResult = { audit: 0, messages: 0 };
  for (;;) {
    const n = await purgeAudit(sql, cutoff, batch);
    result.audit += n;
    if (n < batch) break;
  }
  for (;;) {
    const n = await purgeFinishedMessages(sql, cutoff, batch);
    result.messages += n;
    if (n < batch) break;
  }
  return result;
}

export interface RetentionRunnerOptions {
  sql: postgres.Sql;
  days: number;
  /** Between runs; hourly keeps each run small (about 1/720 of a 30-day window). */
  intervalMs?: number;
  logger?: Logger;
  /** Injected timer for tests; returns a cancel function. */
  schedule?: (run: () => void, ms: number) => () => void;
  now?: () => Date;
}

export interface RetentionRunner {
  /** Runs one purge now (also what the timer calls); concurrent calls share the run in flight. */
  runNow(): Promise<RetentionResult>;
  /** Cancels the timer and waits for a run in flight. */
  stop(): Promise<void>;
}

const hourMs = 3_600_000;

const timer = (run: () => void, ms: number): (() => void) => {
  const t = setTimeout(run, ms);
  t.unref(); // never what keeps the process alive
  return () => clearTimeout(t);
};

/** Purges at start and then every `intervalMs`; a failed run is logged and retried at the next tick. */
export function startRetention(opts: RetentionRunnerOptions): RetentionRunner {
  const log = opts.logger ?? defaultLogger;
  const schedule = opts.schedule ?? timer;
  const intervalMs = opts.intervalMs ?? hourMs;
  let inFlight: Promise<RetentionResult> | undefined;
  let cancel: (() => void) | undefined;
  let stopped = false;

  const runNow = (): Promise<RetentionResult> => {
    inFlight ??= (async () => {
      const started = Date.now();
      try {
        const result = await purgeExpired(opts.sql, { days: opts.days, ...(opts.now && { now: opts.now() }) });
        log.info('retention purge done', { retention: { days: opts.days, ...result, ms: Date.now() - started } });
        return result;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const tick = (): void => {
    if (stopped) return;
    runNow()
      .catch((err: unknown) => log.error('retention purge failed', { err }))
      .finally(() => {
        if (!stopped) cancel = schedule(tick, intervalMs);
      });
  };
  tick();

  return {
    runNow,
    async stop() {
      stopped = true;
      cancel?.();
      await inFlight?.catch(() => undefined);
    },
  };
}
