import type { IncomingMessage, ServerResponse } from 'node:http';
import { drain, sendEmpty } from '../platforms/http-io.ts';
import type { FaultBox } from '../platforms/oauth-kit.ts';
import { chunkBounds, type Publish, type Publishes } from './publishes.ts';
import { tiktokError, type TiktokState } from './state.ts';

// PUT {upload_url} (open-upload.tiktokapis.com/video/?upload_id=…&upload_token=…), one chunk per request
// with `Content-Range: bytes FIRST-LAST/TOTAL`, sequentially ("Media Transfer Guide"). 206 Partial Content
// for a chunk, 201 Created for the last. A chunk counts only when all of it arrived: its bytes go through a
// copy of the running SHA-256 that replaces it on success, so nothing of the file is kept in memory.

const VIDEO_TYPES = new Set(['video/mp4', 'video/quicktime', 'video/webm']);

export class ChunkUploads {
  constructor(
    private readonly state: TiktokState,
    private readonly publishes: Publishes,
    private readonly faults: FaultBox,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const p = this.publishes.byUpload(url.searchParams.get('upload_id'), url.searchParams.get('upload_token'));
    if (req.method !== 'PUT' || !p) {
      await drain(req);
      throw tiktokError(this.state, 'invalid_params', 'The upload_url is not valid.');
    }
    p.puts++;
    const refuse = async (code: string, message: string) => {
      p.bytesReceived += await drain(req);
      return tiktokError(this.state, code, message);
    };
    const fault = await this.faults.next();
    if (fault === 'http-5xx') throw await refuse('internal_error', 'Something went wrong. Please try again later.');
    if (fault === 'rate-limit') throw await refuse('rate_limit_exceeded', 'The API rate limit was exceeded. Please try again later.');
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (!VIDEO_TYPES.has(type)) throw await refuse('invalid_file_upload', 'Content-Type must be video/mp4, video/quicktime or video/webm.');
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
    if (!m) throw await refuse('invalid_file_upload', 'Content-Range must be "bytes FIRST-LAST/TOTAL".');
    const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (total !== p.videoSize) throw await refuse('invalid_file_upload', `The total ${total} differs from video_size ${p.videoSize}.`);
    const index = Math.floor(first / p.chunkSize);
    const bounds = chunkBounds(p, Math.min(index, p.totalChunks - 1));
    if (bounds.first !== first || bounds.last !== last) throw await refuse('invalid_file_upload', `bytes ${first}-${last} is not one of the declared chunks.`);
    const chunk = Math.min(index, p.totalChunks - 1);
    if (Number(req.headers['content-length']) !== last - first + 1) throw await refuse('invalid_file_upload', 'Content-Length must be the chunk size.');
    // A chunk already received (a retry after a lost answer) is acknowledged again and changes nothing.
    if (chunk < p.chunksReceived) {
      p.bytesReceived += await drain(req);
      return sendEmpty(res, p.chunksReceived === p.totalChunks ? 201 : 206);
    }
    if (chunk > p.chunksReceived) throw await refuse('invalid_file_upload', `Chunks are uploaded in order: chunk ${p.chunksReceived} is next.`);
    if (p.busy) throw await refuse('invalid_file_upload', 'Another chunk of this upload is in flight.');
    p.busy = true;
    try {
      await this.receive(req, p, last - first + 1);
    } finally {
      p.busy = false;
    }
    if (p.chunksReceived !== chunk + 1) return; // the client went away mid-chunk: nothing counts
    if (p.chunksReceived < p.totalChunks) return sendEmpty(res, 206);
    p.sha256 = p.hash.digest('hex');
    p.uploadedAt = this.state.clock.now();
    sendEmpty(res, 201);
  }

  private async receive(req: IncomingMessage, p: Publish, length: number): Promise<void> {
    const hash = p.hash.copy();
    let got = 0;
    try {
      for await (const raw of req) {
        const chunk = raw as Buffer;
        p.bytesReceived += chunk.length;
        const use = chunk.length > length - got ? chunk.subarray(0, Math.max(0, length - got)) : chunk;
        got += chunk.length;
        hash.update(use);
      }
    } catch {
      return;
    }
    if (got < length) return;
    p.hash = hash;
    p.chunksReceived++;
    p.committed += length;
  }
}
