import type postgres from 'postgres';
import type { MessageRow } from './messages.ts';
import type { UploadRow } from './uploads.ts';

// The link between a message and the stored file it is sent from, where delivery makes it.

type Sql = postgres.Sql | postgres.TransactionSql;

/**
 * A message's media URL, fetched into `file`: the message now carries that file and its facts. Only
 * while the message is unsent, still without a file, and still at the schedule the fetcher held
 * (`seq`); undefined otherwise (the caller drops its file: another fetch won, or the row moved on).
 */
export async function attachFetchedFile(sql: Sql, messageId: string, seq: number, file: UploadRow): Promise<MessageRow | undefined> {
  const [r] = await sql<MessageRow[]>`
    update messages set upload_id = ${file.id}, updated_at = now(),
      media = media || jsonb_build_object(
        'filename', coalesce(media->>'filename', ${file.filename}::text), 'contentType', ${file.content_type}::text,
        'size', ${Number(file.size)}::bigint, 'sha256', ${file.sha256}::text)
    where id = ${messageId} and upload_id is null and status in ('queued', 'sending') and publish_seq = ${seq}
    returning *`;
  return r;
}
