// The delivery facade the daemon wires up: outbox relay + RabbitMQ consumers when a broker URL is
// given, else the embedded Postgres consumer; one Pacer and one Processor either way.
import type postgres from 'postgres';
import { Connection, type ConnectionOptions } from 'rabbitmq-client';
import type { Logger } from 'winston';
import { coalesceAmqpWrites } from '../net/coalesce-writes.ts';
import { logger as defaultLogger } from '../observability/logger.ts';
import { metrics } from '../observability/metrics.ts';
import { queueStats, releaseParked } from '../store/messages.ts';
import { BrokerConsumer } from './consumer.ts';
import { Pacer } from './pacer.ts';
import { PgConsumer } from './pg-consumer.ts';
import { Processor, type Outcome, type ProcessorOptions } from './processor.ts';
import { Relay } from './relay.ts';
import { topology as makeTopology, type Topology } from './topology.ts';
import type { ShardOwnership } from '../supervisor/types.ts';
import { systemClock, type Clock, type MessageSender, type SendCapabilities } from './types.ts';

export interface DeliveryOptions {
  sql: postgres.Sql;
  /** amqp:// or amqps://; without it the outbox is consumed from Postgres (embedded mode) */
  amqpUrl?: string;
  /** extra rabbitmq-client options, e.g. tls { ca, cert, key, servername } */
  amqpOptions?: Omit<ConnectionOptions, 'url'>;
  shards: number;
  sender: MessageSender;
  /** Send capabilities of a platform kind (the adapters'), for connections whose actor is not running here. */
  capabilities: (platform: string, kind: string) => SendCapabilities | undefined;
  logger?: Logger;
  /** queue and exchange name prefix; tests use a unique one per run */
  prefix?: string;
  clock?: Clock;
  deliveryLimit?: number;
  /** per queue (broker) or in total (embedded) */
  concurrency?: number;
  pollMs?: number;
  holdMs?: number;
  requeueDelayMs?: number;
  /** stop() waits this long for in-flight sends before closing anyway: 10 s */
  stopTimeoutMs?: number;
  /** embedded mode: how long a claimed row stays invisible to other claimers (30 s) */
  claimLeaseMs?: number;
  /** integration_queue_depth / oldest age refresh: 5 s */
  sampleMs?: number;
  processor?: Pick<ProcessorOptions, 'leaseMs' | 'maxRetries' | 'backoff' | 'parkMs' | 'statusEvents'>;
  /** Media URLs: the egress guard and limits they are fetched with (without it, such messages fail). */
  media?: ProcessorOptions['media'];
  /**
   * Several daemons: this node's leases. Only their shards are published, consumed and sent here;
   * startShards/stopShards follow the leases.
   */
  cluster?: ShardOwnership & { heldShards(): number[] };
}

export interface DeliveryStats {
  mode: 'broker' | 'embedded';
  brokerConnected?: boolean;
  published: number;
  deadLetters: number;
  inFlight: number;
  outcomes: Record<Outcome, number>;
  pacer: { buckets: number; reservations: number };
}

export interface Delivery {
  /** runs the relay (or embedded consumer) now rather than at the next poll: call it after accepting messages */
  notify(): void;
  /**
   * The supervisor calls this when a connection becomes active: messages parked while it was not
   * are due at once (else they wait out their park delay, 30 s or the breaker's retryAfter).
   */
  resumeConnection(connectionId: string): Promise<number>;
  /** resolves once every consumer is attached (broker) or at once (embedded) */
  ready: Promise<void>;
  stats(): DeliveryStats;
  topology?: Topology;
  /** drains in-flight sends (bounded by stopTimeoutMs), then closes the broker connection */
  stop(): Promise<void>;
  /** Leases gained: their queues are consumed here. */
  startShards(shards: number[]): void;
  /** Leases lost: their consumers are cancelled (held messages back to the queue) before this resolves. */
  stopShards(shards: number[]): Promise<void>;
}

