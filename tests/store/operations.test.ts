// Edits and deletes on the outbox (src/store/operations.ts): what each request does by how far the
// message got, the operation rows it queues, their completion with the message's change in one
// statement; and the uploads a message uses (locked at accept, kept by retention while unsent).
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { saveFile } from '../../src/media/files.ts';
import { acceptMessages, getMessage, listMessages, markSendingMany, markSentMany, rescheduleMessage, type MessageRow } from '../../src/store/messages.ts';
import { completeOperation, pendingOperations, requestDelete, requestEdit, type OperationPolicy } from '../../src/store/operations.ts';
import { deletePersonalData } from '../../src/store/personal-data.ts';
import { getUpload, purgeExpiredUploads } from '../../src/store/uploads.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const accountLike: OperationPolicy = () => ({ edit: true, delete: true, resendSafe: true, captionMaxLength: 1024 });
const botLike: OperationPolicy = () => ({ edit: true, delete: true, resendSafe: false, captionMaxLength: 1024 });
const textOnly: OperationPolicy = () => ({ edit: false, delete: false, resendSafe: false });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, AppError);
    return (err as AppError).code;
  }
  return 'resolved';
}

async function message(owner: string, text = 'hello'): Promise<MessageRow> {
  const conn = await makeConnection(db.sql, owner);
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@chan', text }], { actor: owner });
  return r!.message;
}

async function sent(owner: string, text = 'hello'): Promise<MessageRow> {
  const m = await message(owner, text);
  await markSendingMany(db.sql, [{ id: m.id, seq: m.publish_seq }], 60_000);
  await markSentMany(db.sql, [{ id: m.id, platformMessageId: '77' }]);
  return (await getMessage(db.sql, owner, m.id))!;
}

/** An operation row through `sending` to done, as delivery would after the platform call. */
async function complete(op: MessageRow): Promise<MessageRow | undefined> {
  await markSendingMany(db.sql, [{ id: op.id, seq: op.publish_seq }], 60_000);
  return completeOperation(db.sql, op.id);
}

