import type postgres from 'postgres';
import { transaction } from './transaction.ts';

// Uploaded files (migrations/007_media.sql): one row per file, its bytes in upload_chunks. The bytes
// are written and read a chunk per statement (src/media/files.ts streams them); nothing here ever
// selects more than one chunk. Caller-facing reads carry `owner = ${owner}`.

type Sql = postgres.Sql | postgres.TransactionSql;

export interface UploadRow {
  id: string;
  owner: string;
  content_type: string;
  filename: string;
  size: string | number;
  sha256: string | null;
  source_url: string | null;
  created_at: Date;
  completed_at: Date | null;
  expires_at: Date;
}

export interface Upload { id: string; size: number; sha256: string; contentType: string; filename: string; createdAt: string; expiresAt: string }

export const toApiUpload = (r: UploadRow): Upload => ({
  id: r.id, size: Number(r.size), sha256: r.sha256 ?? '', contentType: r.content_type, filename: r.filename,
  createdAt: r.created_at.toISOString(), expiresAt: r.expires_at.toISOString(),
});

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A row for a file whose bytes are about to arrive; it expires at `deadlineMs` unless completed. */
export async function beginUpload(sql: Sql, u: { id: string; owner: string; contentType: string; filename: string; sourceUrl?: string; deadlineMs: number }): Promise<void> {
  await sql`
    insert into uploads (id, owner, content_type, filename, source_url, expires_at)
    values (${u.id}, ${u.owner}, ${u.contentType}, ${u.filename}, ${u.sourceUrl ?? null}, now() + make_interval(secs => ${u.deadlineMs / 1000}))`;
}

export async function putChunk(sql: Sql, uploadId: string, seq: number, data: Buffer): Promise<void> {
  await sql`insert into upload_chunks (upload_id, seq, data) values (${uploadId}, ${seq}, ${data})`;
}

/** The bytes are all there: size and digest recorded, kept `retentionHours` from now. */
export async function completeUpload(sql: Sql, id: string, r: { size: number; sha256: string; retentionHours: number; contentType?: string }): Promise<UploadRow> {
  const [row] = await sql<UploadRow[]>`
    update uploads set size = ${r.size}, sha256 = ${r.sha256}, completed_at = now(),
      expires_at = now() + make_interval(hours => ${r.retentionHours})
      ${r.contentType === undefined ? sql`` : sql`, content_type = ${r.contentType}`}
    where id = ${id} and completed_at is null
    returning *`;
  if (!row) throw new Error(`upload ${id} vanished before it was complete`);
  return row;
}

/** Removes a file and its chunks (an upload refused or cut off half-way). */
export async function dropUpload(sql: Sql, id: string): Promise<void> {
  await sql`delete from uploads where id = ${id}`;
}

// `binaryResults` is the patch's option; postgres.js's types do not know it.
const binaryResults = { prepare: true, binaryResults: true } as postgres.UnsafeQueryOptions;

/**
 * `length` bytes of chunk `seq` from byte `offset` (fewer at its end), with the chunk's whole length;
 * undefined past the file's last chunk. The column is stored uncompressed (storage external), so
 * Postgres fetches only the TOAST pieces the slice covers. The row comes in Postgres's binary format
 * (ops/patches/postgres-binary-results.mjs) and `.raw()`: the slice is a view of the received message,
 * its bytes as they are — in text a bytea is hex, twice the bytes on the wire, then decoded into a
 * third buffer (3 copies of a 512 KiB piece instead of 1; `npm run bench:media-memory`).
 */
export async function readChunkSlice(sql: Sql, uploadId: string, seq: number, offset: number, length: number): Promise<{ data: Buffer; chunkLength: number } | undefined> {
  const [r] = await sql.unsafe<[Buffer, Buffer][]>(
    'select substring(data from $3::int4 for $4::int4), length(data)::int4 from upload_chunks where upload_id = $1::uuid and seq = $2::int4',
    [uploadId, seq, offset + 1, length],
    binaryResults,
  ).raw();
  if (!r) return undefined;
  // Binary int4: 4 bytes, big-endian (the protocol's network order).
  return { data: r[0], chunkLength: r[1].readInt32BE(0) };
}