export function startDelivery(o: DeliveryOptions): Delivery {
  const log = o.logger ?? defaultLogger;
  const clock = o.clock ?? systemClock;
  const pacer = new Pacer({ clock, ...(o.holdMs !== undefined ? { holdMs: o.holdMs } : {}) });
  const processor = new Processor({
    sql: o.sql, sender: o.sender, capabilities: o.capabilities, pacer, clock, logger: log, ...o.processor, ...(o.media ? { media: o.media } : {}),
    ...(o.cluster ? { cluster: o.cluster } : {}),
  });
  const heldShards = o.cluster ? () => o.cluster!.heldShards() : undefined;
  const sampler = startSampler(o.sql, log, o.sampleMs ?? 5000);
  const stopTimeoutMs = o.stopTimeoutMs ?? 10_000;
  // Whoever accepts messages calls notify(); other processes' rows are found by the poll.
  let wake: () => void = () => undefined;
  const resumeConnection = async (connectionId: string) => {
    const n = await releaseParked(o.sql, connectionId);
    if (n > 0) wake();
    return n;
  };
  const bounded = async (what: string, p: Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), stopTimeoutMs)));
    const r = await Promise.race([p.then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (r === 'late') log.warn('delivery stop timed out; rows in flight are recovered at the next start', { what, stopTimeoutMs });
  };

  if (!o.amqpUrl) {
    const pg = new PgConsumer({
      sql: o.sql, processor, logger: log, clock,
      ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
      ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
      // A claim must outlive the longest pacing hold plus a send, else the row is claimed again
      // while still held here and the two claims keep invalidating each other's publish_seq.
      ...(o.claimLeaseMs !== undefined ? { leaseMs: Math.max(o.claimLeaseMs, (o.holdMs ?? 2500) + 5000) } : {}),
      ...(heldShards ? { shards: heldShards } : {}),
    });
    pg.start();
    wake = () => pg.notify();
    return {
      notify: () => pg.notify(),
      resumeConnection,
      ready: Promise.resolve(),
      stats: () => ({ mode: 'embedded', published: 0, deadLetters: 0, inFlight: processor.inFlight, outcomes: { ...processor.counts }, pacer: pacer.size() }),
      // Claims follow heldShards() at each poll; a claimed row of a lost shard is refused by its fence.
      startShards: () => pg.notify(),
      stopShards: async () => undefined,
      stop: once(async () => {
        sampler.stop();
        await bounded('embedded consumer', pg.stop());
      }),
    };
  }

  const connection = new Connection({ ...o.amqpOptions, url: o.amqpUrl, connectionName: `integration-service delivery ${o.prefix ?? 'integration'}` });
  // Without a listener an 'error' event would crash the process; the client reconnects by itself.
  connection.on('error', (err) => log.warn('rabbitmq connection error', { error: (err as Error).message }));
  // Publishes, acks and their frames of one loop turn in one write (src/net/coalesce-writes.ts).
  coalesceAmqpWrites(connection);
  const t = makeTopology({ prefix: o.prefix ?? 'integration', shards: o.shards, ...(o.deliveryLimit !== undefined ? { deliveryLimit: o.deliveryLimit } : {}) });
  const consumer = new BrokerConsumer({
    connection, topology: t, processor, logger: log, clock,
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
    ...(o.requeueDelayMs !== undefined ? { requeueDelayMs: o.requeueDelayMs } : {}),
    ...(heldShards ? { initialShards: heldShards() } : {}),
  });
  const relay = new Relay({
    sql: o.sql, connection, topology: t, logger: log, clock, ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
    ...(heldShards ? { shards: heldShards } : {}),
  });
  consumer.start();
  relay.start();
  wake = () => relay.notify();
  return {
    notify: () => relay.notify(),
    resumeConnection,
    ready: consumer.ready,
    topology: t,
    stats: () => ({
      mode: 'broker', brokerConnected: connection.ready, published: relay.published, deadLetters: consumer.deadLetters,
      inFlight: processor.inFlight, outcomes: { ...processor.counts }, pacer: pacer.size(),
    }),
    startShards: (shards) => {
      consumer.startShards(shards);
      relay.notify();
    },
    stopShards: (shards) => bounded('shard consumers', consumer.stopShards(shards)),
    stop: once(async () => {
      sampler.stop();
      await bounded('relay', relay.stop());
      await bounded('consumers', consumer.stop());
      await bounded('rabbitmq connection', connection.close());
    }),
  };
}

const once = (f: () => Promise<void>) => {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
};

// Queue depth and the age of the oldest unsent message, for integration_queue_depth{status} and
// integration_queue_oldest_age_seconds (the backlog alert): one indexed GROUP BY every 5 s.
function startSampler(sql: postgres.Sql, log: Logger, everyMs: number) {
  const sample = async () => {
    try {
      const s = await queueStats(sql);
      metrics.queueDepth.set({ status: 'queued' }, s.queued);
      metrics.queueDepth.set({ status: 'sending' }, s.sending);
      metrics.queueOldestAge.set(s.oldestCreatedAt ? Math.max(0, (Date.now() - s.oldestCreatedAt.getTime()) / 1000) : 0);
    } catch (err) {
      log.debug('queue sample failed', { error: (err as Error).message });
    }
  };
  const timer = setInterval(() => void sample(), everyMs);
  timer.unref();
  void sample();
  return { stop: () => clearInterval(timer) };
}
