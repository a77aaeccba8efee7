import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AppError } from '../errors.ts';

// Chunked video uploads (YouTube resumable, TikTok FILE_UPLOAD) without a chunk buffer: each PUT's body
// is the file's own pieces (1 MiB from the upload store) written straight to the socket with
// backpressure. Why not fetch with a Buffer: undici copies an ArrayBufferView body
// (`buffer.slice(...)` in extractBody), so every 8 MiB chunk cost the driver's chunk buffer plus a copy
// plus undici's request queue — bench:uploads measured +120 MB RSS for one 200 MB YouTube upload with
// 8 MiB chunks. With the pieces streamed, what an upload holds is the piece in flight and the socket's
// write buffer.

/** The file ended before the size the upload declared: no retry helps. */
export const shortFile = () => new AppError('PLATFORM_REJECTED', 'The file ended before its declared size');

/**
 * Reading the file failed (the upload store, not the platform): the driver gives up this send at once
 * instead of re-sending chunks it cannot read; delivery retries the message as it does any store error.
 */
export class FileReadError extends Error {
  constructor(cause: unknown) {
    super('The file could not be read', { cause });
    this.name = 'FileReadError';
  }
}

/** Reads a file's pieces in order and hands them out in byte counts, slicing (never copying) a piece that straddles two. */
export class ByteReader {
  readonly #it: AsyncIterator<Buffer>;
  #left: Buffer | undefined;

  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  /** The next `n` bytes as pieces; throws PLATFORM_REJECTED when the file ends first. */
  async* take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      let b = this.#left;
      this.#left = undefined;
      if (!b) {
        let r: IteratorResult<Buffer>;
        try {
          r = await this.#it.next();
        } catch (err) {
          throw new FileReadError(err);
        }
        if (r.done) throw shortFile();
        b = r.value;
      }
      if (b.length > n) {
        this.#left = b.subarray(n);
        b = b.subarray(0, n);
      }
      n -= b.length;
      if (b.length > 0) yield b;
    }
  }

  /** Passes over `n` bytes (the part of the file the platform already holds). */
  async passOver(n: number): Promise<void> {
    for await (const piece of this.take(n)) void piece;
  }

  async close(): Promise<void> {
    this.#left = undefined;
    await this.#it.return?.();
  }
}

export interface StreamAnswer { status: number; headers: IncomingHttpHeaders; body: string }

/** Answers longer than this are cut (an error JSON or a video resource: a few KB). */
const ANSWER_MAX = 256 * 1024;

/**
 * PUTs `length` bytes from `body` to `url`. Resolves with the answer once it has arrived (an early
 * answer — a refusal before the body was read — stops the writing); rejects with the network error,
 * an AppError from `body` (a short file), or on `timeoutMs` of socket silence.
 */
export function putStream(url: string, headers: Record<string, string>, length: number, body: AsyncIterable<Buffer>, timeoutMs: number): Promise<StreamAnswer> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<StreamAnswer>((resolve, reject) => {
    let settled = false;
    let writing = true;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(err);
    };
    const req = request(u, { method: 'PUT', headers: { ...headers, 'content-length': String(length) } }, (res) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        if (size < ANSWER_MAX) parts.push(d);
        size += d.length;
      });
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        // Answered before the whole body went: the socket is in the middle of a request, not reusable.
        if (writing) req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8').slice(0, ANSWER_MAX) });
      });
    });
    req.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', fail);
    const drained = () => new Promise<void>((r) => {
      const done = () => {
        req.off('drain', done);
        req.off('close', done);
        r();
      };
      req.on('drain', done);
      req.on('close', done);
    });
    void (async () => {
      let sent = 0;
      for await (const piece of body) {
        if (settled || req.destroyed) return;
        sent += piece.length;
        if (sent > length) throw new Error(`the body is longer than its Content-Length ${length}`);
        if (!req.write(piece)) await drained();
      }
      if (sent !== length) throw shortFile();
      writing = false;
      req.end();
    })().catch(fail);
  });
}
