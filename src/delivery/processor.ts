// One delivery attempt for one message, shared by the RabbitMQ consumer and the embedded Postgres
// consumer: load the row, drop stale or finished copies, pace, mark `sending`, pass the pacer's call
// gate, call the sender, write the outcome. The row is written before the caller acks its broker
// copy, so a crash at any point leaves either a final row or a row that some copy (or the relay)
// will bring back.
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { isAppError, type AppError } from '../errors.ts';
import { retryFor } from '../retry.ts';
import { metrics } from '../observability/metrics.ts';
import {
  getConnectionKind, getMessageForDelivery, getMessagesForDelivery, markFailed, markSendingMany, markSentMany, publishStatus, rescheduleMessage,
  type MessageError, type MessageRow,
} from '../store/messages.ts';
import { Batcher } from './batcher.ts';
import type { Pacer, PaceTarget } from './pacer.ts';
import { isConnectionWideFlood, type Clock, type ConnectionKind, type MessageSender, type OutboundMessage } from './types.ts';

// The relay publishes rows due within its 250 ms poll; anything earlier than this was misrouted in time.
const earlyHoldMs = 5000;

// What run() stores for a bot message found in `sending`; deadLettered() stores the same.
const interruptedBotSend = { code: 'INTERNAL', message: 'delivery outcome unknown: sending was interrupted and bot messages are not resent, to avoid a duplicate' } as const;

export type Outcome =
  | 'sent' | 'failed' | 'uncertain' // final
  | 'deferred' | 'flood' | 'parked' | 'retry' // back to queued for later
  | 'duplicate' | 'stale' | 'missing'; // this copy had nothing to do

export interface ProcessorOptions {
  sql: postgres.Sql;
  sender: MessageSender;
  pacer: Pacer;
  clock: Clock;
  logger: Logger;
  /** a row in `sending` longer than this counts as abandoned by a crashed process: 60 s, well over a send's timeout */
  leaseMs?: number;
  /** transient failures before a message fails for good: 8 ≈ 4 min of backoff at the defaults */
  maxRetries?: number;
  /** retry backoff: base · 2^(n-1), capped, with ±50 % jitter so a recovered platform is not hit at once */
  backoff?: { baseMs: number; capMs: number };
  /** how long a message waits while its connection is not active before it is tried again */
  parkMs?: number;
}

/** A broker copy (or an embedded claim) of one message: the id and the schedule it was made for. */
export interface Copy { id: string; seq?: number; claimed?: boolean }

export class Processor {
  readonly counts: Record<Outcome, number> = {
    sent: 0, failed: 0, uncertain: 0, deferred: 0, flood: 0, parked: 0, retry: 0, duplicate: 0, stale: 0, missing: 0,
  };
  private readonly inflight = new Map<string, Promise<Outcome>>();
  private readonly o: Required<Omit<ProcessorOptions, 'sql' | 'sender' | 'pacer' | 'clock' | 'logger'>> & ProcessorOptions;
  // The three statements every message makes, each shared by the deliveries of one loop turn.
  // process() never has two copies of one id in flight, so an id appears once per statement.
  private readonly load: Batcher<string, MessageRow>;
  private readonly sending: Batcher<{ id: string; seq: number }, MessageRow>;
  private readonly sent: Batcher<{ id: string; platformMessageId: string }, MessageRow>;

  constructor(o: ProcessorOptions) {
    this.o = { leaseMs: 60_000, maxRetries: 8, backoff: { baseMs: 1000, capMs: 5 * 60_000 }, parkMs: 30_000, ...o };
    const { sql, leaseMs } = this.o;
    this.load = new Batcher(async (ids) => { const m = await getMessagesForDelivery(sql, ids); return ids.map((id) => m.get(id)); });
    this.sending = new Batcher(async (es) => { const m = await markSendingMany(sql, es, leaseMs); return es.map((e) => m.get(e.id)); });
    this.sent = new Batcher(async (es) => { const m = await markSentMany(sql, es); return es.map((e) => m.get(e.id)); });
  }

