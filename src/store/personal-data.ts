import type postgres from 'postgres';
import { listAudit, recordAudit, toAuditView, type AuditRow } from './audit.ts';
import { toChat, type ChatRow } from './chats.ts';
import { toConnection, type ConnectionRow } from './connections.ts';
import { consentHistory, toConsent, type ConsentRow } from './consents.ts';
import { deleteSalt } from './log-salts.ts';
import { deleteCustomerEvents, readEvents, type StoredEvent } from './events.ts';
import type { MessageRow } from './messages.ts';
import { transaction } from './transaction.ts';
import { toApiUpload, type UploadRow } from './uploads.ts';

// Everything stored about one owner (the JWT `sub`), for GET /v1/me/export and DELETE /v1/me.
// Secrets (connection_secrets, machine snapshots) are never selected: they are ours to run the
// connection, not data the person gave us, and an export must not become a way to extract them.

/** The export's sections, in the order the document lists them. */
export const exportSections = ['connections', 'chats', 'messages', 'uploads', 'audit', 'consents', 'events'] as const;
export type ExportSection = typeof exportSections[number];

export interface ExportItems {
  connections: ReturnType<typeof toConnection>;
  chats: ReturnType<typeof toChat>;
  messages: ReturnType<typeof toExportMessage>;
  /** The facts of the caller's stored files (not their bytes). */
  uploads: ReturnType<typeof toApiUpload>;
  audit: ReturnType<typeof toAuditView>;
  consents: ReturnType<typeof toConsent>;
  /** The stored events (kept EVENT_RETENTION_HOURS), oldest first. */
  events: ReturnType<typeof toExportEvent>;
}

const toExportEvent = (e: StoredEvent) => ({
  id: e.id, pos: e.pos, type: e.type, occurredAt: e.occurredAt, connectionId: e.connectionId ?? null, data: e.data,
});

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
  media: r.media,
  editedAt: r.edited_at?.toISOString() ?? null,
  deletedAt: r.deleted_at?.toISOString() ?? null,
  // An edit or delete requested of another message (its new text is `text`).
  operation: r.op ? { type: r.op, messageId: r.target_id! } : null,
  direction: r.direction,
  from: r.sender,
});

// 500 rows a page, as the supervisor reads connections at boot: a few ms per statement, and at most
// 500 message texts (≤ 4096 characters each) held at once however long the owner's history is.
const defaultPageSize = 500;

type Keyed<R> = R & { k: string };

/**
 * One section of the owner's export, a page at a time, in the order the export lists it: connections,
 * chats and messages by (created_at, id), audit newest first, consent decisions oldest first (the
 * whole history: the newest decision per purpose is the one in force). Keyset pages, each its own statement:
 * no connection is held between pages (the embedded database has only one), so a client reading the
 * export slowly holds nothing but one page in memory. The price is that the export is not one
 * snapshot: a row changed while it runs appears as it was when its page was read, a row created or
 * deleted meanwhile may or may not be in it; no row appears twice.
 */
