import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Connection, type AsyncMessage, type Channel } from 'rabbitmq-client';
import { startEventsPublisher, type EventsPublisher } from '../../src/delivery/events-publisher.ts';
import { bus, type LiveEvent } from '../../src/events/bus.ts';
import { captureLogger } from '../api/shell-server.ts';
import { until } from '../helpers/stack.ts';

// Against the real RabbitMQ: a unique exchange per run, deleted at the end.
const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = `test.events.${randomBytes(4).toString('hex')}`;

let admin: Connection;
let ch: Channel;
let pub: EventsPublisher;
const capture = captureLogger();

test.before(async () => {
  admin = new Connection(amqpUrl);
  ch = await admin.acquire();
  pub = startEventsPublisher({ amqpUrl, exchange, logger: capture.logger });
  await pub.ready;
});

test.after(async () => {
  await pub.stop();
  await ch.exchangeDelete({ exchange });
  await ch.close();
  await admin.close();
});

/** A server-named exclusive queue bound with `pattern`; `next(n)` resolves with the next n messages. */
async function bound(pattern: string) {
  const { queue } = await ch.queueDeclare({ exclusive: true, autoDelete: true });
  await ch.queueBind({ queue, exchange, routingKey: pattern });
  const got: AsyncMessage[] = [];
  let wake: (() => void) | undefined;
  await ch.basicConsume({ queue, noAck: true }, (msg) => {
    got.push(msg);
    wake?.();
  });
  return {
    got,
    async next(n: number): Promise<AsyncMessage[]> {
      while (got.length < n) await new Promise<void>((r) => (wake = r));
      return got.splice(0, n);
    },
  };
}

const event = (type: LiveEvent['type'], data: unknown): LiveEvent => ({ type, owner: `u-${randomUUID()}`, at: new Date().toISOString(), data });

test('the exchange is a durable topic exchange (a matching redeclare succeeds, another type fails)', async () => {
  await ch.exchangeDeclare({ exchange, type: 'topic', durable: true });
  const probe = await admin.acquire();
  try {
    await probe.exchangeDeclare({ exchange, type: 'fanout', durable: true });
    assert.unreachable('redeclared with another type');
  } catch (err) {
    assert.match(String((err as Error).message), /PRECONDITION_FAILED|inequivalent/i);
  } finally {
    await probe.close().catch(() => undefined);
  }
});

test('a bound queue receives message.received from the bus: persistent JSON, routing key = type, owner kept', async () => {
  const q = await bound('message.received');
  const e = event('message.received', { connectionId: randomUUID(), chat: '-1001', from: '@bob', text: '<b>hi</b>', platformMessageId: '9', date: new Date(0).toISOString() });
  bus.publish(e);
  const [msg] = await q.next(1);
  assert.is(msg!.routingKey, 'message.received');
  assert.is(msg!.exchange, exchange);
  assert.is(msg!.durable, true);
  assert.is(msg!.contentType, 'application/json');
  assert.is(msg!.headers?.['x-owner'], e.owner);
  assert.ok(msg!.messageId);
  assert.equal(msg!.body, { type: e.type, owner: e.owner, at: e.at, data: e.data });
});

test('connection.status and message.status are published too, each under its own key', async () => {
  const all = await bound('#');
  const status = await bound('message.status');
  const events = [event('connection.status', { id: randomUUID(), status: 'active' }), event('message.status', { id: randomUUID(), status: 'sent' }), event('message.received', { text: 'x' })];
  for (const e of events) bus.publish(e);
  const got = await all.next(3);
  assert.equal(got.map((m) => m.routingKey), ['connection.status', 'message.status', 'message.received']);
  const [only] = await status.next(1);
  assert.equal((only!.body as LiveEvent).data, events[1]!.data);
  // The broker can route a message to the queue before its confirm reaches the publisher:
  // the counters are read once nothing is pending.
  await until(() => pub.stats().pending === 0, 'the publisher\'s confirms', 5000);
  const s = pub.stats();
  assert.is(s.pending, 0);
  assert.is(s.failed, 0);
  assert.is(s.dropped, 0);
  assert.ok(s.published >= 4);
});

test('a publisher with a full backlog drops instead of growing, and says so once', async () => {
  const tiny = startEventsPublisher({ amqpUrl, exchange, logger: capture.logger, maxPending: 2 });
  try {
    await tiny.ready;
    const before = capture.lines.length;
    // Ten synchronous events: the first two wait for their confirms, the rest do not fit.
    for (let i = 0; i < 10; i++) bus.publish(event('message.status', { i }));
    assert.is(tiny.stats().dropped, 8);
    const warned = capture.entries().slice(before).filter((e) => /backlog full/.test(e.message));
    assert.is(warned.length, 1);
  } finally {
    await tiny.stop();
  }
  assert.is(tiny.stats().pending, 0);
});

test('stop() stops listening and closes its connection', async () => {
  const other = startEventsPublisher({ amqpUrl, exchange, logger: capture.logger });
  await other.ready;
  const listeners = bus.listenerCount('event');
  await other.stop();
  assert.is(bus.listenerCount('event'), listeners - 1);
  bus.publish(event('message.status', {}));
  assert.is(other.stats().pending, 0);
});

test.run();
