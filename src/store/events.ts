// The events table (migrations/008_events.sql): every event a caller can see is stored here before it
// is announced. Writers call appendEvent inside the transaction that makes the change; readers page
// by `pos` (readEvents for one caller, readAllEvents for consumers that act for every caller) and
// consumers that must not lose one keep their place with a cursor (claimCursor / advanceCursor).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type postgres from 'postgres';
import type { Tx } from './transaction.ts';

type Sql = postgres.Sql | postgres.TransactionSql | Tx;

export type EventType = 'connection.status' | 'message.status' | 'message.received' | 'webhook.disabled';
export const eventTypes: readonly EventType[] = ['connection.status', 'message.status', 'message.received', 'webhook.disabled'];

export interface NewEvent { customerId: string; type: EventType; connectionId?: string; data: unknown }

/** The envelope every reader gets (docs/api.md, "Events"): the contract for WebSocket, RabbitMQ and webhooks. */
export interface StoredEvent {
  /** uuid, stable across redeliveries (a webhook's `webhook-id`, a RabbitMQ messageId) */
  id: string;
  /** commit order, strictly increasing (holes where a transaction rolled back) */
  pos: number;
  customerId: string;
  type: EventType;
  connectionId?: string;
  occurredAt: string;
  data: unknown;
}

interface EventRow {
  pos: string; id: string; customer_id: string; type: EventType; connection_id: string | null; data: unknown; created_at: Date;
}

// Any constant both sides agree on; 0x6576656e7473 is "events" in ASCII.
const posLock = 0x6576656e7473;

/**
 * `select pg_advisory_xact_lock(pos lock)`, for a statement that inserts events itself: put `from`
 * after it a relation that depends on the statement's changed rows (an aggregate over them), so the
 * lock is taken once those are computed and held only for the insert and COMMIT.
 */
export function posLockSelect(sql: Sql) {
  return sql`select pg_advisory_xact_lock(${posLock})`;
}

const toEvent = (r: EventRow): StoredEvent => ({
  id: r.id, pos: Number(r.pos), customerId: r.customer_id, type: r.type,
  ...(r.connection_id ? { connectionId: r.connection_id } : {}),
  occurredAt: r.created_at.toISOString(), data: r.data,
});

/**
 * Stores events in the caller's transaction (or alone, as one statement) and returns them with
 * their pos. Make it the LAST statement of the transaction: it takes the pos lock, held to COMMIT,
 * so anything the transaction does after it makes every other event writer wait. After COMMIT, call
 * eventsCommitted() so this process's live readers look at once (others find it within their poll).
 */
export async function appendEvents(sql: Sql, events: readonly NewEvent[]): Promise<StoredEvent[]> {
  if (events.length === 0) return [];
  const items = events.map((e) => ({
    id: randomUUID(), customer_id: e.customerId, type: e.type, connection_id: e.connectionId ?? null, data: e.data ?? null,
  }));
  // One statement: the lock (CTE, evaluated before any row) then the rows in their given order, so
  // the default nextval() runs under the lock. Works the same inside a transaction and alone.
  const rows = await sql<EventRow[]>`
    with l as (select pg_advisory_xact_lock(${posLock})),
    input as (
      select e.v, e.n from jsonb_array_elements(${sql.json(items as never)}::jsonb) with ordinality as e(v, n)
    )
    insert into events (id, customer_id, type, connection_id, data)
    select (v->>'id')::uuid, v->>'customer_id', v->>'type', (v->>'connection_id')::uuid, coalesce(v->'data', 'null'::jsonb)
    from input, l
    order by n
    returning pos, id, customer_id, type, connection_id, data, created_at`;
  return rows.map(toEvent).sort((a, b) => a.pos - b.pos);
}

/** appendEvent(tx, { customerId, type, connectionId?, data }): the one call other modules use. */
export async function appendEvent(sql: Sql, event: NewEvent): Promise<StoredEvent> {
  const [e] = await appendEvents(sql, [event]);
  return e!;
}

// In-process signal that events were committed: the live feed (src/events/feed.ts) reads at once
// instead of waiting for its poll. Writers call eventsCommitted() after COMMIT; nothing is lost when
// they forget, it only arrives a poll interval later.
const committed = new EventEmitter();
committed.setMaxListeners(0);
export function eventsCommitted(): void { committed.emit('committed'); }
/** Calls listener coalesceMs after a commit, once for every commit signalled meanwhile. */
export function onEventsCommitted(listener: () => void, coalesceMs: number): () => void {
  let soon: NodeJS.Timeout | undefined;
  const onCommit = () => {
    soon ??= setTimeout(() => { soon = undefined; listener(); }, coalesceMs);
  };
  committed.on('committed', onCommit);
  return () => {
    committed.off('committed', onCommit);
    clearTimeout(soon);
  };
}