export async function* exportPages<S extends ExportSection>(sql: postgres.Sql, owner: string, section: S, pageSize = defaultPageSize): AsyncGenerator<ExportItems[S][]> {
  type Item = ExportItems[S];
  // created_at travels as Postgres text with microseconds: an ISO string (milliseconds) would
  // repeat or skip rows created within the same millisecond.
  let after: { k: string; id: string } | undefined;
  // Audit and consent pages continue from the bigint id of the last row (older, resp. newer ones).
  let lastId: string | undefined;
  for (;;) {
    let items: Item[];
    let last: { k: string; id: string } | undefined;
    const keyset = after ? sql`and (created_at, id) > (${after.k}::text::timestamptz, ${after.id}::uuid)` : sql``;
    if (section === 'connections') {
      const rows = await sql<Keyed<ConnectionRow>[]>`
        select id, owner, platform, kind, status, status_since, display_name, username, platform_user_id, phone_masked,
               login, error, null as snapshot, machine_version, shard, created_at, updated_at, last_active_at, created_at::text as k
        from connections where owner = ${owner} ${keyset} order by created_at, id limit ${pageSize}`;
      items = rows.map(toConnection) as Item[];
      last = rows.at(-1);
    } else if (section === 'chats') {
      const rows = await sql<Keyed<ChatRow>[]>`
        select *, created_at::text as k from chats where owner = ${owner} ${keyset} order by created_at, id limit ${pageSize}`;
      items = rows.map(toChat) as Item[];
      last = rows.at(-1);
    } else if (section === 'messages') {
      const rows = await sql<Keyed<MessageRow>[]>`
        select *, created_at::text as k from messages where owner = ${owner} ${keyset} order by created_at, id limit ${pageSize}`;
      items = rows.map(toExportMessage) as Item[];
      last = rows.at(-1);
    } else if (section === 'uploads') {
      const rows = await sql<Keyed<UploadRow>[]>`
        select *, created_at::text as k from uploads where owner = ${owner} and completed_at is not null ${keyset} order by created_at, id limit ${pageSize}`;
      items = rows.map(toApiUpload) as Item[];
      last = rows.at(-1);
    } else if (section === 'events') {
      const rows = await readEvents(sql, owner, { afterPos: Number(lastId ?? 0), limit: pageSize });
      items = rows.map(toExportEvent) as Item[];
      lastId = rows.at(-1) ? String(rows.at(-1)!.pos) : undefined;
    } else if (section === 'consents') {
      const rows: ConsentRow[] = await consentHistory(sql, owner, { limit: pageSize, ...(lastId && { after: lastId }) });
      items = rows.map(toConsent) as Item[];
      lastId = rows.at(-1)?.id;
    } else {
      const rows: AuditRow[] = await listAudit(sql, { owner, limit: pageSize, ...(lastId && { before: lastId }) });
      items = rows.map(toAuditView) as Item[];
      lastId = rows.at(-1)?.id;
    }
    if (items.length > 0) yield items;
    if (items.length < pageSize) return;
    if (last) after = { k: last.k, id: last.id };
  }
}

export interface Deleted { connections: number; chats: number; messages: number; uploads: number; audit: number; consents: number; events: number }

/**
 * Deletes every remaining row of the owner in one transaction, the owner's log salt with them (the
 * pseudonym in their log lines can no longer be computed), and leaves the one trace of it: an audit
 * entry `personal-data.erased` under `subject`, the pseudonym the owner's log lines carried, with
 * its time and counts and without the sub. Run after the supervisor has stopped and removed the
 * connections (ConnectionService.removeAll), so no actor writes again; connections left behind (an
 * actor that failed to stop) go here too, their secrets by cascade.
 */
export async function deletePersonalData(sql: postgres.Sql, owner: string, subject: string): Promise<Deleted> {
  return transaction(sql, async (tx) => {
    const messages = await tx`delete from messages where owner = ${owner}`;
    // Their chunks by cascade: up to 50 MiB of rows a file, deleted in this one transaction.
    const uploads = await tx`delete from uploads where owner = ${owner}`;
    const chats = await tx`delete from chats where owner = ${owner}`;
    const connections = await tx`delete from connections where owner = ${owner}`;
    const audit = await tx`delete from audit where owner = ${owner}`;
    const consents = await tx`delete from consents where owner = ${owner}`;
    const events = await deleteCustomerEvents(tx, owner);
    // Webhook endpoints (URLs the owner chose, their secrets) and, by cascade, their deliveries' bodies.
    await tx`delete from webhook_endpoints where owner = ${owner}`;
    await deleteSalt(tx, owner);
    const deleted = { connections: connections.count, chats: chats.count, messages: messages.count, uploads: uploads.count, audit: audit.count, consents: consents.count, events };
    await recordAudit(tx, { owner: subject, actor: subject, action: 'personal-data.erased', details: deleted });
    return deleted;
  });
}
