import type postgres from 'postgres';
import { insertDeliveries, type WebhookEventInput } from '../store/webhooks.ts';

export type { WebhookEventInput } from '../store/webhooks.ts';

type Sql = postgres.Sql | postgres.TransactionSql;

// The one door into the delivery pipeline. The stored events (the `events` table) feed it, and so does
// POST /v1/webhooks/{id}/test; called inside the transaction that stores the event, the deliveries
// commit with it. Wakers are the dispatchers of this process: woken after a commit, they claim at
// once instead of at their next poll; other processes find the rows at their poll.

const wakers = new Set<() => void>();

/** A dispatcher's wake-up call (returns the unsubscribe). */
export function onWebhookEnqueued(wake: () => void): () => void {
  wakers.add(wake);
  return () => wakers.delete(wake);
}

export const wakeDispatchers = (): void => { for (const w of wakers) w(); };

/** The exact body every attempt of this event sends: `{ type, timestamp, data }`. */
export const eventBody = (e: Pick<WebhookEventInput, 'type' | 'occurredAt' | 'data'>): string =>
  JSON.stringify({ type: e.type, timestamp: new Date(e.occurredAt).toISOString(), data: e.data ?? {} });

/**
 * Inserts one pending delivery per matching endpoint of the event's owner (enabled, filters match),
 * idempotent on (endpoint, event id). `onlyEndpoint`: the test event, to that endpoint whatever its filters.
 * Returns how many deliveries were added. Wakes this process's dispatchers unless `sql` is a
 * transaction (the caller wakes them after commit with wakeDispatchers()).
 */
export async function enqueueWebhookEvent(sql: Sql, event: WebhookEventInput, opts: { onlyEndpoint?: string } = {}): Promise<number> {
  const rows = await insertDeliveries(sql, event, eventBody(event), opts.onlyEndpoint);
  if (rows.length > 0 && !('savepoint' in sql && typeof (sql as postgres.TransactionSql).savepoint === 'function')) wakeDispatchers();
  return rows.length;
}
