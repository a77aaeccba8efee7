import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { delay, listenOn } from '../http.ts';
import type { PlatformFaults } from './faults.ts';
import { GraphError, readGraphParams, type Params } from './graph.ts';

// One HTTP listener of a Meta platform emulator (an OAuth host or a Graph host): route table, the
// optional `/vNN.N` version prefix Graph paths carry, faults applied before routing, GraphError → the
// error envelope.

export interface RequestContext {
  method: string;
  /** The path without the version prefix, e.g. `/17841400000000001/media`. */
  path: string;
  params: Params;
  raw: Buffer;
  req: IncomingMessage;
}

export interface Answer {
  status?: number;
  body?: unknown;
  /** A 302 to this URL (the OAuth authorize window). */
  redirect?: string;
  /** A plain-text page (the authorize window's own errors, the webhook challenge). */
  text?: string;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  handler: (ctx: RequestContext, match: RegExpExecArray) => Answer | Promise<Answer>;
  /** The browser-facing authorize window is never faulted: faults model the API, not the user. */
  noFaults?: boolean;
}

export interface ServerFaultAnswers {
  faults: PlatformFaults;
  /** The platform's own rate-limit error (Graph code 4 for Instagram/Threads, 130429 for WhatsApp). */
  rateLimit: () => GraphError;
}

const VERSION = /^\/v\d+(?:\.\d+)?(?=\/)/;

export class MetaHttpServer {
  readonly address = { host: '127.0.0.1', port: 0 };
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly closing = new AbortController();

  constructor(private readonly name: string, private readonly routes: Route[], private readonly faults?: ServerFaultAnswers) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://${this.address.host}:${this.address.port}`;
  }

  async listen(host: string, port = 0): Promise<string> {
    this.address.host = host;
    this.address.port = await listenOn(this.server, host, port);
    return this.url;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(VERSION, '') || '/';
    try {
      let found: [Route, RegExpExecArray] | undefined;
      for (const route of this.routes) {
        const m = route.method === method ? route.pattern.exec(path) : null;
        if (m) {
          found = [route, m];
          break;
        }
      }
      if (this.faults && !found?.[0].noFaults) {
        const { delayMs, hit } = this.faults.faults.take();
        if (delayMs > 0) await delay(delayMs, this.closing.signal);
        if (hit === 'http-5xx') throw new GraphError(500, 2, 'An unexpected error has occurred. Please retry your request later.', { transient: true });
        if (hit === 'rate-limit') throw this.faults.rateLimit();
      }
      const { params, raw } = await readGraphParams(req, url);
      if (!found) throw new GraphError(400, 100, `Unsupported ${method.toLowerCase()} request. Unknown path ${path}`, { type: 'GraphMethodException' });
      const answer = await found[0].handler({ method, path, params, raw, req }, found[1]);
      this.send(res, answer);
    } catch (err) {
      if (err instanceof GraphError) return this.send(res, { status: err.status, body: err.envelope() });
      process.stderr.write(`[emulator:${this.name}] ${(err as Error).stack ?? String(err)}\n`);
      this.send(res, { status: 500, body: new GraphError(500, 1, 'An unknown error has occurred.', { transient: true }).envelope() });
    }
  }

  private send(res: ServerResponse, a: Answer): void {
    if (res.headersSent) return;
    if (a.redirect) {
      res.writeHead(302, { location: a.redirect, 'content-length': 0 });
      res.end();
      return;
    }
    if (a.text !== undefined) {
      res.writeHead(a.status ?? 200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(a.text) });
      res.end(a.text);
      return;
    }
    const text = JSON.stringify(a.body ?? {});
    const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) };
    // Graph names the failed token in WWW-Authenticate on every OAuthException (RFC 6750 style).
    if ((a.status ?? 200) >= 400 && (a.body as { error?: { code?: number } } | undefined)?.error?.code === 190) {
      headers['www-authenticate'] = 'OAuth "Facebook Platform" "invalid_token" "Error validating access token"';
    }
    res.writeHead(a.status ?? 200, headers);
    res.end(text);
  }

  async close(): Promise<void> {
    this.closing.abort();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
