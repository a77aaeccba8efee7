import type postgres from 'postgres';
import { AppError } from '../errors.ts';

// Per-owner quotas, checked where the rows are inserted so that every path (the supervisor, the
// routes, a test double of the supervisor) is held to them. Check-then-insert is race-safe only
// because the check first takes a transaction-scoped advisory lock keyed by the owner: a second
// request of the same owner waits at the lock until the first commits, and its count (a new
// statement, a new read-committed snapshot) then sees the first one's rows. Requests of different
// owners never wait on each other (save a hashtext collision, which only serialises them).
// Callers run the check and the insert in one transaction; outside one the lock ends with the
// statement and two racing requests at the limit could both pass.

type Sql = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

// First key of the two-int advisory lock space: 'QUOT'. The migration lock uses the one-bigint
// space, so the two never meet.
const lockClass = 0x51554f54;

export async function lockOwner(sql: Sql, owner: string): Promise<void> {
  await sql`${ownerLockSelect(sql, owner)}`;
}

/** lockOwner as a query to put in a statement that does more (the lock is taken where it is read). */
export function ownerLockSelect(sql: Sql, owner: string) {
  return sql`select pg_advisory_xact_lock(${lockClass}::int, hashtext(${owner}))`;
}

export type QuotaName = 'connections per owner' | 'chats per connection' | 'queued messages per owner' | 'webhooks per owner';

/** QUOTA_EXCEEDED naming the quota, its limit and what is in use. */
export function quotaExceeded(name: QuotaName, limit: number, used: number, adding = 1): AppError {
  const asked = adding === 1 ? '' : `; this request adds ${adding}`;
  return new AppError('QUOTA_EXCEEDED', `quota of ${limit} ${name} reached (${used} in use${asked})`);
}

/** Locks the owner, then refuses when `adding` more connections would pass `limit`. */
export async function checkConnectionRoom(sql: Sql, owner: string, limit: number, adding = 1): Promise<void> {
  await lockOwner(sql, owner);
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from connections where owner = ${owner}`;
  const n = r!.n;
  if (n + adding > limit) throw quotaExceeded('connections per owner', limit, n, adding);
}

/**
 * Locks the owner, then refuses a new chat on a connection that has `limit` already. A chat the
 * connection already has (same platform chat id) is a refresh and always passes.
 */
/** Webhook endpoints of one owner; run inside the transaction that inserts (the owner lock covers the insert). */
export async function checkWebhookRoom(sql: Sql, owner: string, limit: number): Promise<void> {
  await lockOwner(sql, owner);
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from webhook_endpoints where owner = ${owner}`;
  if (r!.n >= limit) throw quotaExceeded('webhooks per owner', limit, r!.n);
}

export async function checkChatRoom(sql: Sql, owner: string, connectionId: string, platformChatId: string, limit: number): Promise<void> {
  await lockOwner(sql, owner);
  const [r] = await sql<{ n: number; known: boolean }[]>`
    select count(*)::int as n, coalesce(bool_or(platform_chat_id = ${platformChatId}), false) as known
    from chats where owner = ${owner} and connection_id = ${connectionId}`;
  if (!r!.known && r!.n + 1 > limit) throw quotaExceeded('chats per connection', limit, r!.n);
}

/**
 * Locks the owner, then refuses when `adding` more unsent messages would pass `limit`. Unsent is
 * `queued` or `sending`: room comes back as messages are sent, fail or expire.
 */
export async function checkQueueRoom(sql: Sql, owner: string, limit: number, adding: number): Promise<void> {
  await lockOwner(sql, owner);
  const [r] = await sql<{ n: number }[]>`
    select count(*)::int as n from messages where owner = ${owner} and status in ('queued', 'sending')`;
  const n = r!.n;
  if (n + adding > limit) throw quotaExceeded('queued messages per owner', limit, n, adding);
}
