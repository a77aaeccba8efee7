import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { quotaDefaults } from '../config.ts';
import { AppError } from '../errors.ts';
import { traceCarrier } from '../observability/tracing.ts';
import { recordAudit } from './audit.ts';
import { appendEvents, eventsCommitted } from './events.ts';
import { toApiMessage, type MessageError, type MessageRow, type PendingOperation } from './messages.ts';
import { checkQueueRoom, lockOwner } from './quotas.ts';
import { transaction, type Tx } from './transaction.ts';

// Edits and deletes of messages (PATCH/DELETE /v1/messages/{id}). What each request does depends on
// how far the message got:
// - queued and never tried: the change is made to the row itself: an edit replaces its text, a
//   delete cancels it (status `cancelled`). Nothing reaches the platform.
// - anything that may be in the chat (sending, sent, or queued after a try whose outcome an account
//   resends): an operation row is queued in the outbox (op 'edit' | 'delete', target_id), sent by the
//   same delivery as messages (pacing, leases, retries, crash recovery) once the message is sent, in
//   the order requested. Its effect lands on the message in the same statement that records it done.
// A row lock on the message serialises these requests with each other and with delivery.

type Sql = postgres.Sql | postgres.TransactionSql | Tx;

/** What the message's connection kind allows (its SendCapabilities), by platform and kind. */
export type OperationPolicy = (platform: string, kind: string) => { edit: boolean; delete: boolean; resendSafe: boolean; captionMaxLength?: number };

export interface OperationRequest {
  /** The message as it is after the request (text replaced, or cancelled). */
  message: MessageRow;
  /** The queued operation, when one was needed. */
  operation?: MessageRow;
  /** A delete of a message already deleted, being deleted or cancelled: nothing new was done. */
  already?: boolean;
}

interface Locked extends MessageRow { platform: string; kind: string }

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Telegram's limit for a message text; a caption's is the platform's (checked by the API).
const maxText = 4096;

async function lockTarget(tx: Sql, owner: string, id: string): Promise<{ m: Locked; pending: MessageRow[] }> {
  if (!uuidRe.test(id)) throw new AppError('NOT_FOUND', 'not found');
  // The owner first, as every accept does (the queue quota below takes it too): one lock order.
  await lockOwner(tx, owner);
  const [m] = await tx<Locked[]>`
    select m.*, c.platform, c.kind from messages m join connections c on c.id = m.connection_id
    where m.id = ${id} and m.owner = ${owner} and m.op is null
    for update of m`;
  if (!m) throw new AppError('NOT_FOUND', 'not found');
  const pending = await tx<MessageRow[]>`
    select * from messages where target_id = ${id} and status in ('queued', 'sending') order by created_at, id`;
  return { m, pending };
}

async function queueOperation(tx: Sql, m: Locked, op: 'edit' | 'delete', text: string, actor: string, maxQueued: number): Promise<MessageRow> {
  await checkQueueRoom(tx, m.owner, maxQueued, 1);
  const traceContext = traceCarrier();
  const [row] = await tx<MessageRow[]>`
    insert into messages ${tx({
      id: randomUUID(), owner: m.owner, connection_id: m.connection_id, chat: m.chat, platform_chat_id: m.platform_chat_id,
      text, parse_mode: m.parse_mode, silent: m.silent, priority: m.priority, shard: m.shard, op, target_id: m.id,
      trace_context: traceContext ? tx.json(traceContext as never) : null,
    })}
    returning *`;
  await recordAudit(tx, { owner: m.owner, actor, action: `message.${op}.requested`, target: m.id, details: { operationId: row!.id } });
  return row!;
}

const strip = ({ platform: _p, kind: _k, ...row }: Locked): MessageRow => row;

export interface EditOptions { actor: string; policy: OperationPolicy; maxQueued?: number }

/**
 * PATCH: the new text in place while the message is queued and was never tried, else an edit
 * queued behind the send and any earlier operation. MESSAGE_NOT_MODIFIED when the text is what the
 * message will show anyway; INVALID_STATE for a message failed, cancelled or deleted.
 */
