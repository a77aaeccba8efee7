// Republishes the live event bus on RabbitMQ for other services: a durable topic exchange
// (`integration.events`), routing key = event type (`message.received`, `message.status`,
// `connection.status`), persistent JSON messages `{ type, owner, at, data }` with publisher confirms.
// Consumers bind their own queues (`message.received`, `message.*`, `#`).
//
// Delivery is at most once across long outages: rabbitmq-client holds publishes while it reconnects,
// and up to maxPending events wait for their confirm; beyond that new events are dropped (counted and
// logged) rather than growing memory. The rows in Postgres stay the truth; events are notifications.
import { randomUUID } from 'node:crypto';
import { Connection, type ConnectionOptions, type Publisher } from 'rabbitmq-client';
import type { Logger } from 'winston';
import { bus, type LiveEvent } from '../events/bus.ts';
import { logger as defaultLogger } from '../observability/logger.ts';

export interface EventsPublisherOptions {
  /** amqp:// or amqps:// */
  amqpUrl: string;
  /** extra rabbitmq-client options, e.g. tls { ca, cert, key, servername } */
  amqpOptions?: Omit<ConnectionOptions, 'url'>;
  /** default integration.events */
  exchange?: string;
  /** events published but not yet confirmed; more are dropped. 10 000 (~10 s of a busy daemon) */
  maxPending?: number;
  /** stop() waits this long for outstanding confirms. 5 s */
  stopTimeoutMs?: number;
  logger?: Logger;
}

export interface EventsPublisherStats { published: number; failed: number; dropped: number; pending: number }

export interface EventsPublisher {
  /** settles once the exchange was declared (or the first attempt failed and was logged); never rejects */
  ready: Promise<void>;
  stats(): EventsPublisherStats;
  /** stops listening, waits for outstanding confirms (bounded), closes the connection */
  stop(): Promise<void>;
}

const published: ReadonlySet<LiveEvent['type']> = new Set(['message.received', 'message.status', 'connection.status']);

export function startEventsPublisher(o: EventsPublisherOptions): EventsPublisher {
  const log = o.logger ?? defaultLogger;
  const exchange = o.exchange ?? 'integration.events';
  const maxPending = o.maxPending ?? 10_000;
  const declaration = { exchange, type: 'topic', durable: true } as const;
  const connection = new Connection({ ...o.amqpOptions, url: o.amqpUrl, connectionName: `integration-service events ${exchange}` });
  // Without a listener an 'error' event would crash the process; the client reconnects by itself.
  connection.on('error', (err) => log.warn('rabbitmq connection error (events)', { error: (err as Error).message }));
  const publisher: Publisher = connection.createPublisher({
    confirm: true,
    // One retry rides over a channel reset (the exchange is redeclared with the new channel).
    maxAttempts: 2,
    exchanges: [declaration],
  });
  const ready = connection.exchangeDeclare(declaration).catch((err: Error) => {
    log.warn('events exchange not declared yet; the publisher declares it on its first send', { exchange, error: err.message });
  });

  const counts = { published: 0, failed: 0, dropped: 0 };
  const inFlight = new Set<Promise<void>>();
  let dropping = false;

  const onEvent = (event: LiveEvent) => {
    if (!published.has(event.type)) return;
    if (inFlight.size >= maxPending) {
      counts.dropped += 1;
      // One line per overflow episode, not one per event.
      if (!dropping) log.warn('events publisher backlog full: dropping live events until the broker confirms again', { exchange, maxPending });
      dropping = true;
      return;
    }
    const at = Date.parse(event.at);
    const p = publisher.send({
      exchange, routingKey: event.type, durable: true, contentType: 'application/json', type: event.type,
      messageId: randomUUID(), ...(Number.isFinite(at) && { timestamp: Math.floor(at / 1000) }),
      headers: { 'x-owner': event.owner },
    }, { type: event.type, owner: event.owner, at: event.at, data: event.data }).then(() => {
      counts.published += 1;
      if (dropping && inFlight.size < maxPending / 2) {
        dropping = false;
        log.info('events publisher caught up', { exchange, dropped: counts.dropped });
      }
    }, (err: Error) => {
      counts.failed += 1;
      log.warn('live event not published', { exchange, type: event.type, error: err.message });
    }).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const unsubscribe = bus.subscribe(onEvent);

  let stopping: Promise<void> | undefined;
  return {
    ready,
    stats: () => ({ ...counts, pending: inFlight.size }),
    stop: () => (stopping ??= (async () => {
      unsubscribe();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), o.stopTimeoutMs ?? 5000)));
      const r = await Promise.race([Promise.allSettled([...inFlight]).then(() => 'done' as const), late]);
      clearTimeout(timer);
      if (r === 'late') log.warn('events publisher stopped with unconfirmed events', { exchange, pending: inFlight.size });
      await publisher.close();
      await connection.close();
    })()),
  };
}
