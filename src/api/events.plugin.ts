import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Jwt from '@hapi/jwt';
import type { Plugin } from '@hapi/hapi';
import type { Logger } from 'winston';
import { WebSocket, WebSocketServer } from 'ws';
import { AppError } from '../errors.ts';
import { bus, type LiveEvent } from '../events/bus.ts';
import { logger as defaultLogger } from '../observability/logger.ts';
import { documented } from './schemas.ts';
import { authenticateToken, authStrategy, type Caller } from './server.ts';

export interface EventsPluginOptions {
  /** default /v1/events */
  path?: string;
  /** ping interval; a client that has not answered the previous ping by the next one is dropped. 30 s (API.md) */
  pingMs?: number;
  /** a socket whose unsent frames pass this is dropped (a stalled browser must not grow memory). 1 MiB */
  maxBufferedBytes?: number;
  /** open sockets per caller; more answer 429 before upgrading. 32 (a console tab holds one) */
  maxSocketsPerCaller?: number;
  logger?: Logger;
}

interface Client { ws: WebSocket; owner: string; alive: boolean; expiry?: NodeJS.Timeout }

// Close codes: 1001 going away (server stops), 1008 policy (too slow), 4001 the token expired (the
// console signs in again instead of reconnecting with the same token).
const closeCodes = { stopping: 1001, tooSlow: 1008, tokenExpired: 4001 } as const;
// setTimeout holds at most 2^31-1 ms (~24.8 days); a later expiry is re-checked then.
const maxTimer = 2 ** 31 - 1;
// What a client may send: nothing is read, so anything beyond a small control frame is refused.
const maxIncomingBytes = 4096;
// Sockets still open this long after the close frame at server stop are cut.
const closeGraceMs = 1000;