export async function requestEdit(sql: postgres.Sql, owner: string, id: string, text: string, o: EditOptions): Promise<OperationRequest> {
  if (!text || text.length > maxText) throw new AppError('VALIDATION_ERROR', 'invalid text', { details: [{ path: 'text', message: `1..${maxText} characters` }] });
  return withEvent(sql, async (tx) => {
    const { m, pending } = await lockTarget(tx, owner, id);
    if (m.deleted_at || pending.some((p) => p.op === 'delete')) throw new AppError('INVALID_STATE', 'the message is deleted, or a delete of it is pending');
    if (m.status === 'failed' || m.status === 'cancelled') throw new AppError('INVALID_STATE', `the message is ${m.status}; only a message that is queued, sending or sent can be edited`);
    const shows = pending.filter((p) => p.op === 'edit').at(-1)?.text ?? m.text;
    if (text === shows) throw new AppError('MESSAGE_NOT_MODIFIED', 'the message already has this text');
    const captionMax = m.media ? o.policy(m.platform, m.kind).captionMaxLength : undefined;
    if (captionMax !== undefined && text.length > captionMax) {
      throw new AppError('VALIDATION_ERROR', 'caption too long', { details: [{ path: 'text', message: `a caption of ${m.platform} is at most ${captionMax} characters` }] });
    }
    if (m.status === 'queued' && m.attempts === 0 && pending.length === 0) {
      const [row] = await tx<MessageRow[]>`update messages set text = ${text}, updated_at = now() where id = ${m.id} returning *`;
      await recordAudit(tx, { owner, actor: o.actor, action: 'message.edited', target: m.id, details: { before: 'sent' } });
      return { message: row! };
    }
    if (!o.policy(m.platform, m.kind).edit) throw new AppError('PLATFORM_UNSUPPORTED', `${m.platform} ${m.kind} connections cannot edit messages`);
    const operation = await queueOperation(tx, m, 'edit', text, o.actor, o.maxQueued ?? quotaDefaults.queuedMessagesPerOwner);
    return { message: strip(m), operation };
  });
}

/**
 * DELETE: cancels a message queued and never tried (or tried only where a try that got no answer
 * was failed rather than resent, so it cannot be in the chat), else queues a delete behind the send.
 * A message already deleted, being deleted or cancelled answers as it is; a failed one is INVALID_STATE.
 */
export async function requestDelete(sql: postgres.Sql, owner: string, id: string, o: EditOptions): Promise<OperationRequest> {
  return withEvent(sql, async (tx) => {
    const { m, pending } = await lockTarget(tx, owner, id);
    if (m.status === 'cancelled' || m.deleted_at || pending.some((p) => p.op === 'delete')) return { message: strip(m), already: true };
    if (m.status === 'failed') throw new AppError('INVALID_STATE', 'the message failed: it is not in the chat');
    const policy = o.policy(m.platform, m.kind);
    if (m.status === 'queued' && (m.attempts === 0 || !policy.resendSafe)) {
      const [row] = await tx<MessageRow[]>`
        update messages set status = 'cancelled', updated_at = now(), parked = false where id = ${m.id} returning *`;
      // Edits waiting for it will never have anything to change.
      await tx`update messages set status = 'cancelled', updated_at = now() where target_id = ${m.id} and status = 'queued'`;
      await recordAudit(tx, { owner, actor: o.actor, action: 'message.cancelled', target: m.id, details: {} });
      return { message: row! };
    }
    if (!policy.delete) throw new AppError('PLATFORM_UNSUPPORTED', `${m.platform} ${m.kind} connections cannot delete messages`);
    const operation = await queueOperation(tx, m, 'delete', '', o.actor, o.maxQueued ?? quotaDefaults.queuedMessagesPerOwner);
    return { message: strip(m), operation };
  });
}

// The request and the message's status event (with the operation now pending, if one was queued)
// in one transaction; a delete that changed nothing has no event.
async function withEvent(sql: postgres.Sql, fn: (tx: Tx) => Promise<OperationRequest>): Promise<OperationRequest> {
  const r = await transaction(sql, async (tx) => {
    const req = await fn(tx);
    if (!req.already) await appendStatusEvents(tx, [req.operation ?? req.message]);
    return req;
  });
  if (!r.already) eventsCommitted();
  return r;
}

/**
 * The message.status events of `rows`, built here (toApiMessage), appended in the caller's
 * transaction: for changes made in several statements (edits and deletes). An edit or delete row
 * stands for the message it changes, with its pending operation; `pending` shows the pending
 * operation of the rows' own messages too (as the API answers them).
 */
