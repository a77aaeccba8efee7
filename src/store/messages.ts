import { createHash, randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { quotaDefaults } from '../config.ts';
import { AppError, type ErrorDetail } from '../errors.ts';
import { traceCarrier, withSpan, type TraceCarrier } from '../observability/tracing.ts';
import { eventsCommitted, posLockSelect } from './events.ts';
import { fenceClause, type Fence } from './leases.ts';
import { opaque } from './opaque.ts';
import { ownerLockSelect, quotaExceeded } from './quotas.ts';
import { transactionEndingWith, type Tx } from './transaction.ts';
import { lockUploads, type UploadRow } from './uploads.ts';

// The outbox. A message row commits together with its audit row before the API answers 202; from
// then on the row is the truth and broker copies are only wake-up calls (src/delivery). Caller-facing
// queries carry `owner = ${owner}` in SQL; the delivery-side transitions are keyed by id only.

type Sql = postgres.Sql | postgres.TransactionSql | Tx;

export type MessageStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'cancelled' | 'received';
export type Priority = 'high' | 'normal' | 'low';

export interface MessageError { code: string; message: string; retryAt?: string }

export interface MessageRow {
  id: string;
  owner: string;
  connection_id: string;
  chat: string;
  platform_chat_id: string | null;
  text: string;
  parse_mode: 'html' | 'markdown' | null;
  silent: boolean;
  reply_to: string | null;
  priority: Priority;
  status: MessageStatus;
  attempts: number;
  platform_message_id: string | null;
  error: MessageError | null;
  idempotency_key: string | null;
  request_hash: string | null;
  shard: number;
  available_at: Date;
  published_at: Date | null;
  publish_seq: number;
  retries: number;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
  /** W3C context of the accepting request (tracing on), continued by the relay / embedded consumer */
  trace_context: TraceCarrier | null;
  /** waiting for its connection to be active again (see releaseParked) */
  parked: boolean;
  /** the file the message carries, as it will show it (migrations/007_media.sql) */
  media: StoredMedia | null;
  /** the stored file it is sent from, while it is kept */
  upload_id: string | null;
  /** an edit or delete of `target_id` (an operation row, never listed as a message) */
  op: 'edit' | 'delete' | null;
  target_id: string | null;
  edited_at: Date | null;
  deleted_at: Date | null;
  /** what the platform reported after the send (migrations/010_platform_messages.sql) */
  platform_status?: 'sent' | 'delivered' | 'read' | null;
  platform_status_at?: Date | null;
  /** a template sent instead of text (WhatsApp) */
  template?: { name: string; language: string; components?: unknown[] } | null;
  /** 'in': an incoming message (src/store/incoming.ts), status 'received' (migrations/008_events.sql) */
  direction: 'out' | 'in';
  /** who sent an incoming message, as the platform names them */
  sender: string | null;
}

export type MediaType = 'photo' | 'document' | 'video' | 'audio' | 'voice' | 'animation';

/** A message's media as stored: what the caller asked for, and the file's facts once known. */
export interface StoredMedia {
  type: MediaType;
  uploadId?: string;
  url?: string;
  filename?: string;
  contentType?: string;
  size?: number;
  sha256?: string;
  /**
   * A carousel (POST /v1/messages `items`): every file in order; the fields above are the first's, so
   * the row's upload_id and everything reading a message's one file keep working.
   */
  items?: StoredMedia[];
}

/** media of POST /v1/messages: a stored file (uploadId) or an https URL the service fetches when it sends. */
export interface MediaInput { type: MediaType; uploadId?: string; url?: string; filename?: string }

export interface MessageInput {
  connectionId: string;
  chat: string;
  /** Set when `chat` is one of our chat ids (uuid): the platform's id it resolved to. */
  platformChatId?: string;
  text: string;
  parseMode?: 'html' | 'markdown';
  silent?: boolean;
  replyTo?: string;
  priority?: Priority;
  idempotencyKey?: string;
  /** with media, `text` is its caption and may be empty */
  media?: MediaInput;
  /** a carousel: 2–10 stored files (uploadId) published as one post; `text` is its caption */
  items?: MediaInput[];
  /** a platform template instead of text (`text` may be empty) */
  template?: { name: string; language: string; components?: unknown[] };
}

/** An edit or delete not yet applied to the message, or the last one when it failed. */
export interface PendingOperation {
  type: 'edit' | 'delete'; status: 'queued' | 'sending' | 'failed'; text?: string; error?: MessageError; requestedAt: string;
}

export interface Message {
  id: string; connectionId: string; chat: string; text: string; priority: Priority; status: MessageStatus;
  attempts: number; platformMessageId?: string; error?: MessageError; createdAt: string; sentAt?: string;
  media?: StoredMedia; items?: StoredMedia[]; editedAt?: string; deletedAt?: string; pendingOperation?: PendingOperation;
  platformStatus?: string; platformStatusAt?: string; template?: { name: string; language: string; components?: unknown[] };
  direction: 'out' | 'in'; from?: string;
}

export const toApiMessage = (r: MessageRow, pending?: PendingOperation): Message => ({
  id: r.id,
  connectionId: r.connection_id,
  chat: r.chat,
  text: r.text,
  priority: r.priority,
  status: r.status,
  attempts: r.attempts,
  ...(r.platform_message_id ? { platformMessageId: r.platform_message_id } : {}),
  ...(r.error ? { error: pickError(r.error) } : {}),
  createdAt: r.created_at.toISOString(),
  ...(r.sent_at ? { sentAt: r.sent_at.toISOString() } : {}),
  ...(r.media?.items ? { items: r.media.items } : r.media ? { media: r.media } : {}),
  ...(r.edited_at ? { editedAt: r.edited_at.toISOString() } : {}),
  ...(r.deleted_at ? { deletedAt: r.deleted_at.toISOString() } : {}),
  ...(pending ? { pendingOperation: pending } : {}),
  ...(r.platform_status ? { platformStatus: r.platform_status } : {}),
  ...(r.platform_status_at ? { platformStatusAt: r.platform_status_at.toISOString() } : {}),
  ...(r.template ? { template: r.template } : {}),
  direction: r.direction ?? 'out',
  ...(r.sender ? { from: r.sender } : {}),
});

const pickError = (e: MessageError): MessageError =>
  e.retryAt ? { code: e.code, message: e.message, retryAt: e.retryAt } : { code: e.code, message: e.message };

// ---- message.status events, written by the statement that changes the status ----
//
// Every status change stores its event in the events table in the same statement (one transaction)
// as the change: a crash after COMMIT cannot leave a change without its event, nor an event without
// its change. The event is built in SQL from the row as written, in the shape toApiMessage gives
// (tests/store/status-events.test.ts holds the two equal), so that no change needs BEGIN, a second
// statement and COMMIT: one statement per batch, whatever its size.

// ISO 8601 with milliseconds, as Date#toISOString (to_char's MS truncates like JS Dates do).
const isoOf = (col: postgres.PendingQuery<postgres.Row[]>, sql: Sql) => sql`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** toApiMessage in SQL, of the row alias `s` (with a `pending` jsonb column: its pending operation or null). */
function apiJson(sql: Sql) {
  const opt = (cond: postgres.PendingQuery<postgres.Row[]>, obj: postgres.PendingQuery<postgres.Row[]>) => sql`|| case when ${cond} then ${obj} else '{}'::jsonb end`;
  return sql`(jsonb_build_object('id', s.id, 'connectionId', s.connection_id, 'chat', s.chat, 'text', s.text, 'priority', s.priority,
      'status', s.status, 'attempts', s.attempts, 'createdAt', ${isoOf(sql`s.created_at`, sql)}, 'direction', coalesce(s.direction, 'out'))
    ${opt(sql`s.platform_message_id <> ''`, sql`jsonb_build_object('platformMessageId', s.platform_message_id)`)}
    ${opt(sql`jsonb_typeof(s.error) = 'object'`, sql`jsonb_build_object('error', jsonb_build_object('code', s.error->'code', 'message', s.error->'message')
      || case when coalesce(s.error->>'retryAt', '') <> '' then jsonb_build_object('retryAt', s.error->'retryAt') else '{}'::jsonb end)`)}
    ${opt(sql`s.sent_at is not null`, sql`jsonb_build_object('sentAt', ${isoOf(sql`s.sent_at`, sql)})`)}
    ${opt(sql`jsonb_typeof(s.media) = 'object'`, sql`jsonb_build_object('media', s.media)`)}
    ${opt(sql`s.edited_at is not null`, sql`jsonb_build_object('editedAt', ${isoOf(sql`s.edited_at`, sql)})`)}
    ${opt(sql`s.deleted_at is not null`, sql`jsonb_build_object('deletedAt', ${isoOf(sql`s.deleted_at`, sql)})`)}
    ${opt(sql`s.pending is not null`, sql`jsonb_build_object('pendingOperation', s.pending)`)}
    ${opt(sql`s.platform_status <> ''`, sql`jsonb_build_object('platformStatus', s.platform_status)`)}
    ${opt(sql`s.platform_status_at is not null`, sql`jsonb_build_object('platformStatusAt', ${isoOf(sql`s.platform_status_at`, sql)})`)}
    ${opt(sql`jsonb_typeof(s.template) = 'object'`, sql`jsonb_build_object('template', s.template)`)}
    ${opt(sql`s.sender <> ''`, sql`jsonb_build_object('from', s.sender)`)})`;
}

/**
 * CTEs ending in `status_events` (put them after a CTE `changed` of message rows as just written): one
 * message.status event per changed message; for a changed edit or delete, one for the message it
 * changes, with its pending operation as the changed rows leave it (pendingOperations in SQL).
 */
export function statusEvents(sql: Sql) {
  return sql`status_rows as materialized (
    select s.id, s.owner, s.connection_id, ${apiJson(sql)} as data
    from (
      select c.*, null::jsonb as pending from changed c where c.op is null
      union all
      select t.*, p.pending from messages t
      join (select distinct target_id from changed where op is not null) x on x.target_id = t.id
      left join lateral (
        select case when o.status in ('queued', 'sending', 'failed') then jsonb_build_object('type', o.op, 'status', o.status, 'requestedAt', ${isoOf(sql`o.created_at`, sql)})
          || case when o.op = 'edit' then jsonb_build_object('text', o.text) else '{}'::jsonb end
          || case when o.status = 'failed' and jsonb_typeof(o.error) = 'object' then jsonb_build_object('error', jsonb_build_object('code', o.error->'code', 'message', o.error->'message')) else '{}'::jsonb end
          end as pending
        from (
          select id, op, status, text, error, created_at from changed where target_id = t.id
          union all
          select id, op, status, text, error, created_at from messages where target_id = t.id and id not in (select id from changed)
        ) o
        order by o.created_at desc, o.id desc limit 1
      ) p on true
    ) s
  ),
  -- The pos lock once the rows are changed and their events built (the count needs all of them):
  -- held for the insert and COMMIT only, not while the update waits for row locks.
  status_lock as materialized (${posLockSelect(sql)} from (select count(*) as n from status_rows) c where c.n > 0),
  status_events as (
    insert into events (id, customer_id, type, connection_id, data)
    select gen_random_uuid(), r.owner, 'message.status', r.connection_id, r.data
    from status_rows r, status_lock
    order by r.id
    returning 1
  )`;
}

/** `, status_rows …, status_events` after a `changed` CTE when `on`, else nothing: for changes that announce only sometimes. */
function statusEventsIf(sql: Sql, on: boolean) {
  return on ? sql`, ${statusEvents(sql)}` : sql``;
}

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const priorities: readonly Priority[] = ['high', 'normal', 'low'];
// Telegram's limit for one text message; the API validates too, the store refuses to hold more.
const maxText = 4096;

export interface AcceptResult { message: MessageRow; replay: boolean }
export interface AuditContext {
  actor: string;
  requireActive?: boolean;
  /** store the new messages' `queued` events (false with MESSAGE_STATUS_EVENTS=outcomes) */
  announce?: boolean;
  /** unsent (queued or sending) messages the owner may have; QUOTA_EXCEEDED beyond, all or none */
  maxQueued?: number;
}

/**
 * Inserts a batch of messages and their audit rows in one transaction, all or none.
 * Same owner + idempotency key with the same body → the stored message (replay: true);
 * same key with another body → IDEMPOTENCY_CONFLICT. Unknown or foreign connection → NOT_FOUND;
 * connection not active → CONNECTION_NOT_ACTIVE (unless requireActive is false); more unsent
 * messages than maxQueued → QUOTA_EXCEEDED (replays add nothing, so they always pass).
 */
export async function acceptMessages(sql: postgres.Sql, owner: string, inputs: MessageInput[], audit: AuditContext): Promise<AcceptResult[]> {
  validate(inputs);
  const announce = audit.announce !== false;
  // Always a transaction: the owner's quota lock must cover the count and the insert, and an
  // idempotency conflict found after the insert must undo the batch. Without keys this used to be
  // one statement; BEGIN, the lock, the count and COMMIT are the price of a quota that holds.
  const results = await withSpan('outbox insert', { 'messaging.batch.message_count': inputs.length }, () => transactionEndingWith<AcceptResult[]>(sql, async (tx) => {
    // Inside the span: the relay's publish span becomes a child of this insert.
    const traceContext = traceCarrier();
    const connIds = [...new Set(inputs.map((i) => i.connectionId))];
    // The owner's lock (quotas.ts) and the connections in one statement, the lock first (the left side
    // of the join is read before any connection row). Under the lock no other accept of this owner
    // runs, so the keys and the count read next (a later statement, a fresh snapshot) stay true.
    // Was 5 statements with the keys and the count (connections, lock, keys, lock again, count), now 2 in one round trip.
    // One connection (the common case) by equality, which keeps a generic plan; `= any(array)` is
    // planned on every run (111 of its 133 µs a message at 10,000/min; see getChats), hence opaque()
    // for several. The count's owner is opaque too: planned for each owner's backlog, it was re-planned
    // on most runs at 100,000/min (160 µs a run).
    const keys = [...new Set(inputs.flatMap((i) => (i.idempotencyKey === undefined ? [] : [i.idempotencyKey])))];
    // The room read is written with the lock's statement, not after its answer: the server runs a
    // connection's statements in order, so it still reads once the lock is held (one round trip and
    // one socket write fewer per accept). When the connections check fails below, its answer is unused.
    const [conns, [room]] = await Promise.all([
      tx<{ id: string | null; status: string; shard: number }[]>`
        select c.id, c.status, c.shard from (${ownerLockSelect(tx, owner)}) l
        left join connections c on c.owner = ${owner} and ${connIds.length === 1 ? tx`c.id = ${connIds[0]!}` : tx`c.id = any(${opaque(tx, tx.array(connIds), 'uuid[]')}::uuid[])`}`,
      tx<{ unsent: number; used: string[] }[]>`
        select (select count(*)::int from messages where owner = ${opaque(tx, owner, 'text')} and status in ('queued', 'sending')) as unsent,
          ${keys.length === 0 ? tx`'{}'::text[]` : tx`array(select idempotency_key from messages where owner = ${owner} and idempotency_key = any(${tx.array(keys)}))`} as used`,
    ]);
    const byId = new Map(conns.flatMap((c) => (c.id ? [[c.id, c] as const] : [])));
    inputs.forEach((inp, i) => {
      const c = byId.get(inp.connectionId);
      if (!c) throw new AppError('NOT_FOUND', 'connection not found', { details: [{ path: `messages.${i}.connectionId`, message: 'not found' }] });
      if (audit.requireActive !== false && c.status !== 'active') {
        throw new AppError('CONNECTION_NOT_ACTIVE', `connection is ${c.status}, not active`, { details: [{ path: `messages.${i}.connectionId`, message: c.status }] });
      }
    });
    const known = new Set(room!.used);
    const adding = inputs.filter((i) => i.idempotencyKey === undefined).length + keys.filter((k) => !known.has(k)).length;
    const limit = audit.maxQueued ?? quotaDefaults.queuedMessagesPerOwner;
    if (adding > 0 && room!.unsent + adding > limit) throw quotaExceeded('queued messages per owner', limit, room!.unsent, adding);
    // Locked until commit: the retention job cannot delete a file a message is about to use.
    const uploads = await lockUploads(tx, owner, inputs.flatMap((i) => [...(i.media?.uploadId ? [i.media.uploadId] : []), ...(i.items ?? []).flatMap((x) => (x.uploadId ? [x.uploadId] : []))]));
    const missing = inputs.flatMap((inp, i) => [
      ...(inp.media?.uploadId && !uploads.has(inp.media.uploadId) ? [{ path: `messages.${i}.media.uploadId`, message: 'no such upload (or it expired)' }] : []),
      ...(inp.items ?? []).flatMap((x, k) => (x.uploadId && !uploads.has(x.uploadId) ? [{ path: `messages.${i}.items.${k}.uploadId`, message: 'no such upload (or it expired)' }] : [])),
    ]);
    if (missing.length > 0) throw new AppError('NOT_FOUND', 'upload not found', { details: missing });
    const rows = inputs.map((inp) => ({
      id: randomUUID(),
      owner,
      connection_id: inp.connectionId,
      chat: inp.chat,
      platform_chat_id: inp.platformChatId ?? null,
      text: inp.text,
      parse_mode: inp.parseMode ?? null,
      silent: inp.silent ?? false,
      reply_to: inp.replyTo ?? null,
      priority: inp.priority ?? 'normal',
      idempotency_key: inp.idempotencyKey ?? null,
      request_hash: requestHash(inp),
      shard: byId.get(inp.connectionId)!.shard,
      trace_context: traceContext ? tx.json(traceContext as never) : null,
      media: inp.items?.length ? tx.json(storedItems(inp.items, uploads) as never) : inp.media ? tx.json(storedMedia(inp.media, uploads) as never) : null,
      upload_id: inp.items?.[0]?.uploadId ?? inp.media?.uploadId ?? null,
      template: inp.template ? tx.json(inp.template as never) : null,
    }));
    // A key seen before (or twice in this batch) inserts nothing; the loser of two concurrent
    // requests waits for the winner's commit here and then reads its row below. Each inserted
    // message gets its audit row in the same statement.
    const insertCtes = tx`ins as (
        insert into messages ${tx(rows)}
        on conflict (owner, idempotency_key) where idempotency_key is not null do nothing
        returning *
      ), aud as (
        insert into audit (owner, actor, action, target, details)
        select ${owner}, ${audit.actor}, 'message.accepted', ins.id::text,
          jsonb_build_object('connectionId', ins.connection_id, 'priority', ins.priority)
        from ins
      )`;
    if (keys.length === 0) {
      // No idempotency key: every row is new and none can conflict, so the insert, its audit rows and
      // the `queued` events are one statement, written with COMMIT (one round trip fewer per accept).
      return {
        last: tx`with ${insertCtes}, changed as (select * from ins)${statusEventsIf(tx, announce)} select * from ins`,
        resultOf: (inserted) => {
          const byNewId = new Map((inserted as MessageRow[]).map((r) => [r.id, r]));
          return rows.map((r) => {
            const message = byNewId.get(r.id);
            if (!message) throw new AppError('INTERNAL', 'an accepted message was not inserted');
            return { message, replay: false };
          });
        },
      };
    }
    const inserted = await tx<MessageRow[]>`with ${insertCtes} select * from ins`;
    const insertedById = new Map(inserted.map((r) => [r.id, r]));
    const missingKeys = rows.filter((r) => !insertedById.has(r.id)).map((r) => r.idempotency_key!);
    const existing = missingKeys.length === 0 ? [] : await tx<MessageRow[]>`
      select * from messages where owner = ${owner} and idempotency_key = any(${tx.array(missingKeys)})`;
    const byKey = new Map(existing.map((r) => [r.idempotency_key!, r]));
    const out: AcceptResult[] = rows.map((r, i) => {
      const fresh = insertedById.get(r.id);
      if (fresh) return { message: fresh, replay: false };
      const prior = byKey.get(r.idempotency_key!);
      if (!prior) throw new AppError('INTERNAL', 'idempotency key vanished during accept');
      if (prior.request_hash !== r.request_hash) {
        throw new AppError('IDEMPOTENCY_CONFLICT', 'idempotency key was used with a different request', { details: [{ path: `messages.${i}.idempotencyKey`, message: 'reused with another body' }] });
      }
      return { message: prior, replay: true };
    });
    // The new messages' `queued` events, sent with COMMIT: the events' pos lock it takes is not held
    // across a round trip (transactionEndingWith).
    if (inserted.length === 0 || !announce) return { result: out };
    return {
      result: out,
      last: tx`with changed as (select * from messages where id = any(${tx.array(inserted.map((r) => r.id))}::uuid[])), ${statusEvents(tx)} select 1`,
    };
  }));
  if (announce && results.some((r) => !r.replay)) eventsCommitted();
  return results;
}

// What a message shows of its file: for a stored file its facts now; for a URL, once fetched.
function storedMedia(m: MediaInput, uploads: Map<string, UploadRow>): StoredMedia {
  const u = m.uploadId ? uploads.get(m.uploadId) : undefined;
  if (!u) return { type: m.type, ...(m.url ? { url: m.url } : {}), ...(m.filename ? { filename: m.filename } : {}) };
  return { type: m.type, uploadId: u.id, filename: m.filename ?? u.filename, contentType: u.content_type, size: Number(u.size), sha256: u.sha256 ?? '' };
}

function storedItems(items: MediaInput[], uploads: Map<string, UploadRow>): StoredMedia {
  const all = items.map((x) => storedMedia(x, uploads));
  return { ...all[0]!, items: all };
}

function validate(inputs: MessageInput[]): void {
  const details: ErrorDetail[] = [];
  if (inputs.length === 0) details.push({ path: 'messages', message: 'at least one message' });
  inputs.forEach((m, i) => {
    const p = `messages.${i}`;
    if (!uuidRe.test(m.connectionId)) details.push({ path: `${p}.connectionId`, message: 'must be a connection id' });
    if (!m.chat) details.push({ path: `${p}.chat`, message: 'required' });
    const optional = m.media || m.items || m.template;
    if (optional ? m.text.length > maxText : !m.text || m.text.length > maxText) details.push({ path: `${p}.text`, message: `${optional ? 0 : 1}..${maxText} characters` });
    if (m.media && (m.media.uploadId === undefined) === (m.media.url === undefined)) details.push({ path: `${p}.media`, message: 'uploadId or url, one of them' });
    if (m.items && (m.media || m.items.length < 2 || m.items.length > 10 || m.items.some((x) => !x.uploadId))) {
      details.push({ path: `${p}.items`, message: '2 to 10 stored files (uploadId), without media' });
    }
    if (m.priority !== undefined && !priorities.includes(m.priority)) details.push({ path: `${p}.priority`, message: 'high, normal or low' });
    if (m.parseMode !== undefined && m.parseMode !== 'html' && m.parseMode !== 'markdown') details.push({ path: `${p}.parseMode`, message: 'html or markdown' });
  });
  if (details.length > 0) throw new AppError('VALIDATION_ERROR', 'invalid message', { details });
}

// What "the same request" means for an idempotency key: every field that changes what is sent.
function requestHash(m: MessageInput): string {
  const canonical = [m.connectionId, m.chat, m.text, m.parseMode ?? null, m.silent ?? false, m.replyTo ?? null, m.priority ?? 'normal',
    ...(m.media ? [m.media.type, m.media.uploadId ?? null, m.media.url ?? null, m.media.filename ?? null] : []),
    ...(m.items ? [{ items: m.items.map((x) => [x.type, x.uploadId ?? null, x.filename ?? null]) }] : []),
    ...(m.template ? [{ template: m.template }] : [])];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** Which of these idempotency keys the owner has already used (their messages exist). */
export async function usedIdempotencyKeys(sql: Sql, owner: string, keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await sql<{ idempotency_key: string }[]>`
    select idempotency_key from messages where owner = ${owner} and idempotency_key = any(${sql.array(keys)})`;
  return new Set(rows.map((r) => r.idempotency_key));
}

export async function getMessage(sql: Sql, owner: string, id: string): Promise<MessageRow | undefined> {
  if (!uuidRe.test(id)) return undefined;
  const [r] = await sql<MessageRow[]>`select * from messages where id = ${id} and owner = ${owner} and op is null`;
  return r;
}

export interface ListOptions {
  connectionId?: string; status?: MessageStatus; limit: number; cursor?: string;
  direction?: 'out' | 'in';
  /** only messages created after this instant */
  since?: Date;
  /** Full-text query (web search syntax: words, "a phrase", -word, or) over the `search` column. */
  q?: string;
}

/**
 * Newest first, keyset-paginated on (created_at, id); the cursor is opaque to callers. With `q`,
 * only messages whose text matches it: words as Postgres' `simple` configuration splits them
 * (lower-cased, no stemming), through the GIN index on `search`.
 */
export async function listMessages(sql: Sql, owner: string, o: ListOptions): Promise<{ items: MessageRow[]; nextCursor?: string }> {
  const after = o.cursor === undefined ? undefined : decodeCursor(o.cursor);
  if (o.connectionId !== undefined && !uuidRe.test(o.connectionId)) return { items: [] };
  const rows = await sql<MessageRow[]>`
    select * from messages
    where owner = ${owner} and op is null
      ${o.connectionId !== undefined ? sql`and connection_id = ${o.connectionId}` : sql``}
      ${o.status !== undefined ? sql`and status = ${o.status}` : sql``}
      ${o.direction !== undefined ? sql`and direction = ${o.direction}` : sql``}
      ${o.since !== undefined ? sql`and created_at > ${o.since}` : sql``}
      ${o.q !== undefined ? sql`and search @@ websearch_to_tsquery('simple', ${o.q})` : sql``}
      ${after !== undefined
        ? sql`and (created_at, id) < (select created_at, id from messages where id = ${after} and owner = ${owner})`
        : sql``}
    order by created_at desc, id desc
    limit ${o.limit + 1}`;
  const items = rows.slice(0, o.limit);
  return rows.length > o.limit ? { items, nextCursor: Buffer.from(items.at(-1)!.id).toString('base64url') } : { items };
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!uuidRe.test(id)) throw new AppError('VALIDATION_ERROR', 'invalid cursor', { details: [{ path: 'cursor', message: 'invalid' }] });
  return id;
}

// ---- delivery side (not owner-scoped: the relay and consumers act for every owner) ----

export async function getMessageForDelivery(sql: Sql, id: string): Promise<MessageRow | undefined> {
  if (!uuidRe.test(id)) return undefined;
  const [r] = await sql<MessageRow[]>`select * from messages where id = ${id}`;
  return r;
}

/** The platform and kind of a connection, whoever owns it (delivery, before its actor runs here). */
export async function getConnectionKind(sql: Sql, connectionId: string): Promise<{ platform: string; kind: string } | undefined> {
  const [r] = await sql<{ platform: string; kind: string }[]>`select platform, kind from connections where id = ${connectionId}`;
  return r;
}

/** Failed for good, with its event (for an edit or delete: the message it changes, with the failed operation). */
export async function markFailed(sql: Sql, id: string, error: MessageError, fence?: Fence): Promise<MessageRow | undefined> {
  const [r] = await sql<MessageRow[]>`
    with changed as (
      update messages set status = 'failed', error = ${sql.json(error as never)}, updated_at = now()
      where id = ${id} and status in ('queued', 'sending') ${fenceClause(sql, sql`messages.shard`, fence)}
      returning *
    ), ${statusEvents(sql)}
    select * from changed`;
  if (r) eventsCommitted();
  return r;
}

/** getMessageForDelivery for many ids in one statement; a missing id has no entry. */
export async function getMessagesForDelivery(sql: Sql, ids: string[]): Promise<Map<string, MessageRow>> {
  const valid = ids.filter((id) => uuidRe.test(id));
  if (valid.length === 0) return new Map();
  const rows = await sql<MessageRow[]>`select * from messages where id = any(${opaque(sql, sql.array(valid), 'uuid[]')}::uuid[])`;
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * The platform calls are about to start: attempts + 1, and a lease (available_at) after which a row
 * still in `sending` counts as abandoned by a crashed process. Only the holder of a row's current
 * publish_seq may do this, so a stale broker copy never sends. One statement for many (id, seq);
 * ids that did not qualify have no entry. With announce false (MESSAGE_STATUS_EVENTS=outcomes) the
 * `sending` events are not stored.
 */
export async function markSendingMany(sql: Sql, entries: { id: string; seq: number; epoch?: number }[], leaseMs: number, node?: string, announce = true): Promise<Map<string, MessageRow>> {
  if (entries.length === 0) return new Map();
  const ids = sql.array(entries.map((e) => e.id));
  // With a node, each entry is fenced by the epoch of its shard's lease (one batch mixes shards).
  const rows = await sql<MessageRow[]>`
    with ${lockedInOrder(sql, ids)}, changed as (
      update messages m set status = 'sending', attempts = m.attempts + 1,
        available_at = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
      from locked, unnest(${opaque(sql, ids, 'uuid[]')}, ${opaque(sql, sql.array(entries.map((e) => e.seq)), 'int[]')}, ${opaque(sql, sql.array(entries.map((e) => e.epoch ?? -1)), 'bigint[]')}) as t(id, seq, epoch)
      where m.id = locked.id and m.id = t.id and m.publish_seq = t.seq and m.status in ('queued', 'sending')
        ${node === undefined ? sql`` : sql`and exists (select 1 from shard_leases l where l.shard = m.shard and l.owner = ${node} and l.epoch = t.epoch for share)`}
      returning m.*
    )${statusEventsIf(sql, announce)}
    select * from changed`;
  if (announce && rows.length > 0) eventsCommitted();
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * The platform took these messages: one statement for many, with their message.status events; ids
 * no longer in `sending` have no entry.
 */
export async function markSentMany(sql: Sql, entries: { id: string; platformMessageId: string }[]): Promise<Map<string, MessageRow>> {
  if (entries.length === 0) return new Map();
  const ids = sql.array(entries.map((e) => e.id));
  const rows = await sql<MessageRow[]>`
    with ${lockedInOrder(sql, ids)}, changed as (
      update messages m set status = 'sent', platform_message_id = t.platform_message_id, sent_at = now(),
        error = null, updated_at = now()
      from locked, unnest(${opaque(sql, ids, 'uuid[]')}, ${opaque(sql, sql.array(entries.map((e) => e.platformMessageId)), 'text[]')}) as t(id, platform_message_id)
      where m.id = locked.id and m.id = t.id and m.status = 'sending'
      returning m.*
    ), ${statusEvents(sql)}
    select * from changed`;
  if (rows.length > 0) eventsCommitted();
  return new Map(rows.map((r) => [r.id, r]));
}

// Every statement that updates several message rows locks them in id order first. Two batches
// that lock overlapping rows in different orders deadlock, and Postgres breaks the tie only after
// deadlock_timeout (1 s): measured at 10,000/min, the relay's markPublished against a batched
// markSending deadlocked 23 times a minute and pushed p99 from 0.13 s to 1.8 s.
// Their arrays are opaque() parameters: one generic plan whatever the batch size.
function lockedInOrder(sql: Sql, ids: postgres.Parameter<string[]> | postgres.ArrayParameter<string[]>) {
  return sql`locked as materialized (select id from messages where id = any(${opaque(sql, ids, 'uuid[]')}::uuid[]) order by id for update)`;
}

export interface Reschedule {
  at: Date;
  /** undefined keeps the current error (pacing); null clears it */
  error?: MessageError | null;
  /** counts against the retry limit (transient failures only) */
  retry?: boolean;
  /** only if the row is still at this seq (the caller's copy is current) */
  seq?: number;
  /** only while this shard lease is current */
  fence?: Fence;
  /** waiting for its connection to be active again (released early by releaseParked) */
  parked?: boolean;
  /**
   * a status change callers see (back from `sending`, or a retry's error): stored with its event.
   * Without it (a copy that came early, a pacing wait) the message stays queued as it was shown.
   */
  announce?: boolean;
}

/**
 * Back to `queued` for later: a new publish_seq (older broker copies become stale) and
 * published_at cleared so the relay publishes a fresh copy once the row is due.
 */
export async function rescheduleMessage(sql: Sql, id: string, r: Reschedule): Promise<MessageRow | undefined> {
  const [row] = await sql<MessageRow[]>`
    with changed as (
      update messages set status = 'queued', available_at = ${r.at}, publish_seq = publish_seq + 1,
        published_at = null, updated_at = now(), parked = ${r.parked ?? false},
        retries = retries + ${r.retry ? 1 : 0}
        ${r.error === undefined ? sql`` : sql`, error = ${r.error === null ? null : sql.json(r.error as never)}`}
      where id = ${id} and status in ('queued', 'sending')
        ${r.seq === undefined ? sql`` : sql`and publish_seq = ${r.seq}`}
        ${fenceClause(sql, sql`messages.shard`, r.fence)}
      returning *
    )${statusEventsIf(sql, r.announce === true)}
    select * from changed`;
  if (row && r.announce) eventsCommitted();
  return row;
}

/**
 * The connection is active again: its parked messages (waiting while it was not active or its
 * breaker was open) become due now instead of at their next park check.
 */
export async function releaseParked(sql: Sql, connectionId: string): Promise<number> {
  const rows = await sql`
    with locked as materialized (
      select id from messages
      where connection_id = ${connectionId} and status = 'queued' and parked and available_at > now()
      order by id for update
    )
    update messages m set available_at = now(), publish_seq = m.publish_seq + 1, published_at = null, updated_at = now(), parked = false
    from locked
    where m.id = locked.id and m.status = 'queued' and m.parked and m.available_at > now()
    returning 1`;
  return rows.length;
}

export interface OutboxEntry { id: string; shard: number; priority: Priority; publish_seq: number; trace_context: TraceCarrier | null }

/** Committed rows the relay has not handed to the broker yet and that are due within horizonMs. */
export async function listUnpublished(sql: Sql, o: { limit: number; horizonMs: number; shards?: number[] }): Promise<OutboxEntry[]> {
  return sql<OutboxEntry[]>`
    select id, shard, priority, publish_seq, trace_context from messages
    where published_at is null and status = 'queued' ${o.shards ? sql`and shard = any(${sql.array(o.shards)}::int[])` : sql``}
      and available_at <= now() + make_interval(secs => ${o.horizonMs / 1000})
    order by available_at, created_at
    limit ${o.limit}`;
}

/** Only rows still at the published seq: a reschedule in between needs its own fresh copy. */
export async function markPublished(sql: Sql, entries: { id: string; seq: number }[]): Promise<number> {
  if (entries.length === 0) return 0;
  const ids = sql.array(entries.map((e) => e.id));
  const rows = await sql`
    with ${lockedInOrder(sql, ids)}
    update messages m set published_at = now()
    from locked, unnest(${opaque(sql, ids, 'uuid[]')}, ${opaque(sql, sql.array(entries.map((e) => e.seq)), 'int[]')}) as t(id, seq)
    where m.id = locked.id and m.id = t.id and m.publish_seq = t.seq and m.published_at is null
    returning 1`;
  return rows.length;
}

/**
 * Embedded mode (no broker): claims due rows with FOR UPDATE SKIP LOCKED, so several processes can
 * share the table. The claim moves available_at forward by the lease and bumps publish_seq but keeps
 * `queued`: `sending` is set only when the platform call starts, so it always means "may have been
 * sent". Rows left in `sending` past their lease (a crashed process) are claimed again.
 * High priority first; the sort touches only due rows (top-N of those).
 */
export async function claimDue(sql: Sql, o: { limit: number; leaseMs: number; shards?: number[] }): Promise<MessageRow[]> {
  return sql<MessageRow[]>`
    update messages m set publish_seq = m.publish_seq + 1,
      available_at = now() + make_interval(secs => ${o.leaseMs / 1000}), updated_at = now()
    from (
      select id from messages
      where status in ('queued', 'sending') and available_at <= now() ${o.shards ? sql`and shard = any(${sql.array(o.shards)}::int[])` : sql``}
      order by case priority when 'high' then 0 when 'normal' then 1 else 2 end, available_at, created_at
      limit ${o.limit}
      for update skip locked
    ) due
    where m.id = due.id
    returning m.*`;
}

export interface QueueStats { queued: number; sending: number; oldestCreatedAt?: Date }

export async function queueStats(sql: Sql): Promise<QueueStats> {
  const rows = await sql<{ status: 'queued' | 'sending'; n: number; oldest: Date }[]>`
    select status, count(*)::int as n, min(created_at) as oldest from messages
    where status in ('queued', 'sending')
    group by status`;
  const out: QueueStats = { queued: 0, sending: 0 };
  for (const r of rows) {
    out[r.status] = r.n;
    if (!out.oldestCreatedAt || r.oldest < out.oldestCreatedAt) out.oldestCreatedAt = r.oldest;
  }
  return out;
}

/** Retention: deletes up to `batch` finished (sent/failed/cancelled) messages that ended before `cutoff`. */
export async function purgeFinishedMessages(sql: Sql, cutoff: Date, batch: number): Promise<number> {
  const r = await sql`
    delete from messages where id in (
      select id from messages
      where status in ('sent', 'failed', 'cancelled', 'received') and coalesce(sent_at, updated_at) < ${cutoff}
      limit ${batch})`;
  return r.count;
}

/**
 * Queue expiry: up to `batch` messages still `queued` that were accepted before `cutoff` end
 * `failed` with `error` (MESSAGE_EXPIRED), each with its event; returns the changed rows.
 * Rows a sender holds (locked) are skipped this time; a row already `sending` is never touched:
 * its call may be under way, and the delivery side decides how it ends.
 */
export async function expireQueued(sql: Sql, cutoff: Date, error: MessageError, batch: number): Promise<MessageRow[]> {
  const rows = await sql<MessageRow[]>`
    with locked as materialized (
      select id from messages where status = 'queued' and created_at < ${cutoff}
      order by id limit ${batch} for update skip locked
    ), changed as (
      update messages m set status = 'failed', error = ${sql.json(error as never)}, updated_at = now()
      from locked
      where m.id = locked.id and m.status = 'queued'
      returning m.*
    ), ${statusEvents(sql)}
    select * from changed`;
  if (rows.length > 0) eventsCommitted();
  return rows;
}
