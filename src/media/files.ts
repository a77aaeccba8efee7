import { createHash, randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { AppError } from '../errors.ts';
import type { Egress } from '../net/egress.ts';
import { beginUpload, completeUpload, dropUpload, putChunk, readChunkSlice, type UploadRow } from '../store/uploads.ts';

// Files for media messages, streamed between the network and Postgres a chunk at a time: an upload
// (POST /v1/uploads), a file fetched from a message's media URL, and the bytes a driver sends. A file
// is never held whole in memory: one chunk buffer per stream, plus what the driver sends at once.

/** 1 MiB: two MTProto file parts (512 KiB each), and 50 statements for the largest upload. */
export const chunkBytes = 1024 * 1024;

export interface FileLimits {
  /** UPLOAD_MAX_MB in bytes. */
  maxBytes: number;
  /** UPLOAD_RETENTION_HOURS. */
  retentionHours: number;
  /** A file whose bytes stop arriving is left behind at most this long (the retention job deletes it). */
  deadlineMs: number;
}

export interface FileMeta { contentType: string; filename: string; sourceUrl?: string }

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;

/** PAYLOAD_TOO_LARGE naming the limit; thrown before anything past the limit is stored. */
export const tooLarge = (maxBytes: number) => new AppError('PAYLOAD_TOO_LARGE', `the file is larger than ${mb(maxBytes)} (UPLOAD_MAX_MB)`);

/**
 * Stores what `source` yields as a new file of `owner`, hashing it on the way. Anything that stops
 * it (the limit, the source failing, the database) deletes what was stored so far before rethrowing.
 */
export async function saveFile(sql: postgres.Sql, owner: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, meta: FileMeta, limits: FileLimits): Promise<UploadRow> {
  const id = randomUUID();
  await beginUpload(sql, { id, owner, ...meta, deadlineMs: limits.deadlineMs });
  try {
    const hash = createHash('sha256');
    // One buffer for the whole file: a chunk's statement has serialised it by the time it resolves.
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let fill = 0;
    let size = 0;
    let seq = 0;
    for await (const raw of source) {
      const piece = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      size += piece.length;
      if (size > limits.maxBytes) throw tooLarge(limits.maxBytes);
      hash.update(piece);
      for (let off = 0; off < piece.length;) {
        const n = Math.min(piece.length - off, chunkBytes - fill);
        piece.copy(chunk, fill, off, off + n);
        fill += n;
        off += n;
        if (fill === chunkBytes) {
          await putChunk(sql, id, seq++, chunk);
          fill = 0;
        }
      }
    }
    if (fill > 0) await putChunk(sql, id, seq, chunk.subarray(0, fill));
    return await completeUpload(sql, id, { size, sha256: hash.digest('hex'), retentionHours: limits.retentionHours });
  } catch (err) {
    await dropUpload(sql, id).catch(() => undefined); // else the retention job takes it after the deadline
    throw err;
  }
}

/**
 * 512 KiB: what a send reads per statement — one MTProto file part, and a slice that keeps a chunk's
 * boundaries (a chunk is two pieces), so a piece is exactly a part and a driver never joins two.
 */
export const pieceBytes = 512 * 1024;

/**
 * A stored file's bytes in order, one piece (at most `piece` bytes, never across a chunk's end) per
 * statement; each piece is read when the previous one has been taken, so a reader that sends a piece
 * before it asks for the next holds one piece of the file, never more.
 */
export async function* readFile(sql: postgres.Sql, uploadId: string, piece = pieceBytes): AsyncGenerator<Buffer> {
  for (let seq = 0; ; seq++) {
    for (let offset = 0; ; offset += piece) {
      const r = await readChunkSlice(sql, uploadId, seq, offset, piece);
      if (!r) return;
      if (r.data.length > 0) yield r.data;
      if (offset + piece >= r.chunkLength) break;
    }
  }
}

export interface FetchOptions extends FileLimits {
  /** The whole fetch (headers and body): 2 min. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

// A file name from the URL's last path segment when the server names none; kept printable.
function nameFrom(url: URL, disposition: string | null): string {
  const quoted = disposition && /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)?.[1];
  let name = quoted ?? url.pathname.split('/').filter(Boolean).at(-1) ?? '';
  try {
    name = decodeURIComponent(name);
  } catch { /* kept as it is */ }
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  name = name.replace(/[\u0000-\u001f\u007f/\\]/g, '').slice(0, 255);
  return name || 'file';
}

async function* emptyBody(): AsyncGenerator<Uint8Array> { /* a 2xx without a body: an empty file */ }

const fetchFailed = (message: string, transient: boolean) =>
  new AppError('MEDIA_FETCH_FAILED', message, transient ? { category: 'retry' } : {});

/**
 * Fetches a media URL through the egress guard into a new file of `owner`. Refusals keep their
 * EGRESS_FORBIDDEN; everything else is MEDIA_FETCH_FAILED, with category retry where trying again
 * later may work (5xx, 429, network, timeout) and rejected where it cannot (4xx, too large).
 */
export async function fetchFile(sql: postgres.Sql, egress: Egress, owner: string, rawUrl: string, o: FetchOptions): Promise<UploadRow> {
  const url = egress.check(rawUrl);
  const deadline = AbortSignal.timeout(o.timeoutMs ?? 120_000);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  // Only the host goes into messages: a URL's path and query can carry a signature or a token.
  const where = url.host;
  let res;
  try {
    res = await egress.fetch(url, { signal, maxRedirects: 3, headers: { accept: '*/*' } });
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw fetchFailed(`could not fetch the media URL from ${where}: ${deadline.aborted ? 'timed out' : 'network error'}`, true);
  }
  if (res.status < 200 || res.status >= 300) {
    await res.body?.cancel().catch(() => undefined);
    const transient = res.status >= 500 || res.status === 429 || res.status === 408;
    throw fetchFailed(`the media URL at ${where} answered ${res.status}`, transient);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > o.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw fetchFailed(`the file at ${where} is larger than ${mb(o.maxBytes)} (UPLOAD_MAX_MB)`, false);
  }
  const contentType = (res.headers.get('content-type') ?? 'application/octet-stream').split(';')[0]!.trim().toLowerCase() || 'application/octet-stream';
  try {
    return await saveFile(sql, owner, (res.body ?? emptyBody()) as AsyncIterable<Uint8Array>, { contentType, filename: nameFrom(url, res.headers.get('content-disposition')), sourceUrl: url.toString() }, o);
  } catch (err) {
    if (err instanceof AppError && err.code === 'PAYLOAD_TOO_LARGE') throw fetchFailed(`the file at ${where} is larger than ${mb(o.maxBytes)} (UPLOAD_MAX_MB)`, false);
    if (err instanceof AppError) throw err;
    // The body stopped (network, deadline) or the database failed: nothing was kept, try again later.
    throw fetchFailed(`the media URL at ${where} stopped sending: ${deadline.aborted ? 'timed out' : 'read failed'}`, true);
  }
}
