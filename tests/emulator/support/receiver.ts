import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { listenOn } from '../http.ts';

// The other side of the Meta emulators in their tests: a loopback HTTP server that serves media for the
// platforms to download (/media/<name>), answers the webhook verification handshake and records signed
// webhook POSTs with their raw bodies (/webhook), and records OAuth redirects (/callback).

export interface ReceivedWebhook {
  raw: Buffer;
  body: any;
  signature256: string | undefined;
  signature1: string | undefined;
}

export class Receiver {
  readonly media = new Map<string, { bytes: Buffer; type: string }>();
  readonly webhooks: ReceivedWebhook[] = [];
  readonly callbacks: URLSearchParams[] = [];
  /** The verify token the webhook handshake accepts (undefined: every handshake is refused). */
  verifyToken: string | undefined;
  /** Status the webhook POST answers with (a test sets 500 to see retries). */
  webhookStatus = 200;
  url = '';
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      void this.read(req).then((raw) => {
        const u = new URL(req.url ?? '/', 'http://receiver');
        if (u.pathname.startsWith('/media/')) {
          const m = this.media.get(decodeURIComponent(u.pathname.slice(7)));
          if (!m) return res.writeHead(404).end();
          return res.writeHead(200, { 'content-type': m.type, 'content-length': m.bytes.length }).end(m.bytes);
        }
        if (u.pathname === '/webhook' && req.method === 'GET') {
          const ok = u.searchParams.get('hub.mode') === 'subscribe' && this.verifyToken !== undefined && u.searchParams.get('hub.verify_token') === this.verifyToken;
          return ok ? res.writeHead(200, { 'content-type': 'text/plain' }).end(u.searchParams.get('hub.challenge')) : res.writeHead(403).end();
        }
        if (u.pathname === '/webhook' && req.method === 'POST') {
          const sig256 = req.headers['x-hub-signature-256'];
          const sig1 = req.headers['x-hub-signature'];
          this.webhooks.push({ raw, body: JSON.parse(raw.toString('utf8')), signature256: typeof sig256 === 'string' ? sig256 : undefined, signature1: typeof sig1 === 'string' ? sig1 : undefined });
          return res.writeHead(this.webhookStatus).end();
        }
        if (u.pathname === '/callback') {
          this.callbacks.push(u.searchParams);
          return res.writeHead(200, { 'content-type': 'text/plain' }).end('callback received');
        }
        res.writeHead(404).end();
      });
    });
  }

  private async read(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async start(): Promise<this> {
    const port = await listenOn(this.server, '127.0.0.1', 0);
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  serve(name: string, bytes: Buffer, type = 'image/jpeg'): string {
    this.media.set(name, { bytes, type });
    return `${this.url}/media/${encodeURIComponent(name)}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** What a receiver must check: the HMAC-SHA256 of the raw body with the app secret, in constant time. */
export function validSignature(raw: Buffer, header: string | undefined, appSecret: string): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', appSecret).update(raw).digest('hex')}`);
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export async function until<T>(probe: () => T | undefined | Promise<T | undefined>, label: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`${label}: not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A few bytes that start like a JPEG (the emulators hash what they download; they do not decode it). */
export const jpeg = (seed: string): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(`emulator-test-image:${seed}`), Buffer.from([0xff, 0xd9])]);
