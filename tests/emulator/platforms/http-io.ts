import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOn } from '../http.ts';

// Small HTTP plumbing shared by the YouTube and TikTok emulators: a loopback listener per role, bounded
// body reads for the small JSON/form requests (uploads stream and never come through here), answers.

/** Metadata, token and control bodies are tiny; 64 KiB is generous and bounds a hostile client. */
export const SMALL_BODY = 64 * 1024;

export class HttpFailure extends Error {
  constructor(readonly status: number, readonly body: unknown, readonly headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export interface Listener {
  url: string;
  server: Server;
  stop(): Promise<void>;
}

/** One HTTP server on host:0; `onError` turns a thrown HttpFailure (or anything else) into an answer. */
export async function listen(host: string, handler: Handler, onError: (res: ServerResponse, err: unknown) => void): Promise<Listener> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    handler(req, res, url).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      onError(res, err);
    });
  });
  // Node ends a request that takes over 5 minutes to arrive; a 500 MB upload sent as one PUT by a throttled
  // client may, and the platforms do not cut it off, so only the header timeout stays.
  server.requestTimeout = 0;
  const port = await listenOn(server, host, 0);
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url: base,
    server,
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export async function readSmallBody(req: IncomingMessage, limit = SMALL_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpFailure(413, { error: 'request body too large' });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** An x-www-form-urlencoded body (OAuth token endpoints), merged over the query string. */
export async function readForm(req: IncomingMessage, url: URL): Promise<Record<string, string>> {
  const text = (await readSmallBody(req)).toString('utf8');
  const params: Record<string, string> = Object.fromEntries(url.searchParams);
  if (!text) return params;
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    const parsed = parseJsonObject(text);
    for (const [k, v] of Object.entries(parsed ?? {})) if (typeof v === 'string') params[k] = v;
    return params;
  }
  return { ...params, ...Object.fromEntries(new URLSearchParams(text)) };
}

/** A JSON object body, or undefined when the body is empty; anything else is a `bad` failure. */
export async function readJson(req: IncomingMessage, bad: (why: string) => HttpFailure): Promise<Record<string, unknown> | undefined> {
  const text = (await readSmallBody(req)).toString('utf8');
  if (!text.trim()) return undefined;
  const parsed = parseJsonObject(text);
  if (!parsed) throw bad('the body is not a JSON object');
  return parsed;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': '0', ...headers });
  res.end();
}

/** The page a browser would see when the provider refuses to redirect (bad client or redirect URI). */
export function sendErrorPage(res: ServerResponse, status: number, title: string, detail: string): void {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html><title>${esc(title)}</title><h1>${esc(title)}</h1><p>${esc(detail)}</p>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'content-length': '0', 'cache-control': 'no-store' });
  res.end();
}

export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  return m?.[1];
}

/** HTTP Basic client credentials (RFC 6749 §2.3.1), which Google's token endpoint accepts too. */
export function basicAuth(req: IncomingMessage): { id: string; secret: string } | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Basic\s+(\S+)$/i.exec(h) : null;
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  return { id: decodeURIComponent(text.slice(0, i)), secret: decodeURIComponent(text.slice(i + 1)) };
}

/** Drains (and counts) a body we will not use, so the client sees the answer instead of a reset. */
export async function drain(req: IncomingMessage): Promise<number> {
  let n = 0;
  try {
    for await (const chunk of req) n += (chunk as Buffer).length;
  } catch {
    // the client went away; nothing to answer
  }
  return n;
}
