// One delivery attempt for one message, shared by the RabbitMQ consumer and the embedded Postgres
// consumer: load the row, drop stale or finished copies, pace, mark `sending`, pass the pacer's call
// gate, call the sender, write the outcome. The row is written before the caller acks its broker
// copy, so a crash at any point leaves either a final row or a row that some copy (or the relay)
// will bring back.
import type postgres from 'postgres';
import type { Logger } from 'winston';
import type { StatusEvents } from '../config.ts';
import { AppError, isAppError } from '../errors.ts';
import { fetchFile, readFile, type FetchOptions } from '../media/files.ts';
import type { Egress } from '../net/egress.ts';
import { retryFor } from '../retry.ts';
import { metrics } from '../observability/metrics.ts';
import {
  getConnectionKind, getMessageForDelivery, getMessagesForDelivery, markFailed, markSendingMany, markSentMany, rescheduleMessage,
  type MessageError, type MessageRow, type StoredMedia,
} from '../store/messages.ts';
import type { OutboundMedia } from '../platforms/adapter.ts';
import { completeOperation, earlierOperationPending, settleOperation } from '../store/operations.ts';
import { attachFetchedFile } from '../store/message-media.ts';
import { dropUpload } from '../store/uploads.ts';
import { Batcher } from './batcher.ts';
import type { Pacer, PaceTarget } from './pacer.ts';
import type { ShardOwnership } from '../supervisor/types.ts';
import type { Fence } from '../store/leases.ts';
import type { Clock, MessageSender, OutboundMessage, OutboundOperation, SendCapabilities, SendProfile } from './types.ts';

// The relay publishes rows due within its 250 ms poll; anything earlier than this was misrouted in time.
const earlyHoldMs = 5000;

// What run() stores for a message found in `sending` whose platform could post a resend twice;
// deadLettered() stores the same.
const interruptedSend = { code: 'OUTCOME_UNKNOWN', message: 'delivery outcome unknown: sending was interrupted, and this connection cannot resend without risking a duplicate' } as const;

export type Outcome =
  | 'sent' | 'failed' | 'uncertain' // final
  | 'deferred' | 'flood' | 'parked' | 'retry' // back to queued for later
  | 'duplicate' | 'stale' | 'missing'; // this copy had nothing to do

export interface ProcessorOptions {
  sql: postgres.Sql;
  sender: MessageSender;
  /** Send capabilities of a platform kind, for a connection whose actor does not run here yet. */
  capabilities: (platform: string, kind: string) => SendCapabilities | undefined;
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
  /** Media URLs: fetched through this egress guard into a stored file before the message is sent. */
  media?: { egress: Egress; limits: FetchOptions };
  /** Several daemons: only messages of shards this node leases are sent here, and their writes are fenced. */
  cluster?: ShardOwnership;
  /** MESSAGE_STATUS_EVENTS: under `outcomes`, starting a send and rescheduling one store no event. */
  statusEvents?: StatusEvents;
}

/**
 * This node does not (or no longer) hold the message's shard: the copy goes back to the broker (or
 * the claim lapses) for the shard's owner, with the row untouched by this node.
 */
export class ShardNotHeldError extends Error {
  constructor(readonly shard: number) {
    super(`shard ${shard} is not held by this node`);
    this.name = 'ShardNotHeldError';
  }
}

/** A broker copy (or an embedded claim) of one message: the id and the schedule it was made for. */
export interface Copy { id: string; seq?: number; claimed?: boolean }

export class Processor {
  readonly counts: Record<Outcome, number> = {
    sent: 0, failed: 0, uncertain: 0, deferred: 0, flood: 0, parked: 0, retry: 0, duplicate: 0, stale: 0, missing: 0,
  };
  private readonly inflight = new Map<string, Promise<Outcome>>();
  private readonly o: Required<Omit<ProcessorOptions, 'sql' | 'sender' | 'capabilities' | 'pacer' | 'clock' | 'logger' | 'media' | 'cluster'>> & ProcessorOptions;
  // The three statements every message makes, each shared by the deliveries of one loop turn.
  // process() never has two copies of one id in flight, so an id appears once per statement.
  private readonly load: Batcher<string, MessageRow>;
  private readonly sending: Batcher<{ id: string; seq: number; epoch?: number }, MessageRow>;
  private readonly sent: Batcher<{ id: string; platformMessageId: string }, MessageRow>;

