// RabbitMQ topology for outgoing messages: a direct exchange, one quorum queue per shard per
// priority (RabbitMQ 3.10 quorum queues refuse x-max-priority), a fanout dead-letter exchange and
// one dead-letter queue. Publisher and consumers declare exactly the same arguments: a consumer that
// redeclares a quorum queue with other (or no) arguments fails with PRECONDITION_FAILED.
import type { Connection } from 'rabbitmq-client';
import type { Priority } from './types.ts';

export { shardOf } from '../shard.ts';

export const priorities: readonly Priority[] = ['high', 'normal', 'low'];

export interface QueueSpec { name: string; shard: number; priority: Priority; routingKey: string }

export interface Topology {
  exchange: string;
  deadLetterExchange: string;
  deadLetterQueue: string;
  shards: number;
  queues: QueueSpec[];
  /** the exact declare arguments of a message queue; pass them wherever the queue is named */
  queueOptions(name: string): QueueDeclare;
  deadLetterQueueOptions(): QueueDeclare;
}

export interface QueueDeclare {
  queue: string;
  durable: true;
  arguments: Record<string, string | number>;
}

export const routingKey = (shard: number, priority: Priority) => `s${shard}.${priority}`;

/**
 * deliveryLimit: deliveries (first + redeliveries after a nack or a dropped channel) before the
 * broker dead-letters a copy. 10 covers a few broker reconnects without dead-lettering healthy work.
 */
export function topology(o: { prefix: string; shards: number; deliveryLimit?: number }): Topology {
  const exchange = `${o.prefix}.messages`;
  const deadLetterExchange = `${o.prefix}.messages.dlx`;
  const deadLetterQueue = `${o.prefix}.messages.dead`;
  const queues: QueueSpec[] = [];
  for (let shard = 0; shard < o.shards; shard++) {
    for (const priority of priorities) {
      queues.push({ name: `${o.prefix}.messages.s${shard}.${priority}`, shard, priority, routingKey: routingKey(shard, priority) });
    }
  }
  const args = {
    'x-queue-type': 'quorum',
    'x-delivery-limit': o.deliveryLimit ?? 10,
    'x-dead-letter-exchange': deadLetterExchange,
    // at-least-once dead-lettering: the DLX copy is confirmed before the source drops it; RabbitMQ
    // only allows it together with reject-publish overflow.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
  return {
    exchange, deadLetterExchange, deadLetterQueue, shards: o.shards, queues,
    queueOptions: (name) => ({ queue: name, durable: true, arguments: { ...args } }),
    deadLetterQueueOptions: () => ({ queue: deadLetterQueue, durable: true, arguments: { 'x-queue-type': 'quorum' } }),
  };
}

/** Everything to declare before publishing (rabbitmq-client redeclares it after every reconnect). */
export function declarations(t: Topology) {
  return {
    exchanges: [
      { exchange: t.exchange, type: 'direct', durable: true },
      { exchange: t.deadLetterExchange, type: 'fanout', durable: true },
    ],
    queues: [...t.queues.map((q) => t.queueOptions(q.name)), t.deadLetterQueueOptions()],
    queueBindings: [
      ...t.queues.map((q) => ({ exchange: t.exchange, queue: q.name, routingKey: q.routingKey })),
      { exchange: t.deadLetterExchange, queue: t.deadLetterQueue, routingKey: '' },
    ],
  };
}

/** Tests and decommissioning only: deletes every queue and exchange of this prefix. */
export async function deleteTopology(conn: Connection, t: Topology): Promise<void> {
  for (const q of [...t.queues.map((x) => x.name), t.deadLetterQueue]) await conn.queueDelete({ queue: q });
  for (const e of [t.exchange, t.deadLetterExchange]) await conn.exchangeDelete({ exchange: e });
}
