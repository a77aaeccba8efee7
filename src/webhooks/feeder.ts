// Feeds the events table into webhook deliveries. Like the RabbitMQ publisher, it follows its own
// cursor (event_cursors, consumer `webhooks`) under a lease (src/events/cursor-follower.ts), so with
// several daemons one feeds and the others stand by. A batch's deliveries are inserted in one statement, then the cursor advances; a crash
// in between repeats the batch, and (endpoint, event id) being unique makes the repeat add nothing.
// So every stored event reaches every matching endpoint once, with its event id as `webhook-id`.
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { followEvents } from '../events/cursor-follower.ts';
import { logger as defaultLogger } from '../observability/logger.ts';
import { insertDeliveriesForEvents } from '../store/webhooks.ts';
import { eventBody, wakeDispatchers } from './enqueue.ts';

export interface WebhookFeederOptions {
  sql: postgres.Sql;
  /** events per batch (one statement, one cursor advance). 500 */
  batch?: number;
  /** the cursor lease; another daemon takes over this long after this one stops renewing. 15 s */
  leaseMs?: number;
  /** how often to look for events other daemons stored, and to retry after a failure. 200 ms */
  pollMs?: number;
  /** names this feeder in event_cursors.holder; default a random uuid per process */
  holder?: string;
  logger?: Logger;
}

export interface WebhookFeeder {
  /** resolves once every event stored so far has its deliveries (tests, benches) */
  caughtUp(): Promise<void>;
  stats(): { fed: number; deliveries: number; failed: number; holding: boolean };
  stop(): Promise<void>;
}

const consumer = 'webhooks';

export function startWebhookFeeder(o: WebhookFeederOptions): WebhookFeeder {
  const log = o.logger ?? defaultLogger;
  const counts = { fed: 0, deliveries: 0 };
  const follower = followEvents({
    sql: o.sql, consumer, holder: o.holder ?? randomUUID(), batch: o.batch ?? 500, leaseMs: o.leaseMs ?? 15_000, pollMs: o.pollMs ?? 200, logger: log,
    handle: async (events) => {
      const added = await insertDeliveriesForEvents(o.sql, events.map((e) => ({
        id: e.id, customerId: e.customerId, type: e.type, ...(e.connectionId ? { connectionId: e.connectionId } : {}), body: eventBody(e),
      })));
      if (added > 0) wakeDispatchers();
      counts.fed += events.length;
      counts.deliveries += added;
    },
    onFailure: (err) => log.warn('events not fed to webhooks yet; retrying', { error: err.message }),
  });
  return {
    caughtUp: () => follower.caughtUp(),
    stats: () => ({ ...counts, failed: follower.failures(), holding: follower.holding() }),
    stop: () => follower.stop(),
  };
}