test('edit of a queued message never tried: the text is replaced, nothing queued', async () => {
  const owner = `o-${randomUUID()}`;
  const m = await message(owner);
  const r = await requestEdit(db.sql, owner, m.id, 'hello, edited', { actor: owner, policy: accountLike });
  assert.is(r.operation, undefined);
  assert.is(r.message.text, 'hello, edited');
  assert.is((await getMessage(db.sql, owner, m.id))!.text, 'hello, edited');
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where target_id = ${m.id}`;
  assert.is(n, 0);
});

test('edit of a sent message: an operation row queued; done, the message changes in the same statement', async () => {
  const owner = `o-${randomUUID()}`;
  const m = await sent(owner);
  const r = await requestEdit(db.sql, owner, m.id, 'v2', { actor: owner, policy: accountLike });
  assert.ok(r.operation);
  assert.equal([r.operation!.op, r.operation!.target_id, r.operation!.text, r.operation!.status], ['edit', m.id, 'v2', 'queued']);
  assert.equal([r.operation!.connection_id, r.operation!.chat, r.operation!.shard], [m.connection_id, m.chat, m.shard]);
  assert.equal((await pendingOperations(db.sql, [m.id])).get(m.id)?.status, 'queued');
  assert.is(await code(requestEdit(db.sql, owner, m.id, 'v2', { actor: owner, policy: accountLike })), 'MESSAGE_NOT_MODIFIED', 'the pending edit already makes it v2');
  const changed = await complete(r.operation!);
  assert.equal([changed!.text, changed!.edited_at !== null], ['v2', true]);
  assert.is((await pendingOperations(db.sql, [m.id])).size, 0);
  assert.is(await complete(r.operation!), undefined, 'a second completion changes nothing');
  // Operation rows are not messages: never listed, never found by id.
  assert.equal((await listMessages(db.sql, owner, { limit: 10 })).items.map((x) => x.id), [m.id]);
  assert.is(await getMessage(db.sql, owner, r.operation!.id), undefined);
});

test('delete: queued → cancelled; a bot\'s retried one too; an account\'s retried one and a sent one → a delete operation', async () => {
  const owner = `o-${randomUUID()}`;
  const queued = await message(owner);
  const c = await requestDelete(db.sql, owner, queued.id, { actor: owner, policy: accountLike });
  assert.equal([c.message.status, c.operation], ['cancelled', undefined]);
  assert.is((await requestDelete(db.sql, owner, queued.id, { actor: owner, policy: accountLike })).already, true, 'deleting again answers as it is');
  assert.is(await code(requestEdit(db.sql, owner, queued.id, 'x', { actor: owner, policy: accountLike })), 'INVALID_STATE');

  // Tried once (a try without answer that an account resends): it may be in the chat.
  const retried = await message(owner);
  await markSendingMany(db.sql, [{ id: retried.id, seq: retried.publish_seq }], 60_000);
  await rescheduleMessage(db.sql, retried.id, { at: new Date(Date.now() + 60_000), retry: true });
  const asAccount = await requestDelete(db.sql, owner, retried.id, { actor: owner, policy: accountLike });
  assert.is(asAccount.operation?.op, 'delete');
  assert.is(asAccount.message.status, 'queued');
  const retriedBot = await message(owner);
  await markSendingMany(db.sql, [{ id: retriedBot.id, seq: retriedBot.publish_seq }], 60_000);
  await rescheduleMessage(db.sql, retriedBot.id, { at: new Date(Date.now() + 60_000), retry: true });
  assert.is((await requestDelete(db.sql, owner, retriedBot.id, { actor: owner, policy: botLike })).message.status, 'cancelled', 'a bot never resends a try in doubt: not in the chat');

  const s = await sent(owner);
  const d = await requestDelete(db.sql, owner, s.id, { actor: owner, policy: accountLike });
  assert.is(d.operation?.op, 'delete');
  assert.is(await code(requestEdit(db.sql, owner, s.id, 'x', { actor: owner, policy: accountLike })), 'INVALID_STATE', 'no edit behind a pending delete');
  assert.is((await requestDelete(db.sql, owner, s.id, { actor: owner, policy: accountLike })).already, true);
  const gone = await complete(d.operation!);
  assert.ok(gone!.deleted_at);
  assert.is(gone!.status, 'sent');
});

test('refusals: another owner → NOT_FOUND; a kind without edits → PLATFORM_UNSUPPORTED; a failed message → INVALID_STATE', async () => {
  const owner = `o-${randomUUID()}`;
  const s = await sent(owner);
  for (const id of [s.id, randomUUID(), 'not-a-uuid']) {
    assert.is(await code(requestEdit(db.sql, `o-${randomUUID()}`, id, 'x', { actor: 'x', policy: accountLike })), 'NOT_FOUND');
    assert.is(await code(requestDelete(db.sql, `o-${randomUUID()}`, id, { actor: 'x', policy: accountLike })), 'NOT_FOUND');
  }
  assert.is(await code(requestEdit(db.sql, owner, s.id, 'x', { actor: owner, policy: textOnly })), 'PLATFORM_UNSUPPORTED');
  assert.is(await code(requestDelete(db.sql, owner, s.id, { actor: owner, policy: textOnly })), 'PLATFORM_UNSUPPORTED');
  const failed = await message(owner);
  await db.sql`update messages set status = 'failed' where id = ${failed.id}`;
  assert.is(await code(requestDelete(db.sql, owner, failed.id, { actor: owner, policy: accountLike })), 'INVALID_STATE');
  assert.is(await code(requestEdit(db.sql, owner, s.id, '', { actor: owner, policy: accountLike })), 'VALIDATION_ERROR');
});

test('uploads: a message locks its file at accept; retention keeps files unsent messages use, deletes the rest', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const limits = { maxBytes: 10 * 1024 * 1024, retentionHours: 24, deadlineMs: 60_000 };
  const used = await saveFile(db.sql, owner, [randomBytes(3000)], { contentType: 'image/png', filename: 'a.png' }, limits);
  const unused = await saveFile(db.sql, owner, [randomBytes(3000)], { contentType: 'image/png', filename: 'b.png' }, limits);
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: '', media: { type: 'photo', uploadId: used.id } }], { actor: owner });
  assert.equal(r!.message.media, { type: 'photo', uploadId: used.id, filename: 'a.png', contentType: 'image/png', size: 3000, sha256: used.sha256 });
  assert.is(r!.message.upload_id, used.id);
  // Another owner's upload is not found, whoever knows its id.
  const other = `o-${randomUUID()}`;
  const otherConn = await makeConnection(db.sql, other);
  assert.is(await code(acceptMessages(db.sql, other, [{ connectionId: otherConn, chat: '@c', text: 'x', media: { type: 'photo', uploadId: used.id } }], { actor: other })), 'NOT_FOUND');
  await db.sql`update uploads set expires_at = now() - interval '1 second' where id in (${used.id}, ${unused.id})`;
  assert.is(await purgeExpiredUploads(db.sql, 100), 1);
  assert.ok(await getUpload(db.sql, owner, used.id), 'kept: its message is queued');
  assert.is(await getUpload(db.sql, owner, unused.id), undefined);
  await markSendingMany(db.sql, [{ id: r!.message.id, seq: r!.message.publish_seq }], 60_000);
  await markSentMany(db.sql, [{ id: r!.message.id, platformMessageId: '9' }]);
  assert.is(await purgeExpiredUploads(db.sql, 100), 1, 'sent: the file goes');
  const after = (await getMessage(db.sql, owner, r!.message.id))!;
  assert.equal([after.upload_id, after.media?.sha256], [null, used.sha256], 'the message keeps the file\'s facts');
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from upload_chunks where upload_id in (${used.id}, ${unused.id})`;
  assert.is(n, 0);
  // DELETE /v1/me takes the caller's files with everything else.
  const kept = await saveFile(db.sql, owner, [randomBytes(2 * 1024 * 1024)], { contentType: 'video/mp4', filename: 'c.mp4' }, limits);
  assert.is((await deletePersonalData(db.sql, owner, `subject-${owner}`)).uploads, 1);
  const [{ c }] = await db.sql<{ c: number }[]>`select count(*)::int as c from upload_chunks where upload_id = ${kept.id}`;
  assert.is(c, 0);
});

test.run();
