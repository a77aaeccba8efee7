import type postgres from 'postgres';
import { listAudit, toAuditView, type AuditRow } from './audit.ts';
import { toChat, type ChatRow } from './chats.ts';
import { toConnection, type ConnectionRow } from './connections.ts';
import type { MessageRow } from './messages.ts';
import { transaction } from './transaction.ts';

// Everything stored about one owner (the JWT `sub`), for GET /v1/me/export and DELETE /v1/me.
// Secrets (connection_secrets, machine snapshots) are never selected: they are ours to run the
// connection, not data the person gave us, and an export must not become a way to extract them.

export interface PersonalData {
  subject: string;
  exportedAt: string;
  connections: ReturnType<typeof toConnection>[];
  chats: ReturnType<typeof toChat>[];
  messages: ReturnType<typeof toExportMessage>[];
  audit: ReturnType<typeof toAuditView>[];
}

const toExportMessage = (r: MessageRow) => ({
  id: r.id,
  connectionId: r.connection_id,
  chat: r.chat,
  platformChatId: r.platform_chat_id,
  text: r.text,
  parseMode: r.parse_mode,
  silent: r.silent,
  replyTo: r.reply_to,
  priority: r.priority,
  status: r.status,
  attempts: r.attempts,
  platformMessageId: r.platform_message_id,
  error: r.error ? { code: r.error.code, message: r.error.message, ...(r.error.retryAt && { retryAt: r.error.retryAt }) } : null,
  idempotencyKey: r.idempotency_key,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  sentAt: r.sent_at?.toISOString() ?? null,
});

// An audit trail is bounded by RETENTION_DAYS; this cap only keeps one export from exhausting memory
// if retention was switched off for years (10^6 rows of ~200 bytes ≈ 200 MB).
const maxAuditRows = 1_000_000;

/** One consistent snapshot (repeatable read) of the owner's rows. */
export async function exportPersonalData(sql: postgres.Sql, owner: string, now: Date = new Date()): Promise<PersonalData> {
  return transaction(sql, async (tx) => {
    const connections = await tx<ConnectionRow[]>`
      select id, owner, platform, kind, status, status_since, display_name, username, platform_user_id, phone_masked,
             login, error, null as snapshot, machine_version, shard, created_at, updated_at, last_active_at
      from connections where owner = ${owner} order by created_at, id`;
    const chats = await tx<ChatRow[]>`select * from chats where owner = ${owner} order by created_at, id`;
    const messages = await tx<MessageRow[]>`select * from messages where owner = ${owner} order by created_at, id`;
    const audit: AuditRow[] = await listAudit(tx, { owner, limit: maxAuditRows });
    return {
      subject: owner,
      exportedAt: now.toISOString(),
      connections: connections.map(toConnection),
      chats: chats.map(toChat),
      messages: messages.map(toExportMessage),
      audit: audit.map(toAuditView),
    };
  }, 'repeatable read read only');
}

export interface Deleted { connections: number; chats: number; messages: number; audit: number }

/**
 * Deletes every remaining row of the owner in one transaction. Run after the supervisor has
 * stopped and removed the connections (ConnectionService.removeAll), so no actor writes again;
 * connections left behind (an actor that failed to stop) go here too, their secrets by cascade.
 */
export async function deletePersonalData(sql: postgres.Sql, owner: string): Promise<Deleted> {
  return transaction(sql, async (tx) => {
    const messages = await tx`delete from messages where owner = ${owner}`;
    const chats = await tx`delete from chats where owner = ${owner}`;
    const connections = await tx`delete from connections where owner = ${owner}`;
    const audit = await tx`delete from audit where owner = ${owner}`;
    return { connections: connections.count, chats: chats.count, messages: messages.count, audit: audit.count };
  });
}
