// A carousel message (items: several stored files) on real Postgres: every item's upload is locked at
// accept (another owner's is NOT_FOUND), the row names the first as its upload and keeps all in order,
// and while the message is unsent neither DELETE /v1/uploads nor retention takes any item — only the
// first is in upload_id, the others are found in media.items; once sent they go like any file.
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { saveFile } from '../../src/media/files.ts';
import { acceptMessages, markSendingMany, markSentMany, toApiMessage } from '../../src/store/messages.ts';
import { deleteOwnUpload, getUpload, purgeExpiredUploads } from '../../src/store/uploads.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const limits = { maxBytes: 10 * 1024 * 1024, retentionHours: 24, deadlineMs: 60_000 };

test('items: locked at accept, kept in order, protected from DELETE and retention until sent', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const files = await Promise.all([0, 1, 2].map((i) => saveFile(db.sql, owner, [randomBytes(2000 + i)], { contentType: 'image/jpeg', filename: `${i}.jpg` }, limits)));
  const items = files.map((f) => ({ type: 'photo' as const, uploadId: f.id }));

  const other = `o-${randomUUID()}`;
  const otherConn = await makeConnection(db.sql, other);
  try {
    await acceptMessages(db.sql, other, [{ connectionId: otherConn, chat: '@c', text: 'x', items }], { actor: other });
    assert.unreachable('another owner\'s files');
  } catch (err) {
    assert.instance(err, AppError);
    assert.is((err as AppError).code, 'NOT_FOUND');
    assert.equal((err as AppError).details?.map((d) => d.path), ['messages.0.items.0.uploadId', 'messages.0.items.1.uploadId', 'messages.0.items.2.uploadId']);
  }

  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'three', items }], { actor: owner });
  const row = r!.message;
  assert.is(row.upload_id, files[0]!.id);
  const api = toApiMessage(row);
  assert.is(api.media, undefined);
  assert.equal(api.items!.map((x) => [x.uploadId, x.sha256, x.size]), files.map((f) => [f.id, f.sha256, Number(f.size)]));

  assert.is(await deleteOwnUpload(db.sql, owner, files[2]!.id), 'in-use', 'an item that is not upload_id is in use too');
  await db.sql`update uploads set expires_at = now() - interval '1 second' where id = any(${db.sql.array(files.map((f) => f.id))}::uuid[])`;
  assert.is(await purgeExpiredUploads(db.sql, 100), 0, 'retention keeps every item of an unsent carousel');
  await markSendingMany(db.sql, [{ id: row.id, seq: row.publish_seq }], 60_000);
  assert.is(await purgeExpiredUploads(db.sql, 100), 0, 'still sending');
  await markSentMany(db.sql, [{ id: row.id, platformMessageId: '9' }]);
  assert.is(await purgeExpiredUploads(db.sql, 100), 3, 'sent: every item goes');
  for (const f of files) assert.is(await getUpload(db.sql, owner, f.id), undefined);
});

test('validation: one item, eleven, media and items together, an item without uploadId', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const f = await saveFile(db.sql, owner, [randomBytes(100)], { contentType: 'image/jpeg', filename: 'a.jpg' }, limits);
  const item = { type: 'photo' as const, uploadId: f.id };
  for (const bad of [{ items: [item] }, { items: Array.from({ length: 11 }, () => item) }, { items: [item, item], media: item }, { items: [item, { type: 'photo' as const, url: 'https://x.example/a.jpg' }] }]) {
    try {
      await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'x', ...bad }], { actor: owner });
      assert.unreachable(JSON.stringify(bad));
    } catch (err) {
      assert.is((err as AppError).code, 'VALIDATION_ERROR', JSON.stringify(bad));
    }
  }
});

test.run();
