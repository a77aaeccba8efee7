// Events and incoming messages in retention, the personal-data export and erasure.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { purgeExpired } from '../../src/jobs/retention.ts';
import { appendEvent, readEvents } from '../../src/store/events.ts';
import { storeIncoming } from '../../src/store/incoming.ts';
import { deletePersonalData, exportPages } from '../../src/store/personal-data.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const collect = async <T>(pages: AsyncGenerator<T[]>): Promise<T[]> => {
  const out: T[] = [];
  for await (const p of pages) out.push(...p);
  return out;
};

test('EVENT_RETENTION_HOURS: events older than the window are deleted, newer ones kept; incoming messages follow RETENTION_DAYS', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const old = await appendEvent(db.sql, { customerId: owner, type: 'message.status', data: { old: true } });
  const edge = await appendEvent(db.sql, { customerId: owner, type: 'message.status', data: { edge: true } });
  const fresh = await appendEvent(db.sql, { customerId: owner, type: 'message.status', data: { fresh: true } });
  await db.sql`update events set created_at = now() - interval '73 hours' where id = ${old.id}`;
  await db.sql`update events set created_at = now() - interval '71 hours' where id = ${edge.id}`;
  const inc = await storeIncoming(db.sql, { owner, connectionId: conn, message: { chat: '1', from: 'f', text: 'old incoming', platformMessageId: '1', date: new Date().toISOString() } });
  await db.sql`update messages set sent_at = now() - interval '31 days', updated_at = now() - interval '31 days' where id = ${inc.messageId!}`;
  const r = await purgeExpired(db.sql, { days: 30, eventRetentionHours: 72, batch: 1 });
  assert.ok(r.events! >= 1);
  assert.ok(r.messages >= 1);
  const left = (await readEvents(db.sql, owner, { afterPos: 0, limit: 10 })).map((e) => e.id);
  assert.not.ok(left.includes(old.id));
  assert.ok(left.includes(edge.id) && left.includes(fresh.id));
  const [m] = await db.sql`select 1 from messages where id = ${inc.messageId!}`;
  assert.is(m, undefined, 'the incoming message past RETENTION_DAYS is gone');
  const without = await purgeExpired(db.sql, { days: 30 });
  assert.is(without.events, undefined, 'events are purged only when asked');
});

test('the export lists the caller\'s events and incoming messages; erasure deletes both, nobody else\'s', async () => {
  const owner = `o-${randomUUID()}`;
  const other = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const otherConn = await makeConnection(db.sql, other);
  const inc = await storeIncoming(db.sql, { owner, connectionId: conn, message: { chat: '5', from: '@amy', text: 'hi', platformMessageId: '9', date: new Date().toISOString() } });
  const status = await appendEvent(db.sql, { customerId: owner, type: 'connection.status', connectionId: conn, data: { id: conn } });
  await storeIncoming(db.sql, { owner: other, connectionId: otherConn, message: { chat: '5', from: '@x', text: 'theirs', platformMessageId: '9', date: new Date().toISOString() } });

  const events = await collect(exportPages(db.sql, owner, 'events', 1));
  assert.equal(events.map((e) => e.id), [inc.event!.id, status.id]);
  assert.equal(events[1], { id: status.id, pos: status.pos, type: 'connection.status', occurredAt: status.occurredAt, connectionId: conn, data: { id: conn } });
  const messages = await collect(exportPages(db.sql, owner, 'messages'));
  assert.is(messages.length, 1);
  assert.is(messages[0]!.direction, 'in');
  assert.is(messages[0]!.from, '@amy');

  const deleted = await deletePersonalData(db.sql, owner, 'subject-hash');
  assert.is(deleted.events, 2);
  assert.is(deleted.messages, 1);
  assert.is((await readEvents(db.sql, owner, { afterPos: 0, limit: 10 })).length, 0);
  assert.is((await readEvents(db.sql, other, { afterPos: 0, limit: 10 })).length, 1, 'another caller keeps theirs');
});

test.run();
