// Outbox → relay → RabbitMQ (real broker, quorum queues) → consumer → sender, against real Postgres.
// Every run uses its own queue/exchange prefix and deletes them at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { AppError } from '../../src/errors.ts';
import { startDelivery, type Delivery, type DeliveryOptions } from '../../src/delivery/delivery.ts';
import { deleteTopology, routingKey, topology } from '../../src/delivery/topology.ts';
import { tgError } from '../../src/platforms/telegram/codes.ts';
import { acceptMessages, getMessage, type MessageInput } from '../../src/store/messages.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeConnection, RecordingSender, telegramCapabilities, waitFor } from './fixtures.ts';

const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const shards = 2;
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
  await admin.close();
  await db.drop();
});

async function start(o: Partial<DeliveryOptions> = {}) {
  const capabilities = o.capabilities ?? telegramCapabilities();
  const sender = new RecordingSender(capabilities);
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  const delivery = startDelivery({
    sql: db.sql, amqpUrl, shards, sender, capabilities, prefix, pollMs: 50, requeueDelayMs: 20, deliveryLimit: 3, sampleMs: 60_000,
    processor: { backoff: { baseMs: 100, capMs: 400 }, parkMs: 300, maxRetries: 3 },
    ...o,
  });
  const t = topology({ prefix, shards, deliveryLimit: o.deliveryLimit ?? 3 });
  cleanups.push(async () => {
    await delivery.stop();
    await deleteTopology(admin, t);
  });
  await delivery.ready;
  return { sender, delivery, prefix, t };
}

const owner = () => `o-${randomUUID()}`;
const accept = async (d: Delivery, o: string, inputs: MessageInput[]) => {
  const r = await acceptMessages(db.sql, o, inputs, { actor: o });
  d.notify();
  return r.map((x) => x.message.id);
};
const statuses = async (ids: string[]) =>
  db.sql<{ id: string; status: string; attempts: number; error: { code: string } | null }[]>`
    select id, status, attempts, error from messages where id = any(${db.sql.array(ids)}::uuid[])`;
const allFinal = (ids: string[]) => async () => (await statuses(ids)).every((r) => r.status === 'sent' || r.status === 'failed');

let main: Awaited<ReturnType<typeof start>>;

