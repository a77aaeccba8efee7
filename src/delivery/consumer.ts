// RabbitMQ side of delivery: one consumer per message queue (shard × priority) feeding the shared
// Processor, and one on the dead-letter queue. A copy is acked only after its row holds the outcome
// (sent, failed, or rescheduled with published_at cleared so the relay publishes a fresh copy);
// until then a crash or a dropped connection makes the broker redeliver it. Rescheduling + ack
// rather than nack-requeue keeps flood waits and parked messages (minutes to hours) out of the
// broker's consumer timeout (30 min on 3.10) and out of the prefetch window.
import type { Connection, Consumer, AsyncMessage, Publisher } from 'rabbitmq-client';
import { setMaxListeners } from 'node:events';
import type { Logger } from 'winston';
import { metrics } from '../observability/metrics.ts';
import { extractContext, SpanKind, withSpan } from '../observability/tracing.ts';
import { ShardNotHeldError, type Processor } from './processor.ts';
import { seqHeader } from './relay.ts';
import type { Topology } from './topology.ts';
import { systemClock, type Clock } from './types.ts';

export interface BrokerConsumerOptions {
  connection: Connection;
  topology: Topology;
  processor: Processor;
  logger: Logger;
  clock?: Clock;
  /** messages handled at once per queue; held ones wait for their pacing slot (≤ holdMs) */
  concurrency?: number;
  /** pause before a failed handler lets the broker requeue: a database outage must not spin */
  requeueDelayMs?: number;
  /** Several daemons: only these shards' queues are consumed at start; the rest come with startShards. */
  initialShards?: number[];
}

export class BrokerConsumer {
  deadLetters = 0;
  private readonly consumers: Consumer[] = [];
  // Per shard: its queues' consumers and the signal its held messages wait on (lost → aborted).
  private readonly shards = new Map<number, { consumers: Consumer[]; abort: AbortController }>();
  private readonly clock: Clock;
  // Puts back copies of shards this node does not hold (handBack); made on first use.
  private handBackPublisher?: Publisher;
  private readyCount = 0;
  private readyResolve!: () => void;
  readonly ready: Promise<void>;

  constructor(private readonly o: BrokerConsumerOptions) {
    this.clock = o.clock ?? systemClock;
    this.ready = new Promise((r) => (this.readyResolve = r));
  }

  start(): void {
    const { connection, topology: t } = this.o;
    const initial = this.o.initialShards ?? Array.from({ length: t.shards }, (_, i) => i);
    this.readyTotal = initial.length * t.queues.length / t.shards + 1;
    this.startShards(initial);
    this.onReady(connection.createConsumer({
      queue: t.deadLetterQueue,
      queueOptions: t.deadLetterQueueOptions(),
      qos: { prefetchCount: 4 },
      concurrency: 4,
      requeue: true,
    }, (msg) => this.handleDead(msg)));
  }

  private readyTotal = 0;

  private onReady(c: Consumer): Consumer {
    let first = true;
    c.on('ready', () => {
      if (first && ++this.readyCount === this.readyTotal) this.readyResolve();
      first = false;
    });
    c.on('error', (err) => this.o.logger.warn('delivery consumer error', { queue: c.queue, error: (err as Error).message }));
    this.consumers.push(c);
    return c;
  }

  /** Consumes these shards' queues (leases gained). */
  startShards(shards: number[]): void {
    const { connection, topology: t } = this.o;
    // A held message keeps its slot for up to holdMs (2.5 s) while its chat's 1/s window passes.
    // Measured at 100,000/min (2 cores, one event loop): 16 per queue accepted every message and
    // drained the backlog at ≈ 45,000/min; 128 drained as fast as it accepted but took the event loop
    // from the HTTP accept path (7.5 % of requests timed out at the client). Under overload the
    // outbox, not the client, should hold the backlog: 16.
    const concurrency = this.o.concurrency ?? 16;
    for (const shard of shards) {
      if (this.shards.has(shard) || this.stopped) continue;
      const abort = withoutListenerLimit(new AbortController());
      const consumers = t.queues.filter((q) => q.shard === shard).map((q) => this.onReady(connection.createConsumer({
        queue: q.name,
        queueOptions: t.queueOptions(q.name),
        qos: { prefetchCount: concurrency },
        concurrency,
        requeue: true,
      }, (msg) => this.handle(msg, abort.signal, q.name))));
      this.shards.set(shard, { consumers, abort });
    }
  }