const statusText: Record<number, string> = { 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' };

const internals = {
  /** Answers a refused upgrade with a plain HTTP response in the API's error envelope, then closes. */
  refuse(socket: Duplex, status: number, code: string, message: string): void {
    if (socket.destroyed) return;
    const body = JSON.stringify({ error: { code, message } });
    const head = [
      `HTTP/1.1 ${status} ${statusText[status] ?? 'Error'}`, 'Connection: close', 'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`, ...(status === 401 ? ['WWW-Authenticate: Bearer'] : []),
    ];
    socket.once('finish', () => socket.destroy());
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  },

  /** `Authorization: Bearer …` first; browsers cannot set headers on a WebSocket, hence `?access_token=`. */
  tokenOf(req: IncomingMessage, url: URL): string | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return m?.[1] ?? (url.searchParams.get('access_token') || undefined);
  },

  /** Epoch ms of the token's `exp` (already verified by authenticateToken). */
  expiresAt(token: string): number | undefined {
    const exp = (Jwt.token.decode(token).decoded.payload as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  },
};

/**
 * GET /v1/events: a WebSocket (ws, noServer) on the Hapi listener's `upgrade` event. The token is
 * checked before upgrading (401 otherwise); frames `{ type, at, data }` carry the caller's own events
 * from the in-process bus. There is no cookie auth, so a page of another origin cannot open a socket
 * on someone's behalf without their token: no Origin check is needed.
 */
export const eventsPlugin: Plugin<EventsPluginOptions> = {
  name: 'integration-events',
  dependencies: ['integration-auth'],
  register(server, opts) {
    const path = opts.path ?? '/v1/events';
    const pingMs = opts.pingMs ?? 30_000;
    const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    const maxPerCaller = opts.maxSocketsPerCaller ?? 32;
    const log = opts.logger ?? defaultLogger;
    const wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: maxIncomingBytes, perMessageDeflate: false });
    const byOwner = new Map<string, Set<Client>>();
    let stopping = true; // until onPostStart
    let pinger: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;

    const send = (c: Client, frame: string) => {
      if (c.ws.readyState !== WebSocket.OPEN) return;
      if (c.ws.bufferedAmount + Buffer.byteLength(frame) > maxBuffered) {
        log.warn('live events socket dropped: client not reading', { owner: c.owner, bufferedBytes: c.ws.bufferedAmount });
        c.ws.terminate();
        return;
      }
      c.ws.send(frame);
    };

    const onEvent = (event: LiveEvent) => {
      const clients = byOwner.get(event.owner);
      if (!clients) return;
      const frame = JSON.stringify({ type: event.type, at: event.at, data: event.data });
      for (const c of clients) send(c, frame);
    };

    const ping = () => {
      for (const clients of byOwner.values()) {
        for (const c of clients) {
          if (!c.alive) {
            c.ws.terminate();
            continue;
          }
          c.alive = false;
          c.ws.ping();
        }
      }
    };

    const attach = (ws: WebSocket, caller: Caller, token: string) => {
      const c: Client = { ws, owner: caller.sub, alive: true };
      const set = byOwner.get(c.owner) ?? new Set<Client>();
      byOwner.set(c.owner, set.add(c));
      const expireAt = internals.expiresAt(token);
      const armExpiry = (): void => {
        if (expireAt === undefined) return;
        const left = expireAt - Date.now();
        if (left <= 0) return ws.close(closeCodes.tokenExpired, 'token expired');
        c.expiry = setTimeout(armExpiry, Math.min(left, maxTimer));
      };
      armExpiry();
      ws.on('pong', () => { c.alive = true; });
      ws.on('error', (err) => log.debug('live events socket error', { owner: c.owner, error: err.message }));
      ws.on('close', () => {
        clearTimeout(c.expiry);
        set.delete(c);
        if (set.size === 0 && byOwner.get(c.owner) === set) byOwner.delete(c.owner);
      });
    };

    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== path) {
        // Other upgrade listeners (none today) own their paths; alone, we answer like Hapi would.
        if (server.listener.listenerCount('upgrade') === 1) internals.refuse(socket, 404, 'NOT_FOUND', 'not found');
        return;
      }
      // A client that goes away mid-handshake must not raise an unhandled 'error'.
      socket.on('error', () => socket.destroy());
      if (stopping) return internals.refuse(socket, 503, 'DEPENDENCY_UNAVAILABLE', 'server is stopping; reconnect shortly');
      const token = internals.tokenOf(req, url);
      if (!token) return internals.refuse(socket, 401, 'UNAUTHORIZED', 'authentication required');
      authenticateToken(server, token).then((caller) => {
        if (socket.destroyed) return;
        if (stopping) return internals.refuse(socket, 503, 'DEPENDENCY_UNAVAILABLE', 'server is stopping; reconnect shortly');
        if ((byOwner.get(caller.sub)?.size ?? 0) >= maxPerCaller) {
          return internals.refuse(socket, 429, 'RATE_LIMITED', `at most ${maxPerCaller} live event sockets per caller`);
        }
        wss.handleUpgrade(req, socket, head, (ws) => attach(ws, caller, token));
      }, (err: unknown) => {
        const unavailable = err instanceof AppError && err.code === 'DEPENDENCY_UNAVAILABLE';
        if (!(err instanceof AppError)) log.error('live events authentication failed', { error: (err as Error).message });
        internals.refuse(socket, unavailable ? 503 : 401, unavailable ? 'DEPENDENCY_UNAVAILABLE' : 'UNAUTHORIZED',
          err instanceof AppError ? err.message : 'invalid token');
      });
    };
    server.listener.on('upgrade', onUpgrade);

    server.ext('onPostStart', () => {
      stopping = false;
      unsubscribe = bus.subscribe(onEvent);
      pinger = setInterval(ping, pingMs);
    });

    server.ext('onPreStop', async () => {
      stopping = true;
      clearInterval(pinger);
      unsubscribe?.();
      const open = [...byOwner.values()].flatMap((s) => [...s]);
      await Promise.all(open.map((c) => new Promise<void>((resolve) => {
        if (c.ws.readyState === WebSocket.CLOSED) return resolve();
        const cut = setTimeout(() => c.ws.terminate(), closeGraceMs);
        c.ws.once('close', () => { clearTimeout(cut); resolve(); });
        c.ws.close(closeCodes.stopping, 'server stopping');
      })));
    });

    // Only reached without an Upgrade header (with one, the listener's `upgrade` event takes the
    // request before Hapi): here for the OpenAPI description and a clear answer to plain GETs.
    server.route({
      method: 'GET', path,
      options: {
        tags: ['api', 'events'], auth: authStrategy, description: 'Live events (WebSocket)',
        notes: [
          'Upgrade to a WebSocket (`Upgrade: websocket`); the token goes in `Authorization: Bearer` or, from browsers, `?access_token=`.',
          'A missing or bad token is refused with 401 before upgrading.',
          'Frames are JSON `{ "type", "at", "data" }` for your own resources only: `connection.status` (data: Connection),',
          '`message.status` (data: Message), `message.received` (data: `{ connectionId, chat, from, text, platformMessageId, date }`).',
          `The server pings every ${Math.round(pingMs / 1000)} s and drops a client that has not answered the previous ping;`,
          `a client that stops reading is dropped once ${Math.round(maxBuffered / 1024)} KiB of frames wait (close 1008).`,
          'Close 1001: the daemon stops or restarts; close 4001: the token expired (sign in again).',
          'Events are not replayed: a client reconnects (the web console after 1, 2, 4 … 30 s, jittered) and re-reads',
          'the resources it shows, which covers anything sent while it was away. A plain GET without the upgrade is a 400.',
        ].join(' '),
        ...documented({ 101: { description: 'Switching Protocols: the WebSocket is open' } },
          { 400: 'VALIDATION_ERROR: not a WebSocket upgrade', 429: 'RATE_LIMITED (also: too many open sockets)', 503: 'DEPENDENCY_UNAVAILABLE: stopping' }),
      },
      handler: () => {
        throw new AppError('VALIDATION_ERROR', `${path} needs a WebSocket upgrade (Upgrade: websocket)`);
      },
    });
  },
};
