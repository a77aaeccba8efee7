// Status events are stored by the statement (or transaction) that changes the status: rolled back
// together, committed together, so no crash between a commit and a later write can lose one. The
// events built in SQL have the shape toApiMessage gives (what the API answers for the message).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { saveState, type StatePatch } from '../../src/store/connections.ts';
import { readEvents, type StoredEvent } from '../../src/store/events.ts';
import {
  acceptMessages, expireQueued, markFailed, markSendingMany, markSentMany, rescheduleMessage, toApiMessage, type MessageRow,
} from '../../src/store/messages.ts';
import { completeOperation, pendingOperations, requestEdit } from '../../src/store/operations.ts';
import { applyStatus } from '../../src/store/platform-messages.ts';
import { transaction } from '../../src/store/transaction.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeConnection } from '../delivery/fixtures.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const statuses = (events: StoredEvent[], id: string) =>
  events.filter((e) => e.type === 'message.status' && (e.data as { id: string }).id === id).map((e) => (e.data as { status: string }).status);
const eventsOf = (owner: string) => readEvents(db.sql, owner, { afterPos: 0, limit: 1000 });
const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
const lastData = async (owner: string) => (await eventsOf(owner)).at(-1)!.data;
const policy = () => ({ edit: true, delete: true, resendSafe: true });

test('queued, sending and failed: rolled back with their changes, committed with them', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'one' }], { actor: owner });
  const id = r!.message.id;
  assert.equal(statuses(await eventsOf(owner), id), ['queued'], 'queued stored with the accept');

  // A transaction that marks it sending and failed, then dies before COMMIT: neither the changes nor their events remain.
  await transaction(db.sql, async (tx) => {
    assert.ok((await markSendingMany(tx, [{ id, seq: 0 }], 60_000)).get(id));
    assert.ok(await markFailed(tx, id, { code: 'TG_CHAT_WRITE_FORBIDDEN', message: 'no' }));
    throw new Error('crash before commit');
  }).catch((err: Error) => assert.is(err.message, 'crash before commit'));
  const [row] = await db.sql<MessageRow[]>`select * from messages where id = ${id}`;
  assert.is(row!.status, 'queued');
  assert.is(row!.attempts, 0);
  assert.equal(statuses(await eventsOf(owner), id), ['queued'], 'no event of the rolled-back changes');

  // The same committed: both changes and both events.
  await transaction(db.sql, async (tx) => {
    await markSendingMany(tx, [{ id, seq: 0 }], 60_000);
    await markFailed(tx, id, { code: 'TG_CHAT_WRITE_FORBIDDEN', message: 'no' });
  });
  assert.equal(statuses(await eventsOf(owner), id), ['queued', 'sending', 'failed']);
});

test('announce off (MESSAGE_STATUS_EVENTS=outcomes): accepted, sending and a retry store no event; sent and failed do', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const quiet = { actor: owner, announce: false };
  const [plain] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'no key' }], quiet);
  const [keyed] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'key', idempotencyKey: `k-${randomUUID()}` }], quiet);
  const [a, b] = [plain!.message.id, keyed!.message.id];
  assert.equal((await db.sql`select status from messages where id in (${a}, ${b})`).map((r) => r.status as string), ['queued', 'queued'], 'both stored');
  assert.is((await eventsOf(owner)).length, 0, 'no queued event, with or without a key');

  assert.is((await markSendingMany(db.sql, [{ id: a, seq: 0 }, { id: b, seq: 0 }], 60_000, undefined, false)).size, 2);
  const retryAt = new Date(Date.now() - 1000);
  assert.ok(await rescheduleMessage(db.sql, b, { at: retryAt, seq: 0, retry: true, error: { code: 'TG_UNAVAILABLE', message: 'down' } }));
  assert.is((await markSendingMany(db.sql, [{ id: b, seq: 1 }], 60_000, undefined, false)).size, 1);
  assert.is((await eventsOf(owner)).length, 0, 'no sending event and none for the retry');

  const sent = (await markSentMany(db.sql, [{ id: a, platformMessageId: '1' }])).get(a)!;
  const failed = (await markFailed(db.sql, b, { code: 'TG_CHAT_WRITE_FORBIDDEN', message: 'no' }))!;
  const events = await eventsOf(owner);
  assert.equal(events.map((e) => [(e.data as { id: string }).id, (e.data as { status: string }).status]), [[a, 'sent'], [b, 'failed']], 'one event per outcome');
  assert.equal(json(events[0]!.data), json(toApiMessage(sent)));
  assert.equal(json(events[1]!.data), json(toApiMessage(failed)));
});

