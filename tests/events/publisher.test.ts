// The integration.events exchange is at least once: every stored event reaches a bound queue, across
// a publisher restart, with one publisher at a time holding the cursor. Real RabbitMQ and Postgres;
// a unique exchange per run, deleted at the end.
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Connection, type AsyncMessage, type Channel } from 'rabbitmq-client';
import { startEventsPublisher } from '../../src/delivery/events-publisher.ts';
import { appendEvent, appendEvents, eventsCommitted, readAllEvents, type StoredEvent } from '../../src/store/events.ts';
import { captureLogger } from '../api/shell-server.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/stack.ts';

const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const capture = captureLogger();
let admin: Connection;
let ch: Channel;
let db: TestDatabase;
const exchanges: string[] = [];

test.before(async () => {
  db = await createTestDatabase();
  admin = new Connection(amqpUrl);
  ch = await admin.acquire();
});
test.after(async () => {
  for (const exchange of exchanges) await ch.exchangeDelete({ exchange }).catch(() => undefined);
  await ch.close();
  await admin.close();
  await db.drop();
});

const newExchange = () => {
  const e = `test.events.${randomBytes(4).toString('hex')}`;
  exchanges.push(e);
  return e;
};

async function bound(exchange: string, pattern = '#') {
  await ch.exchangeDeclare({ exchange, type: 'topic', durable: true });
  const { queue } = await ch.queueDeclare({ exclusive: true, autoDelete: true });
  await ch.queueBind({ queue, exchange, routingKey: pattern });
  const got: AsyncMessage[] = [];
  await ch.basicConsume({ queue, noAck: true }, (msg) => { got.push(msg); });
  return got;
}

const publisher = (exchange: string, holder: string, leaseMs = 15_000) =>
  startEventsPublisher({ sql: db.sql, amqpUrl, exchange, holder, leaseMs, pollMs: 50, batch: 20, logger: capture.logger });

test('every stored event is published with its envelope, routing key = type, messageId = event id', async () => {
  const exchange = newExchange();
  const got = await bound(exchange, 'message.*');
  const owner = `o-${randomUUID()}`;
  const conn = randomUUID();
  const pub = publisher(exchange, 'h1');
  try {
    await pub.ready;
    const e = await appendEvent(db.sql, { customerId: owner, type: 'message.received', connectionId: conn, data: { text: 'hi' } });
    await appendEvent(db.sql, { customerId: owner, type: 'connection.status', connectionId: conn, data: {} });
    eventsCommitted();
    await until(() => got.some((m) => m.messageId === e.id), 'published');
    await pub.caughtUp();
    const m = got.find((x) => x.messageId === e.id)!;
    assert.is(m.routingKey, 'message.received');
    assert.is(m.headers?.['x-owner'], owner);
    assert.equal(m.body, { id: e.id, pos: e.pos, type: 'message.received', owner, at: e.occurredAt, occurredAt: e.occurredAt, connectionId: conn, data: { text: 'hi' } });
    assert.not.ok(got.some((x) => x.routingKey === 'connection.status'), 'the binding filters by type');
  } finally {
    await pub.stop();
  }
});

test('at least once across a publisher restart: events stored while none runs are published by the next; nothing skipped', async () => {
  const exchange = newExchange();
  const got = await bound(exchange);
  const owner = `o-${randomUUID()}`;
  const batch = (n: number, tag: string) => appendEvents(db.sql, Array.from({ length: n }, (_, i) => ({ customerId: owner, type: 'message.status' as const, data: { tag, i } })));
  // Events from before this test were never published to this exchange: the cursor starts at 0,
  // so the first publisher publishes them too; only this owner's are counted.
  const mine = () => got.filter((m) => m.headers?.['x-owner'] === owner).map((m) => m.messageId);
  const written: StoredEvent[] = [];
  const first = publisher(exchange, 'h1');
  written.push(...await batch(50, 'first'));
  eventsCommitted();
  await first.caughtUp();
  await first.stop();
  written.push(...await batch(70, 'while down'));
  const second = publisher(exchange, 'h2');
  try {
    await second.caughtUp();
    written.push(...await batch(30, 'after'));
    eventsCommitted();
    await second.caughtUp();
    await until(() => new Set(mine()).size >= written.length, 'all published');
    assert.equal([...new Set(mine())], written.map((e) => e.id), 'every event, in pos order');
    const [cursor] = await db.sql<{ pos: string }[]>`select pos from event_cursors where consumer = ${`rabbitmq:${exchange}`}`;
    const all = await readAllEvents(db.sql, 0, 100_000);
    assert.is(Number(cursor!.pos), all.at(-1)!.pos);
  } finally {
    await second.stop();
  }
});

test('a crash between confirm and advance repeats the batch (same messageId), never loses it; one holder at a time', async () => {
  const exchange = newExchange();
  const got = await bound(exchange);
  const owner = `o-${randomUUID()}`;
  const consumer = `rabbitmq:${exchange}`;
  const a = publisher(exchange, 'crashing', 60_000);
  await a.caughtUp();
  // Hold the lease as 'crashing' and roll the cursor back: as if it had published and died before advancing.
  const events = await appendEvents(db.sql, Array.from({ length: 10 }, (_, i) => ({ customerId: owner, type: 'message.status' as const, data: { i } })));
  eventsCommitted();
  await a.caughtUp();
  const mine = () => got.filter((m) => m.headers?.['x-owner'] === owner).map((m) => m.messageId);
  await until(() => mine().length >= 10, 'first publish');
  // A second publisher waits while the lease is held.
  const b = publisher(exchange, 'standby', 60_000);
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.is(b.stats().holding, false, 'only one publisher at a time');
    // 'crashing' dies without releasing its lease; the lease runs out; the cursor never advanced past events[4].
    // The row is rewritten before a.stop(): stopped first, 'crashing' released the lease and the standby
    // (polling every 50 ms) could claim it at the end position before the rewrite, then hold it without
    // reading the row again for a third of the lease (failed once in CI under load).
    await db.sql`update event_cursors set holder = 'dead', lease_until = now() - interval '1 second', pos = ${events[4]!.pos} where consumer = ${consumer}`;
    await a.stop(); // its release names 'crashing': the row is no longer its own, nothing changes
    await until(() => b.stats().holding, 'standby takes over');
    await b.caughtUp();
    await until(() => mine().length >= 15, 'repeated after takeover');
    const ids = mine();
    assert.equal([...new Set(ids)], events.map((e) => e.id), 'nothing lost');
    assert.equal(ids.slice(10), events.slice(5).map((e) => e.id), 'the unadvanced part repeated, same ids');
  } finally {
    await b.stop();
  }
});

test.run();
