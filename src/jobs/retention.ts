import type postgres from 'postgres';
import type { Logger } from 'winston';
import { logger as defaultLogger } from '../observability/logger.ts';
import { auditOwnersOverCap, purgeAudit, pruneAuditBeyond } from '../store/audit.ts';
import { expireQueued, purgeFinishedMessages } from '../store/messages.ts';
import { purgeEvents } from '../store/events.ts';
import { purgeExpiredUploads } from '../store/uploads.ts';
import { purgeServiceWindows } from '../store/platform-messages.ts';
import { purgeFinishedDeliveries } from '../store/webhooks.ts';

// Retention (RETENTION_DAYS, default 30): audit entries older than that are deleted, and so are
// messages that ended (sent or failed) longer ago than that. Deleting the message row rather than
// blanking its text also drops the chat reference, error and idempotency key, so nothing about the
// content stays behind; the consequence is that an Idempotency-Key reused after RETENTION_DAYS
// creates a new message (clients retry within minutes, not weeks). Queued and sending messages are
// never deleted, whatever their age: they are still owed a delivery.
//
// Queue expiry (MESSAGE_QUEUE_TTL_HOURS, default 72): a message still `queued` that long after it
// was accepted (parked behind a connection that stays down, or behind flood waits) ends `failed`
// with MESSAGE_EXPIRED and is announced like any other status change; it stops counting against
// the owner's queued-messages quota then, and retention deletes it RETENTION_DAYS later.
//
// Audit cap (AUDIT_MAX_ROWS_PER_OWNER, default 250,000): an audited action is never refused because
// the trail is long. Instead the owner's oldest rows beyond the cap are pruned here, and the pruning
// is itself the oldest remaining entry (`audit.pruned`: how many, and from when the trail is whole).
//
// Uploads (UPLOAD_RETENTION_HOURS, default 24, set on each file as it is stored): files past their
// expiry that no unsent message uses are deleted with their chunks, and so are uploads whose body
// never finished (a client gone, a process killed mid-upload) once their upload deadline passed.
//
// Events (EVENT_RETENTION_HOURS, default 72): stored events older than that are deleted; a client
// resuming from an older pos gets what is left (by id: 404), a consumer cursor further behind than
// that has lost the gap (docs/api.md says so). Incoming messages are messages: RETENTION_DAYS.
//
// Service windows (WhatsApp's 24-hour window: when each customer last wrote) are kept RETENTION_DAYS
// too; an older row decides nothing, and the customer's number should not outlive their messages.

export interface RetentionOptions {
  days: number;
  /** queued longer than this → failed MESSAGE_EXPIRED; absent: never */
  queueTtlHours?: number;
  /** audit rows kept per owner; absent: no cap, only `days` */
  auditMaxRowsPerOwner?: number;
  now?: Date;
  /** Rows per statement: short transactions keep locks and WAL bursts small next to live traffic. */
  batch?: number;
  /** Also delete expired uploads (each file carries its own expiry); the count is then in the result. */
  uploads?: boolean;
  /** Also delete events older than this; the count is then in the result. */
  eventRetentionHours?: number;
  /** Also delete finished webhook deliveries older than `days`; the count is then in the result. */
  webhookDeliveries?: boolean;
}

export interface RetentionResult { audit: number; messages: number; expired: number; auditPruned: number; serviceWindows: number; uploads?: number; events?: number; webhookDeliveries?: number }

const defaultBatch = 5000;
const hourMs = 3_600_000;
const uploadBatch = 100;
// Owners who wrote an audit row within this window are checked against the cap. The job runs
// hourly, so a day covers missed runs; an owner silent for a day has not grown since.
const capWindowMs = 86_400_000;

/** Purges everything older than `days` before `now`; idempotent, safe to run on several replicas at once. */
export async function purgeExpired(sql: postgres.Sql, opts: RetentionOptions): Promise<RetentionResult> {
  const batch = opts.batch ?? defaultBatch;
  const now = opts.now ?? new Date();
  const cutoff = new Date(now.getTime() - opts.days * 86_400_000);
  const result: RetentionResult = { audit: 0, messages: 0, expired: 0, auditPruned: 0, serviceWindows: 0 };
  if (opts.queueTtlHours !== undefined) result.expired = await expire(sql, now, opts.queueTtlHours, batch);
  for (;;) {
    const n = await purgeAudit(sql, cutoff, batch);
    result.audit += n;
    if (n < batch) break;
  }
  if (opts.auditMaxRowsPerOwner !== undefined) {
    for (const owner of await auditOwnersOverCap(sql, opts.auditMaxRowsPerOwner, new Date(now.getTime() - capWindowMs))) {
      result.auditPruned += await pruneAuditBeyond(sql, owner, opts.auditMaxRowsPerOwner, batch);
    }
  }
  for (;;) {
    const n = await purgeFinishedMessages(sql, cutoff, batch);
    result.messages += n;
    if (n < batch) break;
  }
  for (;;) {
    const n = await purgeServiceWindows(sql, cutoff, batch);
    result.serviceWindows += n;
    if (n < batch) break;
  }
  if (opts.eventRetentionHours !== undefined) {
    const eventCutoff = new Date(now.getTime() - opts.eventRetentionHours * hourMs);
    result.events = 0;
    for (;;) {
      const n = await purgeEvents(sql, eventCutoff, batch);
      result.events += n;
      if (n < batch) break;
    }
  }
  if (opts.uploads) {
    // A file is up to 50 chunk rows (their TOAST included): 100 files a transaction keep it to a few thousand row deletions.
    result.uploads = 0;
    for (;;) {
      const n = await purgeExpiredUploads(sql, uploadBatch);
      result.uploads += n;
      if (n < uploadBatch) break;
    }
  }
  if (opts.webhookDeliveries) {
    // Finished webhook deliveries (the delivery log) are kept as long as messages; pending ones always.
    result.webhookDeliveries = 0;
    for (;;) {
      const n = await purgeFinishedDeliveries(sql, cutoff, batch);
      result.webhookDeliveries += n;
      if (n < batch) break;
    }
  }
  return result;
}

async function expire(sql: postgres.Sql, now: Date, ttlHours: number, batch: number): Promise<number> {
  const cutoff = new Date(now.getTime() - ttlHours * 3_600_000);
  const error = { code: 'MESSAGE_EXPIRED', message: `not sent within ${ttlHours} h of being accepted (MESSAGE_QUEUE_TTL_HOURS); it will not be sent` };
  let expired = 0;
  for (;;) {
    // Each batch is one statement with its messages' events (src/store/messages.ts).
    const rows = await expireQueued(sql, cutoff, error, batch);
    expired += rows.length;
    if (rows.length < batch) return expired;
  }
}

export interface RetentionRunnerOptions {
  sql: postgres.Sql;
  days: number;
  queueTtlHours?: number;
  auditMaxRowsPerOwner?: number;
  uploads?: boolean;
  eventRetentionHours?: number;
  webhookDeliveries?: boolean;
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
        const result = await purgeExpired(opts.sql, {
          days: opts.days,
          ...(opts.queueTtlHours !== undefined && { queueTtlHours: opts.queueTtlHours }),
          ...(opts.auditMaxRowsPerOwner !== undefined && { auditMaxRowsPerOwner: opts.auditMaxRowsPerOwner }),
          ...(opts.uploads && { uploads: true }),
          ...(opts.eventRetentionHours !== undefined && { eventRetentionHours: opts.eventRetentionHours }),
          ...(opts.webhookDeliveries && { webhookDeliveries: true }),
          ...(opts.now && { now: opts.now() }),
        });
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