  constructor(o: ProcessorOptions) {
    this.o = { leaseMs: 60_000, maxRetries: 8, backoff: { baseMs: 1000, capMs: 5 * 60_000 }, parkMs: 30_000, statusEvents: 'all', ...o };
    const { sql, leaseMs } = this.o;
    const announce = this.announce;
    this.load = new Batcher(async (ids) => { const m = await getMessagesForDelivery(sql, ids); return ids.map((id) => m.get(id)); });
    const node = o.cluster?.node;
    this.sending = new Batcher(async (es) => { const m = await markSendingMany(sql, es, leaseMs, node, announce); return es.map((e) => m.get(e.id)); });
    this.sent = new Batcher(async (es) => { const m = await markSentMany(sql, es); return es.map((e) => m.get(e.id)); });
  }

  /** Whether a status a message passes through on its way (sending, back to queued) is stored as an event. */
  private get announce(): boolean {
    return this.o.statusEvents === 'all';
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
  private async capabilitiesOf(connectionId: string): Promise<SendProfile | undefined> {
    const live = this.o.sender.capabilities(connectionId);
    if (live) return live;
    const c = await getConnectionKind(this.o.sql, connectionId);
    const send = c && this.o.capabilities(c.platform, c.kind);
    return send && { kind: c.kind, send };
  }

  private async revive(id: string): Promise<Outcome> {
    const { sql, logger } = this.o;
    const row = await getMessageForDelivery(sql, id);
    if (!row) return 'missing';
    if (finished(row)) return 'duplicate';
    if (row.status === 'sending') {
      // Typically a send that succeeded while its sent write kept failing (database down for longer
      // than half the lease, copy after copy, up to the delivery limit): as in run(), never resent
      // where a resend could post twice.
      const caps = await this.capabilitiesOf(row.connection_id);
      if (!resendSafe(row, caps)) {
        logger.warn('dead-lettered message outcome unknown after an interrupted send; not resending', { messageId: row.id });
        return this.fail(row, interruptedSend, 'uncertain', undefined, false);
      }
    }
    // Any node reads the dead-letter queue: its writes are guarded by the row (seq, status) alone.
    const error = { code: 'INTERNAL', message: 'delivery kept failing and was dead-lettered' };
    if (row.retries + 1 > this.o.maxRetries) return this.fail(row, error, 'failed', undefined, false);
    return this.reschedule(row, this.o.clock.now() + 60_000, error, true, row.publish_seq, 'retry', false, false);
  }

  private async run(copy: Copy, signal?: AbortSignal): Promise<Outcome> {
    const { sql, sender, pacer, clock, logger } = this.o;
    let row = await this.load.load(copy.id);
    if (!row) return 'missing'; // deleted with its connection or owner
    if (finished(row)) return 'duplicate';
    const seq = copy.seq ?? row.publish_seq;
    if (row.publish_seq !== seq) return 'stale'; // rescheduled since; its fresh copy does the work
    if (this.o.cluster && !this.o.cluster.holds(row.shard)) throw new ShardNotHeldError(row.shard);
    const caps = await this.capabilitiesOf(row.connection_id);

    if (row.status === 'sending') {
      // The attempt that set `sending` died between marking and writing the outcome (kill -9, lost
      // database write). Where the platform drops a duplicate (Telegram user accounts: random_id)
      // the message is resent; elsewhere (the Bot API) a message in doubt is failed rather than
      // possibly sent twice. A connection of a kind this process does not know is treated the same.
      // Edits and deletes are repeated where the kind says a repeat changes nothing more.
      if (!resendSafe(row, caps)) {
        logger.warn('message outcome unknown after an interrupted send; not resending', { messageId: row.id });
        return this.fail(row, interruptedSend, 'uncertain');
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

    // What the call needs beyond the row, got before a pacing slot is taken: the message an edit or
    // delete changes (sent by now), or the file behind a media URL.
    let target: MessageRow | undefined;
    if (row.op) {
      const ready = await this.operationTarget(row, seq, caps);
      if (typeof ready === 'string') return ready;
      target = ready;
    } else if (row.media && !row.upload_id) {
      const fetched = await this.fetchMedia(row, seq, caps, signal);
      if (typeof fetched === 'string') return fetched;
      row = fetched;
    }

    const chat = row.platform_chat_id ?? row.chat;
    const pace: PaceTarget = {
      id: row.id, connectionId: row.connection_id, chat, windows: caps?.send.pacing(chat) ?? noWindows,
      priority: row.priority, createdAt: row.created_at.getTime(),
    };
    const slot = await pacer.acquire(pace, signal);
    if (!slot.go) {
      const r = await rescheduleMessage(sql, row.id, { at: new Date(slot.until), seq });
      return r ? 'deferred' : 'stale';
    }

    const fence = this.fence(row);
    const sending = await this.sending.load({ id: row.id, seq, ...(fence ? { epoch: fence.epoch } : {}) });
    if (!sending) return this.refused(row, fence);
    if (this.o.cluster && !this.o.cluster.holds(row.shard)) throw new ShardNotHeldError(row.shard); // fenced meanwhile: no call
    const call = await pacer.beforeCall(pace, signal);
    if (!call.go) {
      // A flood wait for this chat came in since the slot: no call was made, back to queued.
      const r = await this.durably(row.id, () => rescheduleMessage(sql, row.id, { at: new Date(call.until), seq: sending.publish_seq, announce: this.announce }));
      return r ? 'deferred' : 'stale';
    }
    const started = clock.now();
    let platformMessageId = '';
    try {
      if (target) {
        if (!sender.operate) throw new AppError('PLATFORM_UNSUPPORTED', 'this process sends no edits or deletes');
        await sender.operate(toOperation(sending, target));
      } else {
        ({ platformMessageId } = await sender.send(this.toOutbound(sending)));
      }
    } catch (err) {
      return this.onError(sending, pace, caps, err, clock.now() - started);
    } finally {
      call.done(); // Telegram has seen the call by now, if ever: the pacer counts it from here
    }
    if (target) {
      // The operation and its effect on the message in one statement: a crash either side of it
      // repeats the call (harmless where the kind allows the repeat) or finds it recorded.
      const changed = await this.durably(row.id, () => completeOperation(sql, row.id));
      if (!changed) logger.warn('operation was made but its row had moved on', { messageId: row.id });
      return 'sent';
    }
    // Outside the send's try: a failed write here is a database error, never a failed send. Treated
    // as one it rescheduled a delivered bot message and sent it twice (12 of 1000 in the Postgres
    // restart of tests/delivery/faults.e2e.test.ts).
    const sent = await this.recordSent(row.id, platformMessageId);
    if (!sent) {
      logger.warn('message was sent but its row had moved on', { messageId: row.id });
      return 'sent';
    }
    metrics.messagesSent.inc({ kind: kindLabel(caps), status: 'sent' });
    metrics.acceptToSent.observe((sent.sent_at!.getTime() - sent.created_at.getTime()) / 1000);
    return 'sent';
  }

  /**
   * The message an edit or delete changes, once it can be changed; or the outcome when not now: an
   * earlier operation on it or its own send still under way (deferred), nothing left to change.
   */
  private async operationTarget(row: MessageRow, seq: number, caps: SendProfile | undefined): Promise<MessageRow | Outcome> {
    const { sql, clock } = this.o;
    const target = await getMessageForDelivery(sql, row.target_id!);
    if (!target) return this.fail(row, { code: 'NOT_FOUND', message: 'the message is no longer stored' }, 'failed', caps);
    const unsent = target.status === 'queued' || target.status === 'sending';
    if (unsent || await earlierOperationPending(sql, row)) {
      // Waits for the send (it knows when it is due) or for the operation before it: polled, as both are rare.
      const at = Math.max(clock.now() + 1000, unsent ? target.available_at.getTime() + 500 : 0);
      const r = await rescheduleMessage(sql, row.id, { at: new Date(at), seq });
      return r ? 'deferred' : 'stale';
    }
    const gone = target.status !== 'sent' || target.deleted_at !== null;
    if (gone && row.op === 'delete') {
      // Never reached the chat, or already deleted: nothing to delete.
      if (!(await this.durably(row.id, () => settleOperation(sql, row.id, seq)))) return 'stale';
      return 'sent';
    }
    if (gone) return this.fail(row, { code: 'INVALID_STATE', message: `the message is ${target.deleted_at ? 'deleted' : target.status}; there is nothing to edit` }, 'failed', caps);
    if (!target.platform_message_id) return this.fail(row, { code: 'INVALID_STATE', message: 'the platform did not give this message\'s id; it cannot be changed' }, 'failed', caps);
    return target;
  }

  /**
   * A media URL fetched through the egress guard into a stored file of the message's owner, which
   * the message then carries (a resend sends the same bytes). Refusals fail the message; transient
   * failures count as retries. Two processes fetching at once keep one file.
   */
  private async fetchMedia(row: MessageRow, seq: number, caps: SendProfile | undefined, signal?: AbortSignal): Promise<MessageRow | Outcome> {
    const { sql, logger } = this.o;
    if (!row.media?.url) return this.fail(row, { code: 'NOT_FOUND', message: 'the message\'s file is no longer stored' }, 'failed', caps);
    if (!this.o.media) return this.fail(row, { code: 'MEDIA_FETCH_FAILED', message: 'this process fetches no media URLs' }, 'failed', caps);
    const { egress, limits } = this.o.media;
    try {
      const file = await fetchFile(sql, egress, row.owner, row.media.url, { ...limits, ...(signal ? { signal } : {}) });
      const withFile = await attachFetchedFile(sql, row.id, seq, file);
      if (withFile) return withFile;
      await dropUpload(sql, file.id);
      return 'stale';
    } catch (err) {
      const e = isAppError(err) ? err : new AppError('MEDIA_FETCH_FAILED', 'the media URL could not be fetched', { category: 'retry' });
      logger.info('media URL not fetched', { messageId: row.id, code: e.code, category: e.category });
      if (!e.retryable || row.retries + 1 > this.o.maxRetries) return this.fail(row, { code: e.code, message: e.message }, 'failed', caps);
      const { baseMs, capMs } = this.o.backoff;
      const delay = Math.min(capMs, baseMs * 2 ** row.retries) * (0.5 + Math.random() / 2);
      return this.reschedule(row, this.o.clock.now() + delay, e, true, seq, 'retry');
    }
  }

  private fence(row: MessageRow): Fence | undefined {
    return this.o.cluster?.fence(row.shard);
  }

  // A fenced write matched no row: when the lease moved on (or came back here under a newer epoch than
  // the write named), the copy goes back to the queue; acked here as stale, nobody would send it (the
  // row stayed queued and published). Else the row itself moved on and this copy is stale.
  private async refused(row: MessageRow, fence: Fence | undefined): Promise<Outcome> {
    if (this.o.cluster && await this.o.cluster.refused(row.shard, fence?.epoch)) throw new ShardNotHeldError(row.shard);
    return 'stale';
  }

  private toOutbound(r: MessageRow): OutboundMessage {
    const { sql } = this.o;
    const uploadId = r.upload_id;
    const m = r.media;
    const file = (f: StoredMedia, id: string): OutboundMedia => ({
      type: f.type, filename: f.filename ?? 'file', contentType: f.contentType ?? 'application/octet-stream', size: f.size ?? 0, sha256: f.sha256 ?? '',
      uploadId: id, read: () => readFile(sql, id),
    });
    // A carousel's files are all stored uploads (accepted only so): each read from its own.
    if (m?.items) return { ...toOutbound(r), items: m.items.map((x) => file(x, x.uploadId!)) };
    return { ...toOutbound(r), ...(m && uploadId ? { media: file(m, uploadId) } : {}) };
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

  private async onError(row: MessageRow, target: PaceTarget, caps: SendProfile | undefined, err: unknown, ms: number): Promise<Outcome> {
    const { pacer, clock, logger } = this.o;
    const e: AppError | undefined = isAppError(err) ? err : undefined;
    const seq = row.publish_seq;
    if (e?.category === 'rate-limited-until' || e?.category === 'quota-until') {
      // A spent quota covers the whole connection; a rate limit covers the chat unless the platform said otherwise.
      const scope = e.category === 'quota-until' || e.scope === 'connection' ? 'connection' : 'chat';
      const at = pacer.pause(target, e.retryAfter ?? 1, scope);
      logger.info('rate limited', { messageId: row.id, connectionId: row.connection_id, code: e.code, retryAfter: e.retryAfter, scope });
      return this.reschedule(row, at, e, false, seq, 'flood');
    }
    if (e?.code === 'CIRCUIT_OPEN' || e?.code === 'CONNECTION_NOT_ACTIVE') {
      // An open breaker knows when it half-opens (retryAfter); resumeConnection() cuts either wait short.
      const wait = e.retryAfter !== undefined ? Math.max(1000, e.retryAfter * 1000) : this.o.parkMs;
      return this.reschedule(row, clock.now() + wait, e, false, seq, 'parked', true);
    }
    if (e && !e.retryable) return this.fail(row, { code: e.code, message: e.message }, 'failed', caps);
    // No answer (a timeout, a connection lost mid-request): the platform may have posted it. Resent
    // only where it drops a duplicate; elsewhere the message fails rather than risk a second copy.
    if (e?.outcomeUnknown && !resendSafe(row, caps)) {
      logger.warn('send got no answer; not resending', { messageId: row.id, code: e.code, ms });
      return this.fail(row, { code: 'OUTCOME_UNKNOWN', message: `${e.message}; delivery outcome unknown, and this connection cannot resend without risking a duplicate` }, 'uncertain', caps);
    }
    // Unknown errors may carry URLs with tokens in their message: store and log only the class.
    const error = e ?? { code: 'INTERNAL' as const, message: 'unexpected error from the sender' };
    if (!e) logger.warn('sender threw a non-AppError', { messageId: row.id, errorName: (err as Error)?.name, ms });
    const n = row.retries + 1;
    if (n > this.o.maxRetries) return this.fail(row, { code: error.code, message: error.message }, 'failed', caps);
    const { baseMs, capMs } = this.o.backoff;
    const delay = Math.min(capMs, baseMs * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
    return this.reschedule(row, clock.now() + delay, error, true, seq, 'retry');
  }

  // Its callers hold a row past markSending or decide a dead-lettered one: the write is retried
  // (durably), and the seq guard keeps a retry from applying twice.
  private async reschedule(row: MessageRow, at: number, e: { code: string; message: string }, retry: boolean, seq: number, outcome: Outcome, parked = false, fenced = true): Promise<Outcome> {
    const retryAt = new Date(at);
    const fence = fenced ? this.fence(row) : undefined;
    const r = await this.durably(row.id, () => rescheduleMessage(this.o.sql, row.id, {
      at: retryAt, error: { code: e.code, message: e.message, retryAt: retryAt.toISOString() }, retry, seq, parked, announce: this.announce, ...(fence ? { fence } : {}),
    }));
    if (!r) return this.refused(row, fence);
    return outcome;
  }

  private async fail(row: MessageRow, error: MessageError, outcome: Outcome, caps?: SendProfile, fenced = true): Promise<Outcome> {
    const fence = fenced ? this.fence(row) : undefined;
    const r = await this.durably(row.id, () => markFailed(this.o.sql, row.id, error, fence));
    if (!r) return this.refused(row, fence);
    if (r.op) return outcome;
    metrics.messagesSent.inc({ kind: kindLabel(caps), status: 'failed' });
    return outcome;
  }
}

// A connection whose capabilities are unknown here is paced by nothing but the platform's answers.

const noWindows = { chat: [], connection: [] };

const finished = (r: MessageRow) => r.status === 'sent' || r.status === 'failed' || r.status === 'cancelled';

/** Whether a try of this row whose answer was lost may be made again: sends and operations each as the kind declares. */
const resendSafe = (r: MessageRow, caps: SendProfile | undefined): boolean =>
  (r.op ? caps?.send.operations?.[r.op]?.resendSafe : caps?.send.resendSafe) ?? false;

const toOperation = (op: MessageRow, target: MessageRow): OutboundOperation => ({
  id: op.id,
  owner: op.owner,
  connectionId: op.connection_id,
  type: op.op!,
  chat: target.platform_chat_id ?? target.chat,
  platformMessageId: target.platform_message_id!,
  text: op.text,
  ...(target.parse_mode ? { parseMode: target.parse_mode } : {}),
  ...(target.media ? { media: target.media.type } : {}),
  sentAt: target.sent_at ?? target.updated_at,
  attempts: op.attempts,
});

const kindLabel = (p: SendProfile | undefined): string => p?.kind ?? 'unknown';

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
  ...(r.template ? { template: r.template } : {}),
});
