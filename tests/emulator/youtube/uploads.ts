import { createHash, randomBytes, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearer, drain, readJson, sendEmpty, sendJson } from '../platforms/http-io.ts';
import type { FaultBox } from '../platforms/oauth-kit.ts';
import type { GoogleOAuth } from './oauth.ts';
import { authError, backendError, googleError, insufficientScopes, quotaExceeded, rateLimited, type YoutubeState } from './state.ts';
import { parseMetadata, parseParts, type VideoMetadata, type Videos } from './videos.ts';

// The resumable upload protocol for videos.insert ("YouTube Data API - Resumable Uploads"):
// POST /upload/youtube/v3/videos?uploadType=resumable&part=… → 200 + Location (the session URI);
// PUT chunks with Content-Range → 308 Resume Incomplete + Range until the last byte → 201 + the video;
// `Content-Range: bytes */TOTAL` asks how far it got. Bytes stream through a SHA-256 and are never kept:
// a 500 MB upload costs one 256 KiB block of memory while a PUT is in flight.

/** Chunks must be multiples of 256 KiB except the last; the emulator persists in whole blocks of that size. */
export const UPLOAD_BLOCK = 256 * 1024;

export const UPLOAD_SCOPES = ['youtube.upload', 'youtube', 'youtube.force-ssl', 'youtubepartner'].map((s) => `https://www.googleapis.com/auth/${s}`);

interface Session {
  id: string; channelId: string; parts: string[]; meta: VideoMetadata; mimeType: string;
  /** X-Upload-Content-Length, or learnt from the final chunk's Content-Range. */
  total?: number;
  createdAt: number;
  committed: number;
  hash: Hash;
  bytesReceived: number;
  puts: number;
  statusQueries: number;
  busy: boolean;
  videoId?: string;
}

export interface UploadView {
  uploadId: string; accountId: string; total: number | null; committed: number; bytesReceived: number; puts: number;
  statusQueries: number; videoId: string | null; createdAt: string;
}

type Range = { kind: 'query'; total?: number } | { kind: 'bytes'; first: number; last: number; total?: number };

function parseContentRange(header: string | undefined, contentLength: number | undefined): Range | undefined {
  if (header === undefined) return contentLength === 0 ? { kind: 'query' } : undefined;
  const q = /^bytes \*\/(\d+|\*)$/.exec(header.trim());
  if (q) return { kind: 'query', total: q[1] === '*' ? undefined : Number(q[1]) };
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) throw googleError(400, 'badContent', `Failed to parse Content-Range header: ${header}`, 'global');
  const r = { kind: 'bytes' as const, first: Number(m[1]), last: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
  if (r.last < r.first || (r.total !== undefined && r.last >= r.total)) throw googleError(400, 'badContent', `Invalid Content-Range: ${header}`, 'global');
  return r;
}

export class ResumableUploads {
  private sessions = new Map<string, Session>();

  constructor(
    private readonly state: YoutubeState,
    private readonly oauth: GoogleOAuth,
    private readonly videos: Videos,
    private readonly faults: FaultBox,
    private readonly base: () => string,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (url.pathname !== '/upload/youtube/v3/videos') throw googleError(404, 'notFound', 'Not Found', 'global');
    if (req.method === 'POST') return this.start(req, res, url);
    if (req.method === 'PUT') return this.put(req, res, url);
    throw googleError(405, 'methodNotAllowed', 'Method Not Allowed', 'global');
  }

  private async start(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const fault = await this.faults.next();
    if (fault === 'http-5xx') throw backendError();
    if (fault === 'rate-limit') throw rateLimited();
    const token = this.oauth.authenticate(bearer(req));
    if (!token) throw authError();
    if (url.searchParams.get('uploadType') !== 'resumable') {
      throw googleError(400, 'invalidArgument', 'Only uploadType=resumable is emulated.', 'global', { location: 'uploadType', locationType: 'parameter' });
    }
    const parts = parseParts(url.searchParams.get('part'));
    if (!token.scopes.some((s) => UPLOAD_SCOPES.includes(s))) throw insufficientScopes();
    const meta = parseMetadata(await readJson(req, (why) => googleError(400, 'parseError', `Parse Error: ${why}`, 'global')));
    const totalHeader = req.headers['x-upload-content-length'];
    const total = totalHeader === undefined ? undefined : Number(totalHeader);
    if (total !== undefined && (!Number.isSafeInteger(total) || total <= 0)) throw googleError(400, 'badContent', 'Invalid X-Upload-Content-Length', 'global');
    const mimeType = String(req.headers['x-upload-content-type'] ?? 'application/octet-stream');
    if (!/^video\/[\w.+-]+$/.test(mimeType) && mimeType !== 'application/octet-stream') {
      throw googleError(400, 'invalidContentType', `Media type '${mimeType}' is not supported.`, 'global');
    }
    // The quota is charged when the insert call is made, not when its bytes arrive.
    if (!this.state.quota.charge(this.state.clock.now(), 'insert')) throw quotaExceeded();
    const id = randomBytes(24).toString('base64url');
    this.sessions.set(id, {
      id, channelId: token.channelId, parts, meta, mimeType, total, createdAt: this.state.clock.now(), committed: 0,
      hash: createHash('sha256'), bytesReceived: 0, puts: 0, statusQueries: 0, busy: false,
    });
    const location = `${this.base()}/upload/youtube/v3/videos?uploadType=resumable&part=${encodeURIComponent(parts.join(','))}&upload_id=${id}`;
    sendEmpty(res, 200, { location, 'x-guploader-uploadid': id });
  }