  /**
   * Stops consuming these shards' queues (leases lost): held messages give up their wait, in-flight
   * sends finish, and unacked copies go back to the queue for the next owner.
   */
  async stopShards(shards: number[]): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const shard of shards) {
      const s = this.shards.get(shard);
      if (!s) continue;
      this.shards.delete(shard);
      s.abort.abort();
      for (const c of s.consumers) {
        this.consumers.splice(this.consumers.indexOf(c), 1);
        closing.push(c.close());
      }
    }
    await Promise.all(closing);
  }

  private stopped = false;

  /** Held messages give up their wait and are rescheduled; in-flight sends finish (bounded by the caller). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.shards.values()) s.abort.abort();
    await Promise.all(this.consumers.map((c) => c.close()));
    await this.handBackPublisher?.close();
  }

  private async handle(msg: AsyncMessage, signal: AbortSignal, queue: string): Promise<void> {
    const id = idOf(msg);
    try {
      // A body without an id can never succeed: thrown like any failure, so the delivery limit
      // moves it to the dead-letter queue instead of it being acked away unseen.
      if (!id) throw new Error('malformed delivery: body has no message id');
      const seq = msg.headers?.[seqHeader];
      // Pacing, the supervisor's send and the platform call run inside this span of the publisher's trace.
      await withSpan('delivery process', { 'messaging.system': 'rabbitmq', 'messaging.message.id': id }, () =>
        this.o.processor.process({ id, ...(typeof seq === 'number' ? { seq } : {}) }, signal),
      { kind: SpanKind.CONSUMER, parent: extractContext(msg.headers) });
    } catch (err) {
      if (err instanceof ShardNotHeldError) {
        // Arrived after the lease was lost (or before the consumer was cancelled): back to the queue for the owner.
        if (!signal.aborted) await this.clock.sleep(this.o.requeueDelayMs ?? 1000);
        if (await this.handBack(msg, queue)) return;
        throw err;
      }
      this.o.logger.warn('delivery attempt failed; the broker will redeliver', {
        messageId: id, deliveryCount: msg.headers?.['x-delivery-count'], error: (err as Error).message,
      });
      await this.clock.sleep(this.o.requeueDelayMs ?? 1000);
      throw err;
    }
  }

  /**
   * A copy of a shard this node does not hold is no delivery attempt. A nack-requeue would count as
   * one (a quorum queue raises x-delivery-count on every requeue, RabbitMQ 3.10): under churn, copies
   * bounced between nodes while shards moved reached the delivery limit and were dead-lettered, and the
   * dead-letter revive then rescheduled rows of an owner still sending them. Instead a fresh copy
   * (count 0) goes to the same queue, confirmed, and this one is acked. False when the publish
   * failed: the caller requeues as before.
   */
  private async handBack(msg: AsyncMessage, queue: string): Promise<boolean> {
    this.handBackPublisher ??= this.o.connection.createPublisher({ confirm: true, maxAttempts: 2 });
    const headers = { ...msg.headers };
    for (const k of ['x-delivery-count', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason']) delete headers[k];
    try {
      await this.handBackPublisher.send({
        exchange: '', routingKey: queue, durable: true, headers,
        ...(msg.messageId ? { messageId: msg.messageId } : {}), ...(msg.contentType ? { contentType: msg.contentType } : {}),
      }, msg.body);
      return true;
    } catch (err) {
      this.o.logger.warn('a copy for another node could not be put back; requeued instead', { queue, error: (err as Error).message });
      return false;
    }
  }

  private async handleDead(msg: AsyncMessage): Promise<void> {
    if (!msg.redelivered) {
      this.deadLetters++;
      metrics.deadLetters.inc();
    }
    const id = idOf(msg);
    const death = (msg.headers?.['x-death'] as { reason?: string; count?: number }[] | undefined)?.[0];
    this.o.logger.error('message dead-lettered', { messageId: id, reason: death?.reason ?? msg.headers?.['x-first-death-reason'] });
    if (!id) return;
    try {
      await this.o.processor.deadLettered(id);
    } catch (err) {
      // The dead-letter queue has no delivery limit: the copy stays until the row is updated.
      await this.clock.sleep(this.o.requeueDelayMs ?? 1000);
      throw err;
    }
  }
}

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function idOf(msg: AsyncMessage): string | undefined {
  const id = (msg.body as { id?: unknown } | null)?.id;
  return typeof id === 'string' && uuidRe.test(id) ? id : undefined;
}

function withoutListenerLimit(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}
