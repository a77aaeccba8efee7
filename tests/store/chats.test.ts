import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deleteChat, getChat, getChats, listChats, ownsConnection, toChat, updateChatCheck, upsertChat } from '../../src/store/chats.ts';
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

test('getChats finds a caller\'s chats by (connection, chat) pairs, one pair or several, and nobody else\'s', async () => {
  const alice = `o-${randomUUID()}`;
  const [c1, c2] = [await makeConnection(db.sql, alice), await makeConnection(db.sql, alice)];
  const bobConn = await makeConnection(db.sql, `o-${randomUUID()}`);
  const x = (await upsertChat(db.sql, alice, c1, check({ platformChatId: '-1001' }))).row;
  const y = (await upsertChat(db.sql, alice, c2, check({ platformChatId: '-1002' }))).row;
  const z = (await upsertChat(db.sql, `o-${randomUUID()}`, bobConn, check({ platformChatId: '-1003' }))).row;
  const keys = async (owner: string, pairs: [string, string][]) =>
    [...(await getChats(db.sql, owner, pairs.map(([connectionId, chatId]) => ({ connectionId, chatId })))).keys()].sort();
  assert.equal(await keys(alice, [[c1, x.id]]), [`${c1} ${x.id}`]);
  assert.equal(await keys(alice, [[c2, x.id]]), [], 'a chat of another connection');
  assert.equal(await keys(alice, [[bobConn, z.id]]), [], 'another owner\'s chat');
  assert.equal(await keys(alice, [[c1, x.id], [c2, y.id], [bobConn, z.id]]), [`${c1} ${x.id}`, `${c2} ${y.id}`].sort());
  assert.equal(await keys(alice, [[c1, y.id], [c2, x.id]]), []);
});

test('getChats is planned once per database connection, for one pair and for several (the array form was planned on every call)', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const { row } = await upsertChat(db.sql, owner, conn, check({ platformChatId: '-1004' }));
  const { row: other } = await upsertChat(db.sql, owner, conn, check({ platformChatId: '-1005' }));
  // Other callers' chats, with statistics, as in production: on a small unanalyzed table every form looks alike to the planner.
  await db.sql`insert into connections (id, owner, platform, kind, shard, login)
    select gen_random_uuid(), 'filler-' || (g % 50), 'telegram', 'bot', g % 64, '{}' from generate_series(1, 1000) g`;
  await db.sql`insert into chats (id, owner, connection_id, platform_chat_id, type, title)
    select gen_random_uuid(), c.owner, c.id, 'p' || c.id, 'channel', 't' from connections c where c.owner like 'filler-%'`;
  await db.sql`analyze chats`;
  const own = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    for (let i = 0; i < 8; i++) {
      assert.is((await getChats(own, owner, [{ connectionId: conn, chatId: row.id }])).size, 1);
      // Several pairs, of varying count (a batch).
      assert.is((await getChats(own, owner, [row, other, row].slice(0, 2 + (i % 2)).map((c) => ({ connectionId: conn, chatId: c.id })))).size, 2);
    }
    const plans = await own<{ generic: number; custom: number }[]>`
      select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
      where statement like '%from chats%' and statement not like '%pg_prepared_statements%'`;
    assert.equal(plans.map((p) => ({ ...p })), [{ generic: 3, custom: 5 }, { generic: 3, custom: 5 }]);
  } finally {
    await own.end();
  }
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