  private async put(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const session = this.sessions.get(url.searchParams.get('upload_id') ?? '');
    if (!session || this.state.clock.now() >= session.createdAt + this.state.app.sessionTtlSeconds * 1000) {
      session && (session.bytesReceived += await drain(req));
      throw googleError(404, 'notFound', 'The upload session was not found or has expired.', 'global');
    }
    session.puts++;
    const fault = await this.faults.next();
    if (fault) {
      session.bytesReceived += await drain(req);
      throw fault === 'http-5xx' ? backendError() : rateLimited();
    }
    const lengthHeader = req.headers['content-length'];
    const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
    // A PUT without Content-Range carries the whole file.
    const whole = contentLength ?? session.total;
    const range = parseContentRange(req.headers['content-range'] as string | undefined, contentLength)
      ?? (whole ? { kind: 'bytes' as const, first: 0, last: whole - 1, total: whole } : undefined);
    if (!range) {
      session.bytesReceived += await drain(req);
      throw googleError(400, 'badContent', 'Content-Range or Content-Length is required', 'global');
    }
    if (range.total !== undefined && session.total !== undefined && range.total !== session.total) {
      session.bytesReceived += await drain(req);
      throw googleError(400, 'badContent', `Content-Range total ${range.total} differs from X-Upload-Content-Length ${session.total}`, 'global');
    }
    session.total ??= range.total;
    if (session.videoId) {
      session.bytesReceived += await drain(req);
      return this.finished(res, session, 200);
    }
    if (range.kind === 'query') {
      session.statusQueries++;
      return this.incomplete(res, session);
    }
    if (contentLength !== undefined && contentLength !== range.last - range.first + 1) {
      session.bytesReceived += await drain(req);
      throw googleError(400, 'badContent', 'Content-Length does not match Content-Range', 'global');
    }
    // A gap after what was persisted cannot be stitched: the client is told where to resume.
    if (range.first > session.committed || session.busy) {
      session.bytesReceived += await drain(req);
      if (session.busy) throw backendError();
      return this.incomplete(res, session);
    }
    session.busy = true;
    try {
      await this.receive(req, session, range.first, range.last);
    } finally {
      session.busy = false;
    }
    if (session.total !== undefined && session.committed === session.total) {
      const video = this.videos.add(session.channelId, session.meta, { sha256: session.hash.digest('hex'), bytes: session.total, mimeType: session.mimeType });
      session.videoId = video.id;
      return this.finished(res, session, 201);
    }
    this.incomplete(res, session);
  }

  /**
   * Streams one chunk: bytes already persisted (an overlapping re-send) are skipped, the rest go through
   * the hash in whole 256 KiB blocks. The trailing partial block is kept only when it ends the file; if the
   * client disconnects mid-chunk, what was persisted stays and the next status query reports it.
   */
  private async receive(req: IncomingMessage, s: Session, first: number, last: number): Promise<void> {
    const block = Buffer.allocUnsafe(UPLOAD_BLOCK);
    let fill = 0;
    let skip = s.committed - first;
    let got = 0;
    const want = last - first + 1;
    try {
      for await (const raw of req) {
        let chunk = raw as Buffer;
        s.bytesReceived += chunk.length;
        got += chunk.length;
        if (got > want) chunk = chunk.subarray(0, chunk.length - (got - want));
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
        }
        while (chunk.length > 0) {
          const n = Math.min(UPLOAD_BLOCK - fill, chunk.length);
          chunk.copy(block, fill, 0, n);
          fill += n;
          chunk = chunk.subarray(n);
          if (fill === UPLOAD_BLOCK) {
            s.hash.update(block);
            s.committed += UPLOAD_BLOCK;
            fill = 0;
          }
        }
      }
    } catch {
      return; // the connection broke mid-chunk: the partial block is lost, as on a real server
    }
    if (got < want) return;
    if (fill > 0 && s.total !== undefined && s.committed + fill === s.total) {
      s.hash.update(block.subarray(0, fill));
      s.committed += fill;
    }
  }

  private incomplete(res: ServerResponse, s: Session): void {
    // 308 "Resume Incomplete"; no Range header until the first byte is persisted.
    const headers: Record<string, string> = s.committed > 0 ? { range: `bytes=0-${s.committed - 1}` } : {};
    sendEmpty(res, 308, headers);
  }

  private finished(res: ServerResponse, s: Session, status: 200 | 201): void {
    const video = this.videos.all.get(s.videoId!);
    if (!video) throw googleError(404, 'videoNotFound', 'The video was removed.');
    sendJson(res, status, this.videos.render(video, s.parts, true));
  }

  list(): UploadView[] {
    return [...this.sessions.values()].map((s) => ({
      uploadId: s.id, accountId: s.channelId, total: s.total ?? null, committed: s.committed, bytesReceived: s.bytesReceived, puts: s.puts,
      statusQueries: s.statusQueries, videoId: s.videoId ?? null, createdAt: new Date(s.createdAt).toISOString(),
    }));
  }

  reset(): void {
    this.sessions.clear();
  }
}