  get inFlight(): number {
    return this.inflight.size;
  }

  /**
   * Never resolves before the row reflects the outcome; rejects only when the database cannot be
   * read or written (the caller then lets the copy come back: requeue, or the claim's lease).
   */
  async process(copy: Copy, signal?: AbortSignal): Promise<Outcome> {
    const outcome = await this.exclusive(copy.id, () => this.run(copy, signal));
    this.counts[outcome]++;
    return outcome;
  }

  // A second copy of a message this process is already sending (the broker redelivered it after a
  // connection drop), or its dead letter, waits for the first to finish and then sees its result in
  // the row. The check and the set run in one turn, so two waiters cannot both start.
  private async exclusive(id: string, work: () => Promise<Outcome>): Promise<Outcome> {
    for (let p = this.inflight.get(id); p; p = this.inflight.get(id)) await p.catch(() => undefined);
    const run = work();
    this.inflight.set(id, run);
    try {
      return await run;
    } finally {
      this.inflight.delete(id);
    }
  }

  /**
   * The broker gave up on a copy (delivery limit: the handler kept failing on it). The row is still
   * the truth: one transient failure is counted and the message comes back after a minute through
   * the relay, or fails once the retry limit is spent. Never silently dropped.
   * Runs after any attempt of this id in flight here: rescheduled under a running send, the row was
   * queued again when that send's sent write came, and the message went out twice.
   */
  deadLettered(id: string): Promise<Outcome> {
    return this.exclusive(id, () => this.revive(id));
  }

  // The supervisor may not have started the actor yet (boot): the connection row still knows.
  private async kindOf(connectionId: string): Promise<ConnectionKind | undefined> {
    return this.o.sender.kindOf(connectionId) ?? getConnectionKind(this.o.sql, connectionId);
  }

  private async revive(id: string): Promise<Outcome> {
    const { sql, logger } = this.o;
    const row = await getMessageForDelivery(sql, id);
    if (!row) return 'missing';
    if (row.status === 'sent' || row.status === 'failed') return 'duplicate';
    if (row.status === 'sending') {
      // Typically a bot send that succeeded while its sent write kept failing (database down for
      // longer than half the lease, copy after copy, up to the delivery limit): as in run(), never resent.
      const kind = await this.kindOf(row.connection_id);
      if (kind === 'bot') {
        logger.warn('dead-lettered bot message outcome unknown after an interrupted send; not resending', { messageId: row.id });
        return this.fail(row, interruptedBotSend, kind, 'uncertain');
      }
    }
    const error = { code: 'INTERNAL', message: 'delivery kept failing and was dead-lettered' };
    if (row.retries + 1 > this.o.maxRetries) return this.fail(row, error, undefined, 'failed');
    return this.reschedule(row, this.o.clock.now() + 60_000, error, true, row.publish_seq, 'retry');
  }

