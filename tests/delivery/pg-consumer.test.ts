// Embedded mode (no AMQP_URL): the outbox is consumed from Postgres with FOR UPDATE SKIP LOCKED,
// through the same Processor (pacing, status rows, retries) as the broker path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../src/errors.ts';
import { startDelivery, type DeliveryOptions } from '../../src/delivery/delivery.ts';
import { acceptMessages, claimDue, getMessage, type MessageInput } from '../../src/store/messages.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeConnection, RecordingSender, telegramCapabilities, waitFor } from './fixtures.ts';

let db: TestDatabase;
// Every delivery a test starts is stopped afterwards even when an assertion failed mid-test:
// a poll loop left running would keep the process alive until the runner kills it.
const running: { stop(): Promise<void> }[] = [];
test.before.each(async () => { db = await createTestDatabase({ max: 10 }); });
test.after.each(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop().catch(() => undefined)));
  await db.drop();
});

const start = (o: Partial<DeliveryOptions> = {}) => {
  const sender = new RecordingSender();
  const delivery = startDelivery({
    sql: db.sql, shards: 4, sender, capabilities: telegramCapabilities(), pollMs: 50, sampleMs: 60_000,
    processor: { backoff: { baseMs: 100, capMs: 400 }, parkMs: 300, maxRetries: 3 }, ...o,
  });
  running.push(delivery);
  return { sender, delivery };
};
const owner = () => `o-${randomUUID()}`;
const accept = async (o: string, inputs: MessageInput[]) => (await acceptMessages(db.sql, o, inputs, { actor: o })).map((r) => r.message.id);
const final = (ids: string[]) => async () => {
  const rows = await db.sql<{ status: string }[]>`select status from messages where id = any(${db.sql.array(ids)}::uuid[])`;
  return rows.every((r) => r.status === 'sent' || r.status === 'failed');
};