/** A complete upload of this owner, or undefined (unknown, another owner's, or still arriving). */
export async function getUpload(sql: Sql, owner: string, id: string): Promise<UploadRow | undefined> {
  if (!uuidRe.test(id)) return undefined;
  const [r] = await sql<UploadRow[]>`select * from uploads where id = ${id} and owner = ${owner} and completed_at is not null`;
  return r;
}

/** A complete upload by id alone (delivery reads the file of a message it holds). */
export async function getUploadForDelivery(sql: Sql, id: string): Promise<UploadRow | undefined> {
  const [r] = await sql<UploadRow[]>`select * from uploads where id = ${id} and completed_at is not null`;
  return r;
}

/**
 * Complete, unexpired uploads of this owner among `ids`, locked against the retention job (FOR KEY
 * SHARE, the lock a foreign key check takes) until the caller's transaction ends.
 */
export async function lockUploads(sql: Sql, owner: string, ids: string[]): Promise<Map<string, UploadRow>> {
  const valid = ids.filter((id) => uuidRe.test(id));
  if (valid.length === 0) return new Map();
  const rows = await sql<UploadRow[]>`
    select * from uploads
    where id = any(${sql.array(valid)}::uuid[]) and owner = ${owner} and completed_at is not null and expires_at > now()
    order by id for key share`;
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * "Message m uses upload u (or `id`)": its one file (upload_id, the first of a carousel too) or any item
 * of a carousel (media.items[].uploadId, migrations/007_media.sql's jsonb).
 */
function usedBy(sql: Sql, id?: string) {
  const ref = id === undefined ? sql`u.id` : sql`${id}::uuid`;
  return sql`(m.upload_id = ${ref} or (m.media ? 'items' and m.media->'items' @> jsonb_build_array(jsonb_build_object('uploadId', ${ref}::text))))`;
}

export type DeleteUploadResult = 'deleted' | 'missing' | 'in-use';

/** DELETE /v1/uploads/{id}: refused while a message not yet sent (queued or sending) uses the file. */
export async function deleteOwnUpload(sql: postgres.Sql, owner: string, id: string): Promise<DeleteUploadResult> {
  if (!uuidRe.test(id)) return 'missing';
  return transaction(sql, async (tx) => {
    const [u] = await tx<{ id: string }[]>`select id from uploads where id = ${id} and owner = ${owner} and completed_at is not null for update`;
    if (!u) return 'missing';
    const [used] = await tx`select 1 from messages m where ${usedBy(tx, id)} and m.status in ('queued', 'sending') limit 1`;
    if (used) return 'in-use';
    await tx`delete from uploads where id = ${id}`;
    return 'deleted';
  });
}

/**
 * Retention: up to `batch` expired uploads that no unsent message uses, deleted with their chunks.
 * The candidates are locked first (FOR UPDATE: an accept referencing one waits), and the "unused"
 * check is a later statement, so it sees every accept that committed before the lock: one that
 * committed in between keeps its file; one that waited finds it gone and answers NOT_FOUND.
 */
export async function purgeExpiredUploads(sql: postgres.Sql, batch: number): Promise<number> {
  return transaction(sql, async (tx) => {
    const candidates = await tx<{ id: string }[]>`
      select id from uploads u
      where expires_at < now() and not exists (select 1 from messages m where ${usedBy(tx)} and m.status in ('queued', 'sending'))
      order by expires_at limit ${batch} for update skip locked`;
    if (candidates.length === 0) return 0;
    const r = await tx`
      delete from uploads u
      where u.id = any(${tx.array(candidates.map((c) => c.id))}::uuid[])
        and not exists (select 1 from messages m where ${usedBy(tx)} and m.status in ('queued', 'sending'))`;
    return r.count;
  });
}

/** The stored file a message is sent from (delivery attached it), or undefined. */
export async function uploadIdOfMessage(sql: Sql, messageId: string): Promise<string | undefined> {
  if (!uuidRe.test(messageId)) return undefined;
  const [r] = await sql<{ upload_id: string | null }[]>`select upload_id from messages where id = ${messageId}`;
  return r?.upload_id ?? undefined;
}
