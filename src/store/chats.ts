import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { quotaDefaults } from '../config.ts';
import { opaque } from './opaque.ts';
import { checkChatRoom } from './quotas.ts';

/** A chat as the platform describes it after resolving a reference and checking membership and rights. */
export interface ChatCheck {
  platformChatId: string;
  type: 'channel' | 'group' | 'supergroup' | 'private';
  title: string;
  username?: string;
  isAdmin: boolean;
  canSend: boolean;
  rights: Record<string, boolean>;
}

// Chats a connection may post into. Every query carries `owner = ${owner}` and the connection id:
// a chat of another owner, or of another connection of the same owner, does not exist here.

type Sql = postgres.Sql | postgres.TransactionSql;

export interface ChatRow {
  id: string;
  owner: string;
  connection_id: string;
  platform_chat_id: string;
  type: ChatCheck['type'];
  title: string;
  username: string | null;
  is_admin: boolean;
  can_send: boolean;
  rights: Record<string, boolean>;
  checked_at: Date;
  created_at: Date;
}

export interface Chat {
  id: string; connectionId: string; platformChatId: string; type: ChatCheck['type']; title: string; username?: string;
  isAdmin: boolean; canSend: boolean; rights: Record<string, boolean>; checkedAt: string;
}

export const toChat = (r: ChatRow): Chat => ({
  id: r.id,
  connectionId: r.connection_id,
  platformChatId: r.platform_chat_id,
  type: r.type,
  title: r.title,
  ...(r.username ? { username: r.username } : {}),
  isAdmin: r.is_admin,
  canSend: r.can_send,
  rights: r.rights,
  checkedAt: r.checked_at.toISOString(),
});

/**
 * Stores a checked chat. The same platform chat added twice to one connection keeps its id and gets
 * the fresh check (unique (connection_id, platform_chat_id)); `created` says which case it was.
 * `id` is used for a new row only. A new chat beyond `maxPerConnection` is QUOTA_EXCEEDED and
 * nothing is stored; run it in a transaction so the quota's lock covers the insert.
 */
export async function upsertChat(
  sql: Sql, owner: string, connectionId: string, c: ChatCheck, id: string = randomUUID(), maxPerConnection: number = quotaDefaults.chatsPerConnection,
): Promise<{ row: ChatRow; created: boolean }> {
  await checkChatRoom(sql, owner, connectionId, c.platformChatId, maxPerConnection);
  const [r] = await sql<(ChatRow & { created: boolean })[]>`
    insert into chats (id, owner, connection_id, platform_chat_id, type, title, username, is_admin, can_send, rights)
    values (${id}, ${owner}, ${connectionId}, ${c.platformChatId}, ${c.type}, ${c.title}, ${c.username ?? null},
            ${c.isAdmin}, ${c.canSend}, ${sql.json(c.rights)})
    on conflict (connection_id, platform_chat_id) do update set
      type = excluded.type, title = excluded.title, username = excluded.username, is_admin = excluded.is_admin,
      can_send = excluded.can_send, rights = excluded.rights, checked_at = now()
    where chats.owner = ${owner}
    returning *, (xmax = 0) as created`;
  if (!r) throw new Error('chat row belongs to another owner'); // unreachable: a connection has one owner
  const { created, ...row } = r;
  return { row, created };
}

export async function listChats(sql: Sql, owner: string, connectionId: string): Promise<ChatRow[]> {
  return sql<ChatRow[]>`
    select * from chats where owner = ${owner} and connection_id = ${connectionId} order by created_at, id`;
}

export async function getChat(sql: Sql, owner: string, connectionId: string, chatId: string): Promise<ChatRow | undefined> {
  const [r] = await sql<ChatRow[]>`
    select * from chats where id = ${chatId} and owner = ${owner} and connection_id = ${connectionId}`;
  return r;
}

/** A re-check's result; undefined when the chat is gone (removed meanwhile). */
/** getChat for many (connection, chat id) pairs of one owner in one statement; key `${connectionId} ${chatId}`. */
export async function getChats(sql: Sql, owner: string, pairs: { connectionId: string; chatId: string }[]): Promise<Map<string, ChatRow>> {
  if (pairs.length === 0) return new Map();
  // One pair (a POST of one message) by plain equalities: the planner then keeps one generic plan
  // per connection after five runs. The array join was re-planned on every run (its estimate follows
  // the arrays' length): measured with pg_stat_statements at 10,000/min, 120 of its 147 µs a
  // message were planning; 4.7 against 87 µs a call on a quiet server (docs/performance.md). Several
  // pairs: the arrays and the owner as opaque() parameters, so one generic plan as well.
  const rows = pairs.length === 1 ? await sql<ChatRow[]>`
    select * from chats where id = ${pairs[0]!.chatId} and connection_id = ${pairs[0]!.connectionId} and owner = ${owner}`
    : await sql<ChatRow[]>`
    select c.* from chats c
    join unnest(${opaque(sql, sql.array(pairs.map((p) => p.connectionId)), 'uuid[]')}, ${opaque(sql, sql.array(pairs.map((p) => p.chatId)), 'uuid[]')}) as t(connection_id, id)
      on c.id = t.id and c.connection_id = t.connection_id
    where c.owner = ${opaque(sql, owner, 'text')}`;
  return new Map(rows.map((r) => [`${r.connection_id} ${r.id}`, r]));
}

export async function updateChatCheck(sql: Sql, owner: string, connectionId: string, chatId: string, c: ChatCheck): Promise<ChatRow | undefined> {
  const [r] = await sql<ChatRow[]>`
    update chats set
      type = ${c.type}, title = ${c.title}, username = ${c.username ?? null}, is_admin = ${c.isAdmin},
      can_send = ${c.canSend}, rights = ${sql.json(c.rights)}, checked_at = now()
    where id = ${chatId} and owner = ${owner} and connection_id = ${connectionId}
    returning *`;
  return r;
}

export async function deleteChat(sql: Sql, owner: string, connectionId: string, chatId: string): Promise<boolean> {
  const rows = await sql`delete from chats where id = ${chatId} and owner = ${owner} and connection_id = ${connectionId} returning id`;
  return rows.length > 0;
}

/** Whether the connection exists and belongs to the owner (chat routes answer 404 otherwise). */
export async function ownsConnection(sql: Sql, owner: string, connectionId: string): Promise<boolean> {
  const rows = await sql`select 1 from connections where id = ${connectionId} and owner = ${owner}`;
  return rows.length > 0;
}
