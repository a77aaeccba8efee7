import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  advanceCursor, appendEvent, appendEvents, claimCursor, eventPos, lastEventPos, readAllEvents, readEvents, releaseCursor,
} from '../../src/store/events.ts';
import { storeIncoming } from '../../src/store/incoming.ts';
import { listMessages, toApiMessage } from '../../src/store/messages.ts';
import { transaction } from '../../src/store/transaction.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase({ max: 6 }); });
test.after(async () => { await db.drop(); });

test('appendEvent stores the envelope; readEvents is per customer, in pos order, filtered by type and connection', async () => {
  const alice = `o-${randomUUID()}`;
  const bob = `o-${randomUUID()}`;
  const conn = randomUUID();
  const a1 = await appendEvent(db.sql, { customerId: alice, type: 'connection.status', connectionId: conn, data: { id: conn, status: 'active' } });
  const b1 = await appendEvent(db.sql, { customerId: bob, type: 'message.status', data: { n: 1 } });
  const [a2, a3] = await appendEvents(db.sql, [
    { customerId: alice, type: 'message.status', connectionId: conn, data: { n: 2 } },
    { customerId: alice, type: 'message.received', data: { n: 3 } },
  ]);
  assert.ok(a1.pos < b1.pos && b1.pos < a2!.pos && a2!.pos < a3!.pos);
  assert.match(a1.id, /^[0-9a-f-]{36}$/);
  assert.equal(a1.data, { id: conn, status: 'active' });
  assert.ok(Number.isFinite(Date.parse(a1.occurredAt)));
  const mine = await readEvents(db.sql, alice, { afterPos: 0, limit: 10 });
  assert.equal(mine.map((e) => e.id), [a1.id, a2!.id, a3!.id]);
  assert.equal((await readEvents(db.sql, alice, { afterPos: a1.pos, limit: 10 })).map((e) => e.id), [a2!.id, a3!.id]);
  assert.equal((await readEvents(db.sql, alice, { afterPos: 0, limit: 1 })).map((e) => e.id), [a1.id]);
  assert.equal((await readEvents(db.sql, alice, { afterPos: 0, limit: 10, types: ['message.status'] })).map((e) => e.id), [a2!.id]);
  assert.equal((await readEvents(db.sql, alice, { afterPos: 0, limit: 10, connectionId: conn })).map((e) => e.id), [a1.id, a2!.id]);
  assert.is(await eventPos(db.sql, alice, a2!.id), a2!.pos);
  assert.is(await eventPos(db.sql, bob, a2!.id), undefined, 'another customer\'s event id is unknown');
  assert.ok((await lastEventPos(db.sql)) >= a3!.pos);
});

test('pos follows commit order: an event appended later but committed first never gets the lower pos', async () => {
  const owner = `o-${randomUUID()}`;
  let releaseA!: () => void;
  const holdA = new Promise<void>((r) => (releaseA = r));
  let appendedA!: () => void;
  const aAppended = new Promise<void>((r) => (appendedA = r));
  // A appends and holds its transaction open; B appends meanwhile and must wait for A's commit.
  const a = transaction(db.sql, async (tx) => {
    const e = await appendEvent(tx, { customerId: owner, type: 'message.status', data: { who: 'a' } });
    appendedA();
    await holdA;
    return e;
  });
  await aAppended;
  let bDone = false;
  const b = appendEvent(db.sql, { customerId: owner, type: 'message.status', data: { who: 'b' } }).then((e) => { bDone = true; return e; });
  // While A is open, a reader sees neither, and B has not been given a pos yet.
  for (let i = 0; i < 5; i++) await db.sql`select pg_sleep(0.02)`;
  assert.is(bDone, false, 'B waits for A to commit');
  assert.is((await readEvents(db.sql, owner, { afterPos: 0, limit: 10 })).length, 0);
  releaseA();
  const [ea, eb] = await Promise.all([a, b]);
  assert.ok(ea.pos < eb.pos);
});

