import type postgres from 'postgres';
import { eventsCommitted } from './events.ts';
import { statusEvents, type MessageError, type MessageRow } from './messages.ts';

type Sql = postgres.Sql | postgres.TransactionSql;

// Statuses a platform reports after a send (WhatsApp by webhook), applied to the message it names:
// found by (platform, account, platform message id), so a status can only touch a message sent through
// a connection to that account. sent → delivered → read only move forward; `failed` fails the message.

export interface StatusUpdate {
  platform: string;
  accountId: string;
  platformMessageId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  at: Date;
  error?: MessageError;
}

/** The message a status names, or undefined (not sent by us, or its send's answer not stored yet). */
export async function findByPlatformId(sql: Sql, platform: string, accountId: string, platformMessageId: string): Promise<MessageRow | undefined> {
  const [r] = await sql<MessageRow[]>`
    select m.* from messages m join connections c on c.id = m.connection_id
    where c.platform = ${platform} and c.platform_user_id = ${accountId} and m.platform_message_id = ${platformMessageId} and m.op is null
    limit 1`;
  return r;
}

/** Applies one status, with its message.status event; the changed row, or undefined when it changed nothing (older or repeated). */
export async function applyStatus(sql: Sql, id: string, u: StatusUpdate): Promise<MessageRow | undefined> {
  const change = u.status === 'failed'
    ? sql`
      update messages set status = 'failed', error = ${sql.json((u.error ?? { code: 'PLATFORM_REJECTED', message: 'the platform reported the message failed' }) as never)}, updated_at = now()
      where id = ${id} and status in ('sending', 'sent')
      returning *`
    : sql`
      update messages set platform_status = ${u.status}, platform_status_at = ${u.at}, updated_at = now()
      where id = ${id} and status = 'sent'
        and (case platform_status when 'read' then 3 when 'delivered' then 2 when 'sent' then 1 else 0 end)
          < (case ${u.status}::text when 'read' then 3 when 'delivered' then 2 else 1 end)
      returning *`;
  const [r] = await sql<MessageRow[]>`with changed as (${change}), ${statusEvents(sql)} select * from changed`;
  if (r) eventsCommitted();
  return r;
}

/** A customer wrote to `accountId`: every connection to that account sees the window open (or renewed). */
export async function recordInbound(sql: Sql, platform: string, accountId: string, peer: string, at: Date): Promise<number> {
  const rows = await sql`
    insert into service_windows (connection_id, peer, last_inbound_at)
    select id, ${peer}, ${at} from connections where platform = ${platform} and platform_user_id = ${accountId}
    on conflict (connection_id, peer) do update set last_inbound_at = greatest(service_windows.last_inbound_at, excluded.last_inbound_at)`;
  return rows.count;
}

/**
 * Whether free-form messages to `peer` must be refused now: the connection has existed for the whole
 * window (so every message the customer sent in it reached us) and the customer's last one is older.
 */
export async function outsideWindow(sql: Sql, connectionId: string, peer: string, hours: number): Promise<boolean> {
  const [r] = await sql<{ outside: boolean }[]>`
    select c.created_at < now() - make_interval(hours => ${hours})
      and coalesce((select w.last_inbound_at from service_windows w where w.connection_id = c.id and w.peer = ${peer}), '-infinity') < now() - make_interval(hours => ${hours})
      as outside
    from connections c where c.id = ${connectionId}`;
  return r?.outside ?? false;
}

/**
 * Forgets customers' last-message times older than `before` (their numbers are personal data). A row
 * older than the platform's window means the same as no row, so retention passes RETENTION_DAYS
 * (at least 1 day, WhatsApp's window is 24 h) and nothing a send checks is lost.
 */
export async function purgeServiceWindows(sql: Sql, before: Date, batch: number): Promise<number> {
  const rows = await sql`
    delete from service_windows where ctid in (
      select ctid from service_windows where last_inbound_at < ${before} limit ${batch})`;
  return rows.count;
}
