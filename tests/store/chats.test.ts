import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deleteChat, getChat, listChats, ownsConnection, toChat, updateChatCheck, upsertChat } from '../../src/store/chats.ts';
import type { ChatCheck } from '../../src/store/chats.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const check = (over: Partial<ChatCheck> = {}): ChatCheck => ({
  platformChatId: '-1001234567890', type: 'channel', title: 'News', username: 'news', isAdmin: true, canSend: true,
  rights: { postMessages: true }, ...over,
});

test('upsert creates, then refreshes the same platform chat keeping its id', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const a = await upsertChat(db.sql, owner, conn, check());
  assert.is(a.created, true);
  assert.equal(toChat(a.row), {
    id: a.row.id, connectionId: conn, platformChatId: '-1001234567890', type: 'channel', title: 'News', username: 'news',
    isAdmin: true, canSend: true, rights: { postMessages: true }, checkedAt: a.row.checked_at.toISOString(),
  });
  const b = await upsertChat(db.sql, owner, conn, check({ title: 'News 2', isAdmin: false, username: undefined }), randomUUID());
  assert.is(b.created, false);
  assert.is(b.row.id, a.row.id);
  assert.is(b.row.title, 'News 2');
  assert.is(toChat(b.row).username, undefined);
  assert.is((await listChats(db.sql, owner, conn)).length, 1);
});

test('every read and write is scoped by owner and connection', async () => {
  const alice = `o-${randomUUID()}`;
  const bob = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, alice);
  const other = await makeConnection(db.sql, alice);
  const { row } = await upsertChat(db.sql, alice, conn, check({ platformChatId: '-1009' }));
  assert.ok(await ownsConnection(db.sql, alice, conn));
  assert.not.ok(await ownsConnection(db.sql, bob, conn));
  assert.is(await getChat(db.sql, bob, conn, row.id), undefined);
  assert.is(await getChat(db.sql, alice, other, row.id), undefined);
  assert.is((await listChats(db.sql, bob, conn)).length, 0);
  assert.is(await updateChatCheck(db.sql, bob, conn, row.id, check({ title: 'hijacked' })), undefined);
  assert.not.ok(await deleteChat(db.sql, bob, conn, row.id));
  assert.not.ok(await deleteChat(db.sql, alice, other, row.id));
  assert.is((await getChat(db.sql, alice, conn, row.id))?.title, 'News');
  const updated = await updateChatCheck(db.sql, alice, conn, row.id, check({ title: 'Fresh', rights: {} }));
  assert.is(updated?.title, 'Fresh');
  assert.equal(updated?.rights, {});
  assert.ok(updated!.checked_at >= row.checked_at);
  assert.ok(await deleteChat(db.sql, alice, conn, row.id));
  assert.is(await getChat(db.sql, alice, conn, row.id), undefined);
});

test('a chat cannot outlive its connection, nor be added to a missing one', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await upsertChat(db.sql, owner, conn, check());
  await db.sql`delete from connections where id = ${conn}`;
  assert.is((await listChats(db.sql, owner, conn)).length, 0);
  try {
    await upsertChat(db.sql, owner, randomUUID(), check());
    assert.unreachable('foreign key');
  } catch (err) {
    assert.is((err as { code?: string }).code, '23503');
  }
});

test.run();