  private async run(copy: Copy, signal?: AbortSignal): Promise<Outcome> {
    const { sql, sender, pacer, clock, logger } = this.o;
    const row = await this.load.load(copy.id);
    if (!row) return 'missing'; // deleted with its connection or owner
    if (row.status === 'sent' || row.status === 'failed') return 'duplicate';
    const seq = copy.seq ?? row.publish_seq;
    if (row.publish_seq !== seq) return 'stale'; // rescheduled since; its fresh copy does the work
    const kind = await this.kindOf(row.connection_id);

    if (row.status === 'sending') {
      // The attempt that set `sending` died between marking and writing the outcome (kill -9, lost
      // database write). User accounts resend: the random_id makes Telegram drop a duplicate. The Bot
      // API has no such dedupe, so a bot message in doubt is failed rather than possibly sent twice.
      if (kind === 'bot') {
        logger.warn('bot message outcome unknown after an interrupted send; not resending', { messageId: row.id });
        return this.fail(row, interruptedBotSend, kind, 'uncertain');
      }
    } else if (!copy.claimed) {
      // The relay publishes up to one poll early; wait out the rest here rather than in the broker.
      const early = row.available_at.getTime() - clock.now();
      if (early > earlyHoldMs) {
        const r = await rescheduleMessage(sql, row.id, { at: row.available_at, seq });
        return r ? 'deferred' : 'stale';
      }
      if (early > 0) await clock.sleep(early, signal);
    }

    const target: PaceTarget = {
      id: row.id, connectionId: row.connection_id, chat: row.platform_chat_id ?? row.chat, kind,
      priority: row.priority, createdAt: row.created_at.getTime(),
    };
    const slot = await pacer.acquire(target, signal);
    if (!slot.go) {
      const r = await rescheduleMessage(sql, row.id, { at: new Date(slot.until), seq });
      return r ? 'deferred' : 'stale';
    }

    const sending = await this.sending.load({ id: row.id, seq });
    if (!sending) return 'stale';
    publishStatus(sending);
    const call = await pacer.beforeCall(target, signal);
    if (!call.go) {
      // A flood wait for this chat came in since the slot: no call was made, back to queued.
      const r = await this.durably(row.id, () => rescheduleMessage(sql, row.id, { at: new Date(call.until), seq: sending.publish_seq }));
      if (r) publishStatus(r);
      return r ? 'deferred' : 'stale';
    }
    const started = clock.now();
    let platformMessageId: string;
    try {
      ({ platformMessageId } = await sender.send(toOutbound(sending)));
    } catch (err) {
      return this.onError(sending, target, err, clock.now() - started);
    } finally {
      call.done(); // Telegram has seen the call by now, if ever: the pacer counts it from here
    }
    // Outside the send's try: a failed write here is a database error, never a failed send. Treated
    // as one it rescheduled a delivered bot message and sent it twice (12 of 1000 in the Postgres
    // restart of tests/delivery/faults.e2e.test.ts).
    const sent = await this.recordSent(row.id, platformMessageId);
    if (!sent) {
      logger.warn('message was sent but its row had moved on', { messageId: row.id });
      return 'sent';
    }
    publishStatus(sent);
    metrics.messagesSent.inc({ kind: kind ?? 'unknown', status: 'sent' });
    metrics.acceptToSent.observe((sent.sent_at!.getTime() - sent.created_at.getTime()) / 1000);
    return 'sent';
  }

  // The platform has the message: losing this write would turn a bot message into "outcome
  // unknown" on redelivery.
  private recordSent(id: string, platformMessageId: string): Promise<MessageRow | undefined> {
    return this.durably(id, () => this.sent.load({ id, platformMessageId }));
  }

  // A write that records a known outcome of a row in `sending` (sent, or surely not sent: flood wait,
  // parked, failed, retry). Lost, it would leave `sending`, which the next copy reads as "may have
  // been sent": a bot message never sent would be failed as outcome unknown, one sent would be
  // failed too. Nothing else touches a `sending` row within its lease, so the write is retried
  // (0.2 s doubling to 2 s) for up to half the lease (30 s: a Postgres restart takes 3–10 s) before
  // the error propagates and the copy comes back. A retry after a first attempt that did commit
  // matches no row and returns undefined: the callers read that as "moved on" (stale).
  private durably<T>(id: string, write: () => Promise<T>): Promise<T> {
    const { clock, logger, leaseMs } = this.o;
    return retryFor(leaseMs / 2, write, {
      clock,
      onError: (err, tries) => {
        if (tries % 10 === 1) logger.warn('could not record a delivery outcome yet; retrying', { messageId: id, error: (err as Error).message });
      },
    });
  }