test('a rolled-back append leaves a hole, never a late row', async () => {
  const owner = `o-${randomUUID()}`;
  await transaction(db.sql, async (tx) => {
    await appendEvent(tx, { customerId: owner, type: 'message.status', data: {} });
    throw new Error('rollback');
  }).catch(() => undefined);
  const e = await appendEvent(db.sql, { customerId: owner, type: 'message.status', data: { kept: true } });
  assert.equal((await readEvents(db.sql, owner, { afterPos: 0, limit: 10 })).map((x) => x.id), [e.id]);
});

test('cursors: one holder at a time, advance only forward and only with the lease, taken over after expiry', async () => {
  const consumer = `c-${randomUUID()}`;
  assert.is(await claimCursor(db.sql, consumer, 'h1', 60_000), 0);
  assert.is(await claimCursor(db.sql, consumer, 'h2', 60_000), undefined, 'h1 holds the lease');
  assert.ok(await advanceCursor(db.sql, consumer, 'h1', 42));
  assert.ok(await advanceCursor(db.sql, consumer, 'h1', 7));
  assert.is(await claimCursor(db.sql, consumer, 'h1', 60_000), 42, 'never moves back');
  assert.not.ok(await advanceCursor(db.sql, consumer, 'h2', 50), 'not the holder');
  await releaseCursor(db.sql, consumer, 'h1');
  assert.is(await claimCursor(db.sql, consumer, 'h2', 1), 42);
  await db.sql`select pg_sleep(0.01)`;
  assert.not.ok(await advanceCursor(db.sql, consumer, 'h2', 60), 'lease ran out');
  assert.is(await claimCursor(db.sql, consumer, 'h3', 60_000), 42, 'an expired lease is taken over from the last advanced pos');
});

test('readAllEvents sees every customer in pos order', async () => {
  const before = await lastEventPos(db.sql);
  const e1 = await appendEvent(db.sql, { customerId: 'x', type: 'message.status', data: {} });
  const e2 = await appendEvent(db.sql, { customerId: 'y', type: 'message.status', data: {} });
  assert.equal((await readAllEvents(db.sql, before, 10)).map((e) => e.id), [e1.id, e2.id]);
});

test('storeIncoming keeps the message and its event in one transaction, once per platform message', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const message = { chat: '-100123', from: '@alice', text: 'hello', platformMessageId: '77', date: '2026-12-06T20:00:00.000Z' };
  const first = await storeIncoming(db.sql, { owner, connectionId: conn, message });
  assert.ok(first.stored);
  assert.is(first.event!.type, 'message.received');
  assert.equal(first.event!.data, { messageId: first.messageId, connectionId: conn, ...message });
  const again = await storeIncoming(db.sql, { owner, connectionId: conn, message: { ...message, text: 'replayed' } });
  assert.is(again.stored, false, 'a repeated update is not stored twice');
  // The same platform id in another chat is another message.
  assert.ok((await storeIncoming(db.sql, { owner, connectionId: conn, message: { ...message, chat: '-100999' } })).stored);
  const events = await readEvents(db.sql, owner, { afterPos: 0, limit: 10 });
  assert.is(events.length, 2);
  const page = await listMessages(db.sql, owner, { limit: 10, direction: 'in', connectionId: conn });
  assert.is(page.items.length, 2);
  const api = toApiMessage(page.items.find((m) => m.id === first.messageId)!);
  assert.is(api.direction, 'in');
  assert.is(api.status, 'received');
  assert.is(api.from, '@alice');
  assert.is(api.text, 'hello');
  assert.is(api.platformMessageId, '77');
  assert.is((await listMessages(db.sql, owner, { limit: 10, direction: 'out' })).items.length, 0);
  assert.is((await listMessages(db.sql, owner, { limit: 10, direction: 'in', since: new Date(Date.now() + 60_000) })).items.length, 0);
});

test('storeIncoming for another owner\'s connection stores nothing', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const r = await storeIncoming(db.sql, { owner: 'someone-else', connectionId: conn, message: { chat: '1', from: 'x', text: 't', platformMessageId: '1', date: new Date().toISOString() } });
  assert.is(r.stored, false);
  assert.is((await readEvents(db.sql, 'someone-else', { afterPos: 0, limit: 10 })).length, 0);
});

test.run();
