// Two nodes' delivery over one RabbitMQ topology and one database: each consumes, publishes and sends
// only the messages of the shards it leases, and every message goes out exactly once.
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cluster } from '../../src/cluster/cluster.ts';
import { startDelivery, type Delivery } from '../../src/delivery/delivery.ts';
import { deleteTopology, topology } from '../../src/delivery/topology.ts';
import { acceptMessages } from '../../src/store/messages.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { quietLogger } from '../helpers/stack.ts';
import { makeConnection, RecordingSender, telegramCapabilities, waitFor } from '../delivery/fixtures.ts';

const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const shards = 4;
const prefix = `test-${randomUUID().slice(0, 8)}`;
let db: TestDatabase;
let admin: Connection;
const cleanups: (() => Promise<void>)[] = [];

test.before(async () => {
  db = await createTestDatabase({ max: 10 });
  admin = new Connection(amqpUrl);
  admin.on('error', () => undefined);
  await admin.onConnect(5000);
});

test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch((err) => console.error('cleanup', err));
  await deleteTopology(admin, topology({ prefix, shards, deliveryLimit: 3 })).catch(() => undefined);
  await admin.close();
  await db.drop();
});

async function node(id: string) {
  const cluster = new Cluster({ sql: db.sql, nodeId: id, shards, ttlMs: 4000, deadlineMs: 2400, renewMs: 200, logger: quietLogger(), listen: true });
  await cluster.start();
  const sender = new RecordingSender();
  const delivery: Delivery = startDelivery({
    sql: db.sql, amqpUrl, shards, sender, capabilities: telegramCapabilities(), prefix, pollMs: 50, requeueDelayMs: 20, deliveryLimit: 3, sampleMs: 60_000, cluster,
  });
  cluster.subscribe({ gained: (s) => delivery.startShards(s), lost: (s) => delivery.stopShards(s) });
  cleanups.push(async () => {
    await delivery.stop();
    await cluster.stop();
  });
  await delivery.ready;
  return { cluster, sender, delivery };
}

test('two nodes split the shards; each sends only its shards\' messages, every message once', async () => {
  const a = await node(`a-${randomUUID()}`);
  const b = await node(`b-${randomUUID()}`);
  await waitFor(() => a.cluster.heldShards().length === 2 && b.cluster.heldShards().length === 2, 20_000, 'an even split');

  const owner = `o-${randomUUID()}`;
  const conns = await Promise.all(Array.from({ length: 8 }, () => makeConnection(db.sql, owner, { shards })));
  const inputs = Array.from({ length: 160 }, (_, i) => ({ connectionId: conns[i % conns.length]!, chat: `chat-${i % 80}`, text: `m${i}` }));
  const accepted = await acceptMessages(db.sql, owner, inputs, { actor: owner });
  a.delivery.notify();
  b.delivery.notify();
  const ids = accepted.map((r) => r.message.id);
  await waitFor(async () => {
    const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where id = any(${db.sql.array(ids)}::uuid[]) and status = 'sent'`;
    return r!.n === ids.length;
  }, 30_000, 'every message sent');

  const shardOf = new Map((await db.sql<{ id: string; shard: number }[]>`select id, shard from connections where owner = ${owner}`).map((r) => [r.id, r.shard]));
  for (const [n, other] of [[a, b], [b, a]] as const) {
    const mine = new Set(n.cluster.heldShards());
    assert.ok(n.sender.calls.every((c) => mine.has(shardOf.get(c.msg.connectionId)!)), 'a node sends only messages of shards it holds');
    assert.ok(n.sender.calls.length > 0 && other.sender.calls.length > 0, 'both nodes sent');
  }
  const counts = new Map<string, number>();
  for (const c of [...a.sender.calls, ...b.sender.calls]) counts.set(c.msg.id, (counts.get(c.msg.id) ?? 0) + 1);
  assert.is(counts.size, ids.length, 'every message sent');
  assert.ok([...counts.values()].every((n) => n === 1), 'none sent twice');
});

test.run();
