import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { consentHistory, currentConsent, currentConsents, recordConsent } from '../../src/store/consents.ts';
import { acceptMessages, expireQueued, markFailed, markSendingMany, markSentMany } from '../../src/store/messages.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const owner = () => `o-${randomUUID()}`;

async function accept(o: string, conn: string, text: string) {
  const [r] = await acceptMessages(db.sql, o, [{ connectionId: conn, chat: '@chan', text }], { actor: o });
  return r!.message.id;
}
const textOf = async (id: string) => (await db.sql<{ text: string }[]>`select text from messages where id = ${id}`)[0]!.text;
const send = async (id: string) => {
  await markSendingMany(db.sql, [{ id, seq: 0 }], 60_000);
  await markSentMany(db.sql, [{ id, platformMessageId: '1' }]);
};

test('decisions are appended: the newest per purpose is in force, the history keeps every one, in order', async () => {
  const o = owner();
  assert.is((await currentConsents(db.sql, o)).length, 0);
  assert.is(await currentConsent(db.sql, o, 'processing'), undefined);
  // Eleven decisions: ids 9 and 10 compare wrongly as text, which the order must not do.
  for (let i = 1; i <= 11; i++) await recordConsent(db.sql, { owner: o, purpose: 'processing', version: `v${i}`, granted: i % 2 === 1 });
  await recordConsent(db.sql, { owner: o, purpose: 'message-retention', version: '2026-05', granted: false });
  const current = await currentConsents(db.sql, o);
  assert.equal(current.map((c) => [c.purpose, c.version, c.granted]), [['message-retention', '2026-05', false], ['processing', 'v11', true]]);
  assert.is((await currentConsent(db.sql, o, 'processing'))!.version, 'v11');
  const history = await consentHistory(db.sql, o, { limit: 100 });
  assert.equal(history.map((c) => c.version), ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9', 'v10', 'v11', '2026-05']);
  const page2 = await consentHistory(db.sql, o, { limit: 5, after: history[4]!.id });
  assert.equal(page2.map((c) => c.version), ['v6', 'v7', 'v8', 'v9', 'v10']);
  assert.is((await currentConsents(db.sql, owner())).length, 0, 'another owner decided nothing');
  const audit = await db.sql<{ action: string; target: string }[]>`select action, target from audit where owner = ${o} order by id`;
  assert.is(audit.length, 12);
  assert.equal(audit.slice(-2).map((a) => [a.action, a.target]), [['consent.granted', 'processing'], ['consent.withdrawn', 'message-retention']]);
});

test('withdrawing message-retention blanks ended texts at once and each later one as it ends; queued ones keep theirs until then', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  const sent = await accept(o, conn, 'already sent');
  await send(sent);
  const failed = await accept(o, conn, 'already failed');
  await markFailed(db.sql, failed, { code: 'TG_CHAT_WRITE_FORBIDDEN', message: 'no' });
  const queued = await accept(o, conn, 'still queued');
  const expiring = await accept(o, conn, 'will expire');
  const laterFailing = await accept(o, conn, 'will fail');
  const other = owner();
  const othersSent = await accept(other, await makeConnection(db.sql, other), 'not mine');
  await send(othersSent);

  const { blanked } = await recordConsent(db.sql, { owner: o, purpose: 'message-retention', version: 'v1', granted: false });
  assert.is(blanked, 2);
  assert.equal([await textOf(sent), await textOf(failed), await textOf(queued)], ['', '', 'still queued']);
  assert.is(await textOf(othersSent), 'not mine', 'another owner keeps theirs');
  const [search] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where id = ${sent} and search @@ to_tsquery('simple', 'sent')`;
  assert.is(search!.n, 0, 'the search column empties with the text');

  // Each way a message can end: delivered, refused, expired in the queue.
  await send(queued);
  await markFailed(db.sql, laterFailing, { code: 'TG_CHAT_WRITE_FORBIDDEN', message: 'no' });
  await db.sql`update messages set created_at = now() - interval '10 days' where id = ${expiring}`;
  await expireQueued(db.sql, new Date(Date.now() - 86_400_000), { code: 'MESSAGE_EXPIRED', message: 'expired' }, 100);
  assert.equal([await textOf(queued), await textOf(laterFailing), await textOf(expiring)], ['', '', '']);

  // Granted again: texts are kept once more (what was blanked stays blank).
  await recordConsent(db.sql, { owner: o, purpose: 'message-retention', version: 'v2', granted: true });
  const kept = await accept(o, conn, 'kept again');
  await send(kept);
  assert.is(await textOf(kept), 'kept again');
  assert.is(await textOf(sent), '');
});

test('withdrawing processing touches no text', async () => {
  const o = owner();
  const conn = await makeConnection(db.sql, o);
  const id = await accept(o, conn, 'hello');
  await send(id);
  const { blanked } = await recordConsent(db.sql, { owner: o, purpose: 'processing', version: 'v1', granted: false });
  assert.is(blanked, 0);
  assert.is(await textOf(id), 'hello');
});

test.run();
