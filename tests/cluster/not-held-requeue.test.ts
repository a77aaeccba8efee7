// A copy that reaches a node which does not hold its shard (ShardNotHeldError: the lease moved while
// the copy was on its way) goes back for the owner without counting as a delivery attempt. With a
// nack-requeue the quorum queue counted each bounce, and after x-delivery-limit of them the copy was
// dead-lettered (and the dead-letter revive rescheduled the row of an owner still sending it).
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BrokerConsumer } from '../../src/delivery/consumer.ts';
import { ShardNotHeldError, type Copy, type Processor } from '../../src/delivery/processor.ts';
import { seqHeader } from '../../src/delivery/relay.ts';
import { declarations, deleteTopology, routingKey, topology } from '../../src/delivery/topology.ts';
import { quietLogger } from '../helpers/stack.ts';
import { waitFor } from '../delivery/fixtures.ts';

const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const t = topology({ prefix: `test-${randomUUID().slice(0, 8)}`, shards: 1, deliveryLimit: 3 });
let conn: Connection;

test.before(async () => {
  conn = new Connection(amqpUrl);
  conn.on('error', () => undefined);
  await conn.onConnect(5000);
});

test.after(async () => {
  await deleteTopology(conn, t).catch(() => undefined);
  await conn.close();
});

test('bounces off a node that does not hold the shard do not count toward the delivery limit', async () => {
  // Twice the limit of bounces, then the owner's turn.
  let bounces = 6;
  const handled: Copy[] = [];
  const dead: string[] = [];
  const processor = {
    async process(copy: Copy) {
      if (bounces-- > 0) throw new ShardNotHeldError(0);
      handled.push(copy);
      return 'sent';
    },
    async deadLettered(id: string) {
      dead.push(id);
      return 'failed';
    },
  } as unknown as Processor;
  const consumer = new BrokerConsumer({ connection: conn, topology: t, processor, logger: quietLogger(), requeueDelayMs: 10, concurrency: 1 });
  const publisher = conn.createPublisher({ confirm: true, ...declarations(t) });
  try {
    consumer.start();
    await consumer.ready;
    const id = randomUUID();
    await publisher.send({
      exchange: t.exchange, routingKey: routingKey(0, 'normal'), durable: true, messageId: id, contentType: 'application/json', headers: { [seqHeader]: 7 },
    }, { id });
    await waitFor(() => handled.length > 0 || dead.length > 0, 15_000, 'the copy handled or dead-lettered');
    assert.equal(dead, [], 'not dead-lettered');
    assert.is(consumer.deadLetters, 0);
    assert.equal(handled, [{ id, seq: 7 }], 'the owner got the copy, with its publish sequence');
    assert.ok(bounces < 0, 'it did bounce past the limit first');
  } finally {
    await publisher.close();
    await consumer.stop();
  }
});

test.run();
