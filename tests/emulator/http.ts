import { createHash } from 'node:crypto';
import type { Server as NetServer } from 'node:net';
import busboy from 'busboy';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

// Request body parsing and JSON answers shared by the Bot API and control servers.

const MAX_BODY = 1024 * 1024; // Bot API requests are small; 1 MiB is generous

export async function readParams(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  if (req.method !== 'POST' && req.method !== 'PUT') return params;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new BodyError(413, 'Request Entity Too Large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return params;
  const type = req.headers['content-type'] ?? '';
  // curl -d sends JSON as x-www-form-urlencoded: a body that looks like JSON is read as JSON.
  if (!type.includes('application/json') && !text.trimStart().startsWith('{')) return { ...params, ...Object.fromEntries(new URLSearchParams(text)) };
  try {
    const body = JSON.parse(text) as unknown;
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...params, ...(body as Record<string, unknown>) } : params;
  } catch {
    throw new BodyError(400, 'Bad Request: can\'t parse JSON object');
  }
}

export class BodyError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Waits `ms` unless the signal aborts first (server stopping); never throws. */
export async function delay(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

/** Listens on host:port (0 = any free port) and resolves with the port actually bound. */
export async function listenOn(server: NetServer, host: string, port: number, backlog?: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ...(backlog ? { backlog } : {}) }, () => resolve());
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/** A file part of a multipart request, as the emulator keeps it: its facts, never its bytes. */
export interface UploadedPart { upload: { size: number; sha256: string; filename?: string; mimeType?: string } }

export const isUploadedPart = (v: unknown): v is UploadedPart => typeof v === 'object' && v !== null && 'upload' in v;

/**
 * multipart/form-data: text fields as params, each file streamed through SHA-256 (nothing of it kept).
 * Over `maxBytes` in all (declared or counted): BodyError 413, as the Bot API answers uploads over 50 MB.
 */
export async function readMultipart(req: IncomingMessage, url: URL, maxBytes: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) throw new BodyError(413, 'Request Entity Too Large');
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const bb = busboy({ headers: req.headers, limits: { fileSize: maxBytes + 1, fieldSize: MAX_BODY } });
  const files: Promise<void>[] = [];
  let total = 0;
  let tooLarge = false;
  await new Promise<void>((resolve, reject) => {
    bb.on('field', (name, value) => { params[name] = value; });
    bb.on('file', (name, stream, info) => {
      const hash = createHash('sha256');
      let size = 0;
      files.push(new Promise<void>((done) => {
        stream.on('data', (d: Buffer) => {
          size += d.length;
          total += d.length;
          if (total > maxBytes) tooLarge = true;
          else hash.update(d);
        });
        stream.on('end', () => {
          params[name] = { upload: { size, sha256: hash.digest('hex'), ...(info.filename ? { filename: info.filename } : {}), ...(info.mimeType ? { mimeType: info.mimeType } : {}) } } satisfies UploadedPart;
          done();
        });
      }));
    });
    bb.on('close', resolve);
    bb.on('error', (err: Error) => reject(new BodyError(400, `Bad Request: ${err.message}`)));
    req.pipe(bb);
  });
  await Promise.all(files);
  if (tooLarge) throw new BodyError(413, 'Request Entity Too Large');
  return params;
}
