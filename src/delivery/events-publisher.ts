// Publishes the events table on RabbitMQ for other services: a durable topic exchange
// (`integration.events`), routing key = event type (`message.received`, `message.status`,
// `connection.status`), persistent JSON messages with publisher confirms. Consumers bind their own
// queues (`message.received`, `message.*`, `#`).
//
// At least once: the publisher reads the table after its cursor (event_cursors, consumer
// `rabbitmq:<exchange>`), publishes a batch, waits for every confirm, and only then advances the
// cursor. A crash, a broker outage or a lost lease between publish and advance repeats the batch on
// the next start (same AMQP messageId = the event id, so consumers can drop the repeat); nothing is
// skipped. The cursor is a lease: with several daemons one publishes, the others wait and take
// over within leaseMs when it dies (src/events/cursor-follower.ts).
import { randomUUID } from 'node:crypto';
import { Connection, type ConnectionOptions, type Publisher } from 'rabbitmq-client';
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { coalesceAmqpWrites } from '../net/coalesce-writes.ts';
import { logger as defaultLogger } from '../observability/logger.ts';
import { followEvents } from '../events/cursor-follower.ts';
import type { StoredEvent } from '../store/events.ts';

export interface EventsPublisherOptions {
  sql: postgres.Sql;
  /** amqp:// or amqps:// */
  amqpUrl: string;
  /** extra rabbitmq-client options, e.g. tls { ca, cert, key, servername } */
  amqpOptions?: Omit<ConnectionOptions, 'url'>;
  /** default integration.events */
  exchange?: string;
  /** events per publish batch (one cursor advance each). 500 */
  batch?: number;
  /** the cursor lease; another daemon takes over this long after this one stops renewing. 15 s */
  leaseMs?: number;
  /** how often to look for events other daemons stored, and to retry after a failure. 200 ms */
  pollMs?: number;
  /** names this publisher in event_cursors.holder; default a random uuid per process */
  holder?: string;
  logger?: Logger;
}

export interface EventsPublisherStats { published: number; failed: number; pos: number; holding: boolean }

export interface EventsPublisher {
  /** settles once the exchange was declared (or the first attempt failed and was logged); never rejects */
  ready: Promise<void>;
  stats(): EventsPublisherStats;
  /** resolves once every event stored so far is confirmed by the broker (tests, benches) */
  caughtUp(): Promise<void>;
  /** finishes the batch in flight, gives the lease up, closes the connection */
  stop(): Promise<void>;
}

const publishedTypes: ReadonlySet<string> = new Set(['message.received', 'message.status', 'connection.status']);

export function startEventsPublisher(o: EventsPublisherOptions): EventsPublisher {
  const log = o.logger ?? defaultLogger;
  const exchange = o.exchange ?? 'integration.events';
  const consumer = `rabbitmq:${exchange}`;
  const holder = o.holder ?? randomUUID();
  const declaration = { exchange, type: 'topic', durable: true } as const;
  const connection = new Connection({ ...o.amqpOptions, url: o.amqpUrl, connectionName: `integration-service events ${exchange}` });
  // Without a listener an 'error' event would crash the process; the client reconnects by itself.
  connection.on('error', (err) => log.warn('rabbitmq connection error (events)', { error: (err as Error).message }));
  // A batch of events is published in one write, not one per event (src/net/coalesce-writes.ts).
  coalesceAmqpWrites(connection);
  const publisher: Publisher = connection.createPublisher({
    confirm: true,
    // One retry rides over a channel reset (the exchange is redeclared with the new channel).
    maxAttempts: 2,
    exchanges: [declaration],
  });
  const ready = connection.exchangeDeclare(declaration).catch((err: Error) => {
    log.warn('events exchange not declared yet; the publisher declares it on its first send', { exchange, error: err.message });
  });

  let published = 0;

  const send = (e: StoredEvent) => {
    const at = Date.parse(e.occurredAt);
    return publisher.send({
      exchange, routingKey: e.type, durable: true, contentType: 'application/json', type: e.type,
      messageId: e.id, timestamp: Math.floor(at / 1000), headers: { 'x-owner': e.customerId, 'x-pos': e.pos },
    }, { id: e.id, pos: e.pos, type: e.type, owner: e.customerId, at: e.occurredAt, occurredAt: e.occurredAt, ...(e.connectionId && { connectionId: e.connectionId }), data: e.data });
  };

  const follower = followEvents({
    sql: o.sql, consumer, holder, batch: o.batch ?? 500, leaseMs: o.leaseMs ?? 15_000, pollMs: o.pollMs ?? 200, logger: log,
    // Every confirm before the cursor advances; nothing advanced on a throw, so the batch goes again.
    handle: async (events) => {
      const out = events.filter((e) => publishedTypes.has(e.type));
      await Promise.all(out.map(send));
      published += out.length;
    },
    onFailure: (err) => log.warn('events not published yet; retrying', { exchange, error: err.message }),
    onHolding: (holding, pos) => {
      if (holding) log.info('events publisher holds the cursor', { exchange, pos });
      else log.info('events publisher lease held elsewhere or lost; standing by (the new holder repeats an unadvanced batch)', { exchange });
    },
  });

  let stopping: Promise<void> | undefined;
  return {
    ready,
    stats: () => ({ published, failed: follower.failures(), pos: follower.pos(), holding: follower.holding() }),
    caughtUp: () => follower.caughtUp(),
    stop: () => (stopping ??= (async () => {
      await follower.stop();
      await publisher.close();
      await connection.close();
    })()),
  };
}