export interface ReadOptions {
  /** only events with pos greater than this */
  afterPos: number;
  limit: number;
  types?: readonly string[];
  connectionId?: string;
}

/** One caller's events after a pos, in pos order. */
export async function readEvents(sql: Sql, customerId: string, o: ReadOptions): Promise<StoredEvent[]> {
  const rows = await sql<EventRow[]>`
    select pos, id, customer_id, type, connection_id, data, created_at from events
    where customer_id = ${customerId} and pos > ${o.afterPos}
      ${o.types?.length ? sql`and type in ${sql(o.types as string[])}` : sql``}
      ${o.connectionId !== undefined ? sql`and connection_id = ${o.connectionId}` : sql``}
    order by pos limit ${o.limit}`;
  return rows.map(toEvent);
}

/** Every caller's events after a pos, in pos order (publishers and the live feed). */
export async function readAllEvents(sql: Sql, afterPos: number, limit: number): Promise<StoredEvent[]> {
  const rows = await sql<EventRow[]>`
    select pos, id, customer_id, type, connection_id, data, created_at from events
    where pos > ${afterPos} order by pos limit ${limit}`;
  return rows.map(toEvent);
}

/** The highest pos stored (0 when none): where a reader that wants only new events starts. */
export async function lastEventPos(sql: Sql): Promise<number> {
  const [r] = await sql<{ pos: string | null }[]>`select max(pos) as pos from events`;
  return Number(r?.pos ?? 0);
}

/** The pos of the caller's event with this id, or undefined (unknown, expired, or another caller's). */
export async function eventPos(sql: Sql, customerId: string, id: string): Promise<number | undefined> {
  const [r] = await sql<{ pos: string }[]>`select pos from events where id = ${id} and customer_id = ${customerId}`;
  return r ? Number(r.pos) : undefined;
}

/** Deletes events older than the cutoff, at most batch rows; returns how many. */
export async function purgeEvents(sql: Sql, cutoff: Date, batch: number): Promise<number> {
  const r = await sql`
    delete from events where pos in (select pos from events where created_at < ${cutoff} order by pos limit ${batch})`;
  return r.count;
}

/** Deletes every event of a caller (erasure). */
export async function deleteCustomerEvents(sql: Sql, customerId: string): Promise<number> {
  const r = await sql`delete from events where customer_id = ${customerId}`;
  return r.count;
}

// ---- cursors: at-least-once consumers (the RabbitMQ publisher, webhooks) ----

/**
 * Takes (or renews) the consumer's lease for `leaseMs` and returns its pos, or undefined while
 * another holder's lease runs. A new consumer starts at 0 (every stored event), or at `startPos`.
 * Judged by the database clock, so daemons with skewed clocks agree.
 */
export async function claimCursor(sql: Sql, consumer: string, holder: string, leaseMs: number, startPos = 0): Promise<number | undefined> {
  // One statement: a new consumer's row is created held; an existing one is taken only when free,
  // expired or already ours (no row comes back otherwise).
  const [r] = await sql<{ pos: string }[]>`
    insert into event_cursors (consumer, pos, holder, lease_until, updated_at)
    values (${consumer}, ${startPos}, ${holder}, now() + ${leaseMs} * interval '1 millisecond', now())
    on conflict (consumer) do update set holder = excluded.holder, lease_until = excluded.lease_until, updated_at = now()
    where event_cursors.holder is null or event_cursors.holder = excluded.holder or event_cursors.lease_until < now()
    returning pos`;
  return r ? Number(r.pos) : undefined;
}

/**
 * Moves the cursor forward to pos (never back), and with `leaseMs` renews the lease in the same
 * statement; false when the lease was lost (stop consuming).
 */
export async function advanceCursor(sql: Sql, consumer: string, holder: string, pos: number, leaseMs?: number): Promise<boolean> {
  const r = await sql`
    update event_cursors set pos = greatest(pos, ${pos}), updated_at = now()
      ${leaseMs === undefined ? sql`` : sql`, lease_until = now() + ${leaseMs} * interval '1 millisecond'`}
    where consumer = ${consumer} and holder = ${holder} and lease_until >= now()`;
  return r.count === 1;
}

/** Gives the lease up at once (a graceful stop), so another holder need not wait it out. */
export async function releaseCursor(sql: Sql, consumer: string, holder: string): Promise<void> {
  await sql`update event_cursors set holder = null, lease_until = null, updated_at = now() where consumer = ${consumer} and holder = ${holder}`;
}