test('a message\'s events are the statuses it went through, each with the row as written', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const [r] = await acceptMessages(db.sql, owner, [{
    connectionId: conn, chat: '@c', text: 'caption', priority: 'high', parseMode: 'html',
    media: { type: 'photo', url: 'https://example.com/a.jpg', filename: 'a.jpg' },
    template: { name: 'hello', language: 'en', components: [{ type: 'body', parameters: [{ type: 'text', text: 'x' }] }] },
  }], { actor: owner });
  const id = r!.message.id;
  const shapes: Array<[unknown, unknown]> = [[await lastData(owner), toApiMessage(r!.message)]];
  // Fields no status path sets yet, so that the SQL shape is checked for each.
  await db.sql`update messages set sender = 'Alice', edited_at = now(), deleted_at = now() where id = ${id}`;

  let row = (await markSendingMany(db.sql, [{ id, seq: 0 }], 60_000)).get(id)!;
  shapes.push([await lastData(owner), toApiMessage(row)]);
  const retryAt = new Date(Date.now() + 60_000);
  row = (await rescheduleMessage(db.sql, id, { at: retryAt, seq: 0, retry: true, announce: true, error: { code: 'TG_UNAVAILABLE', message: 'down', retryAt: retryAt.toISOString() } }))!;
  shapes.push([await lastData(owner), toApiMessage(row)]);
  // Unannounced (a pacing wait while queued): the row moves, no status change, no event.
  assert.ok(await rescheduleMessage(db.sql, id, { at: retryAt, seq: 1 }));
  row = (await markSendingMany(db.sql, [{ id, seq: 2 }], 60_000)).get(id)!;
  shapes.push([await lastData(owner), toApiMessage(row)]);
  row = (await markSentMany(db.sql, [{ id, platformMessageId: '77' }])).get(id)!;
  shapes.push([await lastData(owner), toApiMessage(row)]);
  const at = new Date();
  row = (await applyStatus(db.sql, id, { platform: 'telegram', accountId: 'x', platformMessageId: '77', status: 'delivered', at }))!;
  shapes.push([await lastData(owner), toApiMessage(row)]);
  assert.is(await applyStatus(db.sql, id, { platform: 'telegram', accountId: 'x', platformMessageId: '77', status: 'delivered', at }), undefined, 'a repeat changes nothing');

  assert.equal(statuses(await eventsOf(owner), id), ['queued', 'sending', 'queued', 'sending', 'sent', 'sent']);
  for (const [stored, api] of shapes) assert.equal(stored, json(api));
  const last = shapes.at(-1)![0] as Record<string, unknown>;
  for (const k of ['media', 'template', 'from', 'editedAt', 'deletedAt', 'sentAt', 'platformMessageId', 'platformStatus', 'platformStatusAt']) assert.ok(k in last, k);
  assert.ok('retryAt' in ((shapes[2]![0] as { error: object }).error), 'the retry error carries retryAt');
});

test('an edit: the message\'s events carry the pending operation through queued, sending and done', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'v1' }], { actor: owner });
  const id = r!.message.id;
  await markSendingMany(db.sql, [{ id, seq: 0 }], 60_000);
  await markSentMany(db.sql, [{ id, platformMessageId: '5' }]);
  const edit = await requestEdit(db.sql, owner, id, 'v2', { actor: owner, policy });
  const view = async () => {
    const [m] = await db.sql<MessageRow[]>`select * from messages where id = ${id}`;
    return json(toApiMessage(m!, (await pendingOperations(db.sql, [id])).get(id)));
  };
  assert.equal(await lastData(owner), await view(), 'edit requested: pending queued');
  assert.is(((await lastData(owner)) as { pendingOperation: { status: string } }).pendingOperation.status, 'queued');
  const op = edit.operation!;
  assert.ok((await markSendingMany(db.sql, [{ id: op.id, seq: op.publish_seq }], 60_000)).get(op.id));
  assert.equal(await lastData(owner), await view(), 'edit sending (built in SQL)');
  assert.is(((await lastData(owner)) as { pendingOperation: { status: string } }).pendingOperation.status, 'sending');
  await completeOperation(db.sql, op.id);
  const done = (await lastData(owner)) as { text: string; pendingOperation?: unknown; editedAt?: string };
  assert.equal(done, await view());
  assert.is(done.text, 'v2');
  assert.is(done.pendingOperation, undefined);
  assert.ok(done.editedAt);
  // Every event of this owner is about the message, never the operation row.
  assert.ok((await eventsOf(owner)).every((e) => (e.data as { id: string }).id === id));
});

test('expiry fails a batch of queued messages with one event each', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const rs = await acceptMessages(db.sql, owner, [1, 2, 3].map((i) => ({ connectionId: conn, chat: '@c', text: `e${i}` })), { actor: owner });
  const expired = await expireQueued(db.sql, new Date(Date.now() + 1000), { code: 'MESSAGE_EXPIRED', message: 'expired' }, 1000);
  const mine = expired.filter((m) => m.owner === owner);
  assert.is(mine.length, 3);
  const events = await eventsOf(owner);
  for (const m of rs) assert.equal(statuses(events, m.message.id), ['queued', 'failed']);
});

test('connection.status events are stored with the row\'s write, and not when it is refused', async () => {
  const owner = `o-${randomUUID()}`;
  const id = await makeConnection(db.sql, owner, { status: 'connecting' });
  const patch: StatePatch = { status: 'active', statusChanged: true, login: null, error: null, snapshot: {}, machineVersion: 1, active: true };
  const event = { customerId: owner, type: 'connection.status' as const, connectionId: id, data: { id, status: 'active' } };
  assert.ok(await saveState(db.sql, id, patch, undefined, [event]));
  assert.equal((await eventsOf(owner)).map((e) => [e.type, e.connectionId, e.data]), [['connection.status', id, { id, status: 'active' }]]);
  // A stale lease: the row is not written, and its event is not stored either.
  assert.not.ok(await saveState(db.sql, id, { ...patch, status: 'error' }, { node: 'nobody', epoch: 99 }, [{ ...event, data: { id, status: 'error' } }]));
  assert.is((await eventsOf(owner)).length, 1);
  const [row] = await db.sql<{ status: string }[]>`select status from connections where id = ${id}`;
  assert.is(row!.status, 'active');
});

test.run();