test('two embedded consumers on one database deliver every message exactly once', async () => {
  const a = start();
  const b = start();
  b.sender.calls.length = 0;
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  const ids = await accept(o, Array.from({ length: 150 }, (_, i) => ({ connectionId: conn, chat: `c${i % 75}`, text: `m${i}` })));
  a.delivery.notify();
  b.delivery.notify();
  await waitFor(final(ids), 30_000, 'all final');
  await Promise.all([a.delivery.stop(), b.delivery.stop()]);
  const counts = new Map<string, number>();
  for (const c of [...a.sender.calls, ...b.sender.calls]) counts.set(c.msg.id, (counts.get(c.msg.id) ?? 0) + 1);
  assert.ok(ids.every((id) => counts.get(id) === 1), 'each id sent once over both consumers');
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status = 'sent'`;
  assert.is(n, 150);
});

test('flood wait, permanent error and parking take the same path as with the broker', async () => {
  const { sender, delivery } = start();
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  let parked = true;
  sender.behaviour = (msg, call) => {
    if (msg.text === 'flood' && call === 1) return new AppError('TG_API_429', 'flood', { retryAfter: 1 });
    if (msg.text === 'forbidden') return new AppError('TG_CHAT_WRITE_FORBIDDEN', 'no');
    if (msg.text === 'park' && parked) return new AppError('CONNECTION_NOT_ACTIVE', 'reconnecting');
    return { platformMessageId: 'ok' };
  };
  const [flood, forbidden, park, other] = await accept(o, [
    { connectionId: conn, chat: 'A', text: 'flood' },
    { connectionId: conn, chat: 'B', text: 'forbidden' },
    { connectionId: conn, chat: 'C', text: 'park' },
    { connectionId: conn, chat: 'D', text: 'other' },
  ]);
  delivery.notify();
  await waitFor(final([forbidden!, other!]), 5000);
  assert.is((await getMessage(db.sql, o, forbidden!))!.error!.code, 'TG_CHAT_WRITE_FORBIDDEN');
  assert.is((await getMessage(db.sql, o, flood!))!.status, 'queued', 'flooded one still waiting while others went');
  await waitFor(final([flood!]), 5000);
  const calls = sender.calls.filter((c) => c.msg.id === flood);
  assert.ok(calls[1]!.at - calls[0]!.at >= 1000);
  await waitFor(() => (sender.countById().get(park!) ?? 0) >= 2, 5000, 'parked and tried again');
  // Parked means back to `queued` between tries (a try in flight shows `sending` for a moment).
  await waitFor(async () => (await getMessage(db.sql, o, park!))!.status === 'queued', 5000, 'parked message queued again');
  parked = false;
  await waitFor(final([park!]), 5000);
  assert.is((await getMessage(db.sql, o, park!))!.status, 'sent');
  await delivery.stop();
});

test('rows claimed by a process that died come back after the lease; `sending` rows are recovered', async () => {
  const o = owner();
  const user = await makeConnection(db.sql, o, { kind: 'user' });
  const bot = await makeConnection(db.sql, o, { kind: 'bot' });
  const [claimedByDead] = await accept(o, [{ connectionId: user, chat: 'x', text: 'claimed then crash' }]);
  assert.is((await claimDue(db.sql, { limit: 10, leaseMs: 500 })).length, 1); // the "dead" process
  const inDoubt: string[] = [];
  for (const c of [user, bot]) {
    const [id] = await accept(o, [{ connectionId: c, chat: 'y', text: 'in doubt' }]);
    await db.sql`update messages set status = 'sending', attempts = 1, available_at = now() - interval '1 second' where id = ${id!}`;
    inDoubt.push(id!);
  }
  const { sender, delivery } = start();
  sender.kinds.set(bot, 'bot');
  await waitFor(final(inDoubt), 5000);
  assert.is((await getMessage(db.sql, o, inDoubt[0]!))!.status, 'sent', 'user message resent (random_id dedupes)');
  const b = (await getMessage(db.sql, o, inDoubt[1]!))!;
  assert.is(b.status, 'failed', 'bot message in doubt is not resent');
  assert.is(sender.countById().get(inDoubt[1]!), undefined);
  assert.is((await getMessage(db.sql, o, claimedByDead!))!.status, 'queued', 'lease not yet over');
  await waitFor(final([claimedByDead!]), 5000);
  assert.is(sender.countById().get(claimedByDead!), 1);
  await delivery.stop();
});

test('stop() reschedules held messages instead of dropping them; the next start sends them', async () => {
  const first = start();
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  const ids = await accept(o, Array.from({ length: 5 }, (_, i) => ({ connectionId: conn, chat: 'one-chat', text: `s${i}` })));
  first.delivery.notify();
  await waitFor(() => first.sender.calls.length >= 1, 5000);
  await first.delivery.stop();
  const sentBefore = first.sender.calls.length;
  assert.ok(sentBefore < 5, 'the rest were waiting for their pacing slot');
  const rows = await db.sql<{ status: string }[]>`select status from messages where id = any(${db.sql.array(ids)}::uuid[]) and status <> 'sent'`;
  assert.ok(rows.every((r) => r.status === 'queued'));
  const second = start();
  await waitFor(final(ids), 10_000);
  await second.delivery.stop();
  const all = [...first.sender.calls, ...second.sender.calls].map((c) => c.msg.id);
  assert.is(all.length, 5);
  assert.is(new Set(all).size, 5);
});

test('notify() after an accept wakes delivery at once, without waiting for the poll', async () => {
  const { sender, delivery } = start({ pollMs: 30_000 });
  await new Promise((r) => setTimeout(r, 200)); // past the first (empty) claim
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  const started = Date.now();
  const ids = await accept(o, [{ connectionId: conn, chat: 'wake', text: 'now' }]);
  delivery.notify(); // as the messages routes do: an explicit call, not the event bus
  await waitFor(final(ids), 3000, 'sent without a poll');
  assert.ok(Date.now() - started < 3000);
  assert.is(sender.calls.length, 1);
  await delivery.stop();
});

test('resumeConnection releases parked messages at once', async () => {
  const { sender, delivery } = start({ processor: { parkMs: 60_000 } });
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  let active = false;
  sender.behaviour = () => (active ? { platformMessageId: 'ok' } : new AppError('CONNECTION_NOT_ACTIVE', 'reconnecting'));
  const ids = await accept(o, [{ connectionId: conn, chat: 'r1', text: 'a' }, { connectionId: conn, chat: 'r2', text: 'b' }]);
  await waitFor(async () => (await db.sql`select 1 from messages where id = any(${db.sql.array(ids)}::uuid[]) and error->>'code' = 'CONNECTION_NOT_ACTIVE'`).length === 2, 5000, 'parked');
  active = true;
  assert.is(await delivery.resumeConnection(conn), 2);
  await waitFor(final(ids), 3000, 'sent right after resume, not after the 60 s park');
  await delivery.stop();
});

test.run();