  private async onError(row: MessageRow, target: PaceTarget, err: unknown, ms: number): Promise<Outcome> {
    const { pacer, clock, logger } = this.o;
    const e: AppError | undefined = isAppError(err) ? err : undefined;
    const seq = row.publish_seq;
    if (e?.code === 'TG_API_429') {
      const scope = isConnectionWideFlood(e) ? 'connection' : 'chat';
      const at = pacer.pause(target, e.retryAfter ?? 1, scope);
      logger.info('flood wait', { messageId: row.id, connectionId: row.connection_id, retryAfter: e.retryAfter, scope });
      return this.reschedule(row, at, e, false, seq, 'flood');
    }
    if (e?.code === 'CIRCUIT_OPEN' || e?.code === 'CONNECTION_NOT_ACTIVE') {
      // An open breaker knows when it half-opens (retryAfter); resumeConnection() cuts either wait short.
      const wait = e.retryAfter !== undefined ? Math.max(1000, e.retryAfter * 1000) : this.o.parkMs;
      return this.reschedule(row, clock.now() + wait, e, false, seq, 'parked');
    }
    if (e && !e.retryable) return this.fail(row, { code: e.code, message: e.message }, target.kind, 'failed');
    // No answer to a bot send (timeout, connection lost mid-request): Telegram may have posted it,
    // and the Bot API has no random_id to make a resend safe. A user account's resend is deduped.
    if (e?.outcomeUnknown && target.kind === 'bot') {
      logger.warn('bot send got no answer; not resending', { messageId: row.id, code: e.code, ms });
      return this.fail(row, { code: e.code, message: `${e.message}; delivery outcome unknown, and bot messages are not resent, to avoid a duplicate` }, target.kind, 'uncertain');
    }
    // Unknown errors may carry URLs with bot tokens in their message: store and log only the class.
    const error = e ?? { code: 'INTERNAL' as const, message: 'unexpected error from the sender' };
    if (!e) logger.warn('sender threw a non-AppError', { messageId: row.id, errorName: (err as Error)?.name, ms });
    const n = row.retries + 1;
    if (n > this.o.maxRetries) return this.fail(row, { code: error.code, message: error.message }, target.kind, 'failed');
    const { baseMs, capMs } = this.o.backoff;
    const delay = Math.min(capMs, baseMs * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
    return this.reschedule(row, clock.now() + delay, error, true, seq, 'retry');
  }

  // Its callers hold a row past markSending or decide a dead-lettered one: the write is retried
  // (durably), and the seq guard keeps a retry from applying twice.
  private async reschedule(row: MessageRow, at: number, e: { code: string; message: string }, retry: boolean, seq: number, outcome: Outcome): Promise<Outcome> {
    const retryAt = new Date(at);
    const r = await this.durably(row.id, () => rescheduleMessage(this.o.sql, row.id, {
      at: retryAt, error: { code: e.code, message: e.message, retryAt: retryAt.toISOString() }, retry, seq,
    }));
    if (!r) return 'stale';
    publishStatus(r);
    return outcome;
  }

  private async fail(row: MessageRow, error: MessageError, kind: ConnectionKind | undefined, outcome: Outcome): Promise<Outcome> {
    const r = await this.durably(row.id, () => markFailed(this.o.sql, row.id, error));
    if (!r) return 'stale';
    publishStatus(r);
    metrics.messagesSent.inc({ kind: kind ?? 'unknown', status: 'failed' });
    return outcome;
  }
}

const toOutbound = (r: MessageRow): OutboundMessage => ({
  id: r.id,
  owner: r.owner,
  connectionId: r.connection_id,
  chat: r.platform_chat_id ?? r.chat,
  text: r.text,
  ...(r.parse_mode ? { parseMode: r.parse_mode } : {}),
  silent: r.silent,
  ...(r.reply_to ? { replyTo: r.reply_to } : {}),
  priority: r.priority,
  attempts: r.attempts,
  createdAt: r.created_at,
});