async function appendStatusEvents(tx: Sql, rows: MessageRow[], o: { pending?: boolean } = {}): Promise<void> {
  const own = rows.filter((r) => !r.op);
  const targetIds = [...new Set(rows.flatMap((r) => (r.op && r.target_id ? [r.target_id] : [])))];
  const targets = targetIds.length === 0 ? [] : await tx<MessageRow[]>`select * from messages where id = any(${tx.array(targetIds)}::uuid[])`;
  const unsent = (r: MessageRow) => r.status === 'sent' || r.status === 'sending' || r.status === 'queued';
  const asking = [...targets.map((t) => t.id), ...(o.pending ? own.filter(unsent).map((r) => r.id) : [])];
  const pending = asking.length === 0 ? new Map<string, PendingOperation>() : await pendingOperations(tx, asking);
  await appendEvents(tx, [...own, ...targets].map((r) => ({
    customerId: r.owner, type: 'message.status' as const, connectionId: r.connection_id, data: toApiMessage(r, pending.get(r.id)),
  })));
}

// ---- delivery side ----

/**
 * The operation is done at the platform: recorded in one statement with its effect on the message
 * (new text and edited_at, or deleted_at), and the message's status event. Undefined when the
 * operation row had moved on.
 */
export async function completeOperation(sql: postgres.Sql, opId: string): Promise<MessageRow | undefined> {
  const t = await transaction(sql, async (tx) => {
    const changed = await changeByOperation(tx, opId);
    if (changed) await appendStatusEvents(tx, [changed], { pending: true });
    return changed;
  });
  if (t) eventsCommitted();
  return t;
}

async function changeByOperation(sql: Sql, opId: string): Promise<MessageRow | undefined> {
  const [t] = await sql<MessageRow[]>`
    with op as (
      update messages set status = 'sent', sent_at = now(), error = null, updated_at = now()
      where id = ${opId} and status = 'sending' and op is not null
      returning *
    )
    update messages t set
      text = case when op.op = 'edit' then op.text else t.text end,
      edited_at = case when op.op = 'edit' then now() else t.edited_at end,
      deleted_at = case when op.op = 'delete' then coalesce(t.deleted_at, now()) else t.deleted_at end,
      updated_at = now()
    from op where t.id = op.target_id
    returning t.*`;
  return t;
}

/** Done with nothing to do at the platform (a delete of a message that never reached the chat), with the message's status event. */
export async function settleOperation(sql: postgres.Sql, opId: string, seq: number): Promise<boolean> {
  const r = await transaction(sql, async (tx) => {
    const rows = await tx<MessageRow[]>`
      update messages set status = 'sent', sent_at = now(), error = null, updated_at = now()
      where id = ${opId} and status in ('queued', 'sending') and publish_seq = ${seq}
      returning *`;
    await appendStatusEvents(tx, rows);
    return rows.length > 0;
  });
  if (r) eventsCommitted();
  return r;
}

/** An operation on the same message requested earlier and not yet finished: this one waits for it. */
export async function earlierOperationPending(sql: Sql, op: MessageRow): Promise<boolean> {
  const r = await sql`
    select 1 from messages
    where target_id = ${op.target_id} and status in ('queued', 'sending') and (created_at, id) < (${op.created_at}, ${op.id})
    limit 1`;
  return r.length > 0;
}

/**
 * The operation each message shows as pending: its newest one, unless that one is done. Failed ones
 * stay shown (with their error) until a newer operation is requested.
 */
export async function pendingOperations(sql: Sql, ids: string[]): Promise<Map<string, PendingOperation>> {
  if (ids.length === 0) return new Map();
  const rows = await sql<{ target_id: string; op: 'edit' | 'delete'; status: string; text: string; error: MessageError | null; created_at: Date }[]>`
    select distinct on (target_id) target_id, op, status, text, error, created_at from messages
    where target_id = any(${sql.array(ids)}::uuid[])
    order by target_id, created_at desc, id desc`;
  const out = new Map<string, PendingOperation>();
  for (const r of rows) {
    if (r.status !== 'queued' && r.status !== 'sending' && r.status !== 'failed') continue;
    out.set(r.target_id, {
      type: r.op, status: r.status, ...(r.op === 'edit' ? { text: r.text } : {}),
      ...(r.error && r.status === 'failed' ? { error: { code: r.error.code, message: r.error.message } } : {}),
      requestedAt: r.created_at.toISOString(),
    });
  }
  return out;
}