test('every message is delivered exactly once through RabbitMQ', async () => {
  main = await start();
  const o = owner();
  const conns = [await makeConnection(db.sql, o, { shards }), await makeConnection(db.sql, o, { shards })];
  const inputs = Array.from({ length: 200 }, (_, i) => ({ connectionId: conns[i % 2]!, chat: `chat-${i % 100}`, text: `m${i}` }));
  const ids = await accept(main.delivery, o, inputs);
  await waitFor(allFinal(ids), 30_000, '200 messages final');
  const rows = await statuses(ids);
  assert.ok(rows.every((r) => r.status === 'sent' && r.attempts === 1));
  const counts = main.sender.countById();
  assert.ok(ids.every((id) => counts.get(id) === 1), 'sender saw each id once');
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where id = any(${db.sql.array(ids)}::uuid[]) and published_at is not null`;
  assert.is(n, 200);
});

test('a duplicate broker copy (relay crashed before marking) does not send twice', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  const [id] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'dup', text: 'once' }]);
  const [row] = await db.sql<{ shard: number }[]>`select shard from messages where id = ${id!}`;
  const pub = admin.createPublisher({ confirm: true });
  for (let i = 0; i < 3; i++) {
    await pub.send({ exchange: main.t.exchange, routingKey: routingKey(row!.shard, 'normal'), contentType: 'application/json', headers: { 'x-publish-seq': 0 } }, { id });
  }
  await pub.close();
  await waitFor(allFinal([id!]), 10_000);
  await new Promise((r) => setTimeout(r, 300)); // let the extra copies arrive and be acked
  assert.is(main.sender.countById().get(id!), 1);
});

test('RabbitMQ connection forcibly closed mid-run: nothing lost, nothing sent twice', async () => {
  const o = owner();
  const conns = [await makeConnection(db.sql, o, { shards }), await makeConnection(db.sql, o, { shards })];
  const before = main.sender.calls.length;
  main.sender.behaviour = async (msg) => {
    await new Promise((r) => setTimeout(r, 5));
    return { platformMessageId: `p-${msg.id.slice(0, 8)}` };
  };
  const inputs = Array.from({ length: 300 }, (_, i) => ({ connectionId: conns[i % 2]!, chat: `drop-${i % 150}`, text: `d${i}` }));
  const ids = await accept(main.delivery, o, inputs);
  await waitFor(() => main.sender.calls.length - before >= 60, 20_000, '60 sends');
  const list = execFileSync('rabbitmqctl', ['list_connections', 'pid', 'client_properties', '-q'], { encoding: 'utf8' });
  const pids = list.split('\n').filter((l) => l.includes(`integration-service delivery ${main.prefix}`)).map((l) => l.split('\t')[0]!);
  assert.is(pids.length, 1, 'found our broker connection');
  execFileSync('rabbitmqctl', ['close_connection', pids[0]!, 'delivery test: forced close'], { stdio: 'ignore' });
  await waitFor(allFinal(ids), 60_000, '300 messages final after the drop');
  const rows = await statuses(ids);
  assert.is(rows.filter((r) => r.status === 'sent').length, 300, '0 lost');
  const counts = main.sender.countById();
  const doubled = ids.filter((id) => counts.get(id) !== 1);
  assert.equal(doubled, [], 'sender saw each id exactly once');
  main.sender.behaviour = (msg) => ({ platformMessageId: `p-${msg.id.slice(0, 8)}` });
});

test('flood wait delays that chat, another chat keeps flowing', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  main.sender.behaviour = (msg, call) =>
    msg.text === 'flooded' && call === 1 ? new AppError('TG_API_429', 'flood', { retryAfter: 2 }) : { platformMessageId: 'ok' };
  const [flooded] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'A', text: 'flooded' }]);
  await waitFor(() => main.sender.calls.some((c) => c.msg.id === flooded), 5000);
  const floodAt = Date.now();
  const m = await getMessage(db.sql, o, flooded!);
  await waitFor(async () => (await getMessage(db.sql, o, flooded!))!.error?.code === 'TG_API_429', 5000, 'flood recorded');
  const [other] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'B', text: 'other chat' }]);
  await waitFor(allFinal([other!]), 3000, 'other chat sent during the flood wait');
  assert.ok(Date.now() - floodAt < 2000, 'other chat did not wait for the flood wait');
  await waitFor(allFinal([flooded!]), 10_000, 'flooded message sent after the wait');
  const calls = main.sender.calls.filter((c) => c.msg.id === flooded);
  assert.is(calls.length, 2);
  assert.ok(calls[1]!.at - calls[0]!.at >= 2000, `waited ${calls[1]!.at - calls[0]!.at} ms`);
  const final = (await getMessage(db.sql, o, flooded!))!;
  assert.is(final.status, 'sent');
  assert.is(final.attempts, 2);
  assert.is(final.error, null);
  assert.ok(m);
});

test('connection-wide flood wait holds the other chats of that connection', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  main.sender.behaviour = (msg, call) =>
    msg.text === 'wide' && call === 1 ? tgError('TG_API_429', 'flood wait for the whole connection', { retryAfter: 1, scope: 'connection' }) : { platformMessageId: 'ok' };
  const [wide] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'W1', text: 'wide' }]);
  await waitFor(() => main.sender.calls.some((c) => c.msg.id === wide), 5000);
  const [next] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'W2', text: 'next' }]);
  await waitFor(allFinal([wide!, next!]), 10_000);
  const wideCall = main.sender.calls.find((c) => c.msg.id === wide)!;
  const nextCall = main.sender.calls.find((c) => c.msg.id === next)!;
  assert.ok(nextCall.at - wideCall.at >= 1000, `other chat of the same connection waited ${nextCall.at - wideCall.at} ms after the flood wait`);
});

test('permanent error → failed with its code at once; transient → retried; retry limit → failed', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  main.sender.behaviour = (msg, call) => {
    if (msg.text === 'forbidden') return new AppError('TG_CHAT_WRITE_FORBIDDEN', 'cannot write');
    if (msg.text === 'flaky' && call < 3) return new AppError('TG_UNAVAILABLE', 'try again');
    if (msg.text === 'hopeless') return new Error('socket hang up https://api.telegram.org/bot123:SECRET/sendMessage');
    return { platformMessageId: 'ok' };
  };
  const [forbidden, flaky, hopeless] = await accept(main.delivery, o, [
    { connectionId: conn, chat: 'P1', text: 'forbidden' },
    { connectionId: conn, chat: 'P2', text: 'flaky' },
    { connectionId: conn, chat: 'P3', text: 'hopeless' },
  ]);
  await waitFor(allFinal([forbidden!, flaky!, hopeless!]), 15_000);
  const f = (await getMessage(db.sql, o, forbidden!))!;
  assert.is(f.status, 'failed');
  assert.is(f.error!.code, 'TG_CHAT_WRITE_FORBIDDEN');
  assert.is(main.sender.countById().get(forbidden!), 1);
  const k = (await getMessage(db.sql, o, flaky!))!;
  assert.is(k.status, 'sent');
  assert.is(k.attempts, 3);
  const h = (await getMessage(db.sql, o, hopeless!))!;
  assert.is(h.status, 'failed');
  assert.is(h.error!.code, 'INTERNAL');
  assert.not.match(JSON.stringify(h.error), /SECRET/, 'no token from an error message reaches the row');
  assert.is(main.sender.countById().get(hopeless!), 4, 'first try + maxRetries (3)');
});

test('connection not active → parked and sent once it is back, never dropped', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  let open = true;
  main.sender.behaviour = (msg) =>
    msg.connectionId === conn && open ? new AppError('CIRCUIT_OPEN', 'breaker open') : { platformMessageId: 'ok' };
  const [id] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'park', text: 'wait for me' }]);
  // Parked (queued with the breaker's code) after more than one try: retried, not dropped.
  await waitFor(async () => {
    const m = (await getMessage(db.sql, o, id!))!;
    return (main.sender.countById().get(id!) ?? 0) >= 2 && m.status === 'queued' && m.error?.code === 'CIRCUIT_OPEN';
  }, 5000, 'parked and retried');
  open = false;
  await waitFor(allFinal([id!]), 5000);
  assert.is((await getMessage(db.sql, o, id!))!.status, 'sent');
});

test('bot message found in `sending` after a crash is failed, not resent; a user message is resent', async () => {
  const o = owner();
  const bot = await makeConnection(db.sql, o, { shards, kind: 'bot' });
  const user = await makeConnection(db.sql, o, { shards, kind: 'user' });
  main.sender.kinds.set(bot, 'bot');
  main.sender.behaviour = () => ({ platformMessageId: 'ok' });
  const ids: string[] = [];
  const pub = admin.createPublisher({ confirm: true });
  for (const c of [bot, user]) {
    const id = randomUUID();
    const [{ shard }] = await db.sql<{ shard: number }[]>`select shard from connections where id = ${c}`;
    // What a kill -9 between "mark sending" and "mark sent" leaves behind, plus the broker's redelivery.
    await db.sql`insert into messages (id, owner, connection_id, chat, text, status, attempts, shard, published_at, available_at)
                 values (${id}, ${o}, ${c}, 'crash', 'in doubt', 'sending', 1, ${shard}, now(), now() - interval '1 minute')`;
    await pub.send({ exchange: main.t.exchange, routingKey: routingKey(shard, 'normal'), contentType: 'application/json', headers: { 'x-publish-seq': 0 } }, { id });
    ids.push(id);
  }
  await pub.close();
  await waitFor(allFinal(ids), 5000);
  const b = (await getMessage(db.sql, o, ids[0]!))!;
  assert.is(b.status, 'failed');
  assert.is(b.error!.code, 'OUTCOME_UNKNOWN');
  assert.is(main.sender.countById().get(ids[0]!), undefined, 'bot message not resent');
  const u = (await getMessage(db.sql, o, ids[1]!))!;
  assert.is(u.status, 'sent');
  assert.is(u.attempts, 2);
});

test('a bot send with no answer (outcome unknown) is failed, not resent; a user message is retried', async () => {
  const o = owner();
  const bot = await makeConnection(db.sql, o, { shards, kind: 'bot' });
  const user = await makeConnection(db.sql, o, { shards, kind: 'user' });
  main.sender.kinds.set(bot, 'bot');
  main.sender.behaviour = (_msg, call) => call === 1
    ? tgError('TG_UNAVAILABLE', 'Bot API sendMessage timed out', { outcomeUnknown: true })
    : { platformMessageId: 'ok' };
  const ids = await accept(main.delivery, o, [{ connectionId: bot, chat: 'b', text: 'maybe posted' }, { connectionId: user, chat: 'u', text: 'deduped by random_id' }]);
  await waitFor(allFinal(ids), 10_000);
  const b = (await getMessage(db.sql, o, ids[0]!))!;
  assert.is(b.status, 'failed');
  assert.is(b.error!.code, 'OUTCOME_UNKNOWN');
  assert.match(b.error!.message, /^Bot API sendMessage timed out; delivery outcome unknown/);
  assert.is(main.sender.countById().get(ids[0]!), 1, 'bot message sent once');
  const u = (await getMessage(db.sql, o, ids[1]!))!;
  assert.is(u.status, 'sent');
  assert.is(main.sender.countById().get(ids[1]!), 2);
});

test('an unroutable publish is not marked published; it goes once the route exists', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  const [{ shard }] = await db.sql<{ shard: number }[]>`select shard from connections where id = ${conn}`;
  const q = main.t.queues.find((x) => x.shard === shard && x.priority === 'low')!;
  await admin.queueUnbind({ queue: q.name, exchange: main.t.exchange, routingKey: q.routingKey });
  const [id] = await accept(main.delivery, o, [{ connectionId: conn, chat: 'unroutable', text: 'x', priority: 'low' }]);
  await new Promise((r) => setTimeout(r, 400)); // several relay rounds
  const [row] = await db.sql<{ published_at: Date | null; status: string }[]>`select published_at, status from messages where id = ${id!}`;
  assert.is(row!.published_at, null);
  assert.is(row!.status, 'queued');
  await admin.queueBind({ queue: q.name, exchange: main.t.exchange, routingKey: q.routingKey });
  await waitFor(allFinal([id!]), 5000);
});

test('poison message goes to the dead-letter queue after the delivery limit', async () => {
  const pub = admin.createPublisher({ confirm: true });
  await pub.send({ exchange: main.t.exchange, routingKey: routingKey(0, 'normal'), contentType: 'application/json' }, { id: 'not-a-message' });
  await pub.close();
  await waitFor(() => main.delivery.stats().deadLetters >= 1, 10_000, 'dead letter');
  assert.is(main.delivery.stats().deadLetters, 1);
});

test('pacing in real time: 4 messages into one chat at ≤ 1/s', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  main.sender.behaviour = () => ({ platformMessageId: 'ok' });
  const ids = await accept(main.delivery, o, Array.from({ length: 4 }, (_, i) => ({ connectionId: conn, chat: 'paced', text: `p${i}` })));
  await waitFor(allFinal(ids), 10_000);
  const times = main.sender.calls.filter((c) => ids.includes(c.msg.id)).map((c) => c.at).sort((a, b) => a - b);
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 990, `gap ${times[i]! - times[i - 1]!} ms`);
  assert.ok(times.at(-1)! - times[0]! < 4500, 'no slot wasted');
});

test('priorities: in one chat, high overtakes normal and low', async () => {
  await main.delivery.stop(); // one delivery per database, else two pacers share the chat
  // 2/s: the first arrival goes at once, the others have ~0.5 s to arrive before the next slot.
  const { delivery, sender } = await start({ capabilities: telegramCapabilities({ chatPerSecond: 2 }), holdMs: 10_000 });
  const o = owner();
  const conn = await makeConnection(db.sql, o, { shards });
  const order = ['low', 'low', 'low', 'normal', 'normal', 'normal', 'high', 'high', 'high'] as const;
  const ids = await accept(delivery, o, order.map((p, i) => ({ connectionId: conn, chat: 'prio', text: `${p}${i}`, priority: p })));
  await waitFor(allFinal(ids), 10_000);
  const seen = sender.calls.map((c) => c.msg.priority);
  const rank = { high: 0, normal: 1, low: 2 };
  const rest = seen.slice(1); // the first one to arrive goes at once, whatever its priority
  for (let i = 1; i < rest.length; i++) assert.ok(rank[rest[i]!] >= rank[rest[i - 1]!], `order ${seen.join(',')}`);
});

test.run();
