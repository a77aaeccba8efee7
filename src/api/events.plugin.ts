import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Jwt from '@hapi/jwt';
import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { WebSocket, WebSocketServer } from 'ws';
import { AppError } from '../errors.ts';
import { coalesceWrites } from '../net/coalesce-writes.ts';
import { bus, type LiveEvent } from '../events/bus.ts';
import type { EventFeed } from '../events/feed.ts';
import { ownsConnection } from '../store/chats.ts';
import { eventPos, eventTypes, lastEventPos, readEvents, type StoredEvent } from '../store/events.ts';
import { logger as defaultLogger } from '../observability/logger.ts';
import { memoryTickets, type TicketGrant, type TicketStore } from './event-tickets.ts';
import { callerIn, documented, noBody, uuid } from './schemas.ts';
import { authenticateToken, authStrategy } from './server.ts';

export interface EventsPluginOptions {
  /** default /v1/events */
  path?: string;
  /** ping interval; a client that has not answered the previous ping by the next one is dropped. 30 s (API.md) */
  pingMs?: number;
  /** a socket whose unsent frames pass this is dropped (a stalled browser must not grow memory). 1 MiB */
  maxBufferedBytes?: number;
  /** open sockets per caller; more answer 429 before upgrading. 32 (a console tab holds one) */
  maxSocketsPerCaller?: number;
  /** Where `POST /v1/events/ticket` keeps its tickets: Redis with several replicas, else memory. */
  tickets?: TicketStore;
  /**
   * Stored events (src/events/feed.ts + the events table): frames carry id and pos, `?since=` replays
   * then goes live, and GET /v1/events/log pages them. Without them (tests of the socket alone) the
   * socket forwards the in-process bus as before, without ids or replay.
   */
  feed?: EventFeed;
  sql?: postgres.Sql;
  /** events read per replay query, and per log page at most. 1000 */
  replayBatch?: number;
  /** awaited after each replay page is sent (tests hold the replay/live seam open with it) */
  afterReplayPage?: (sent: number) => Promise<void>;
  logger?: Logger;
}

interface Client {
  ws: WebSocket; owner: string; alive: boolean; expiry?: NodeJS.Timeout;
  /** the pos of the last event sent: nothing at or below it is sent again (the replay/live seam) */
  lastPos: number;
  /** while replaying, live events wait in `pending`; past maxPending they are dropped and re-read */
  replaying: boolean; pending: StoredEvent[]; overflow: boolean;
  unsubscribe?: () => void;
}

// Live events held for one socket while its replay runs; beyond this the replay reads them from the
// table again instead (they are committed), so a slow replay cannot grow memory.
const maxPending = 10_000;
const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// 15 digits stay below 2^53: a pos is exact as a JS number.
const posRe = /^\d{1,15}$/;
const sinceDescription = 'the `pos` (a number) or the `id` (a uuid) of the last event you have; events after it are returned';

// Close codes: 1001 going away (server stops), 1008 policy (too slow), 4001 the token expired (the
// console signs in again instead of reconnecting with the same token).
const closeCodes = { stopping: 1001, tooSlow: 1008, tokenExpired: 4001 } as const;
// setTimeout holds at most 2^31-1 ms (~24.8 days); a later expiry is re-checked then.
const maxTimer = 2 ** 31 - 1;
// What a client may send: nothing is read, so anything beyond a small control frame is refused.
const maxIncomingBytes = 4096;
// Sockets still open this long after the close frame at server stop are cut.
const closeGraceMs = 1000;

const statusText: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' };
// `Sec-WebSocket-Protocol: bearer, <jwt>`: browsers can set no header on a WebSocket but this one
// (`new WebSocket(url, ['bearer', jwt])`); the server answers with `bearer`, never the token.
const bearerProtocol = 'bearer';
const ticketAnswer = Joi.object({
  ticket: Joi.string().required().description('single use; pass as ?ticket= within 30 s').example('q3Vd0n1kQk8mJ0Z2c3R1dnd4eXowMTIzNDU2Nzg5YWJj'),
  expiresAt: Joi.string().isoDate().required(),
}).label('EventsTicket');

type Presented = { token: string } | { ticket: string };

const internals = {
  /** Answers a refused upgrade with a plain HTTP response in the API's error envelope, then closes. */
  refuse(socket: Duplex, status: number, code: string, message: string, retryAfter?: number): void {
    if (socket.destroyed) return;
    const body = JSON.stringify({ error: { code, message, ...(retryAfter !== undefined && { retryAfter }) } });
    const head = [
      `HTTP/1.1 ${status} ${statusText[status] ?? 'Error'}`, 'Connection: close', 'Content-Type: application/json; charset=utf-8',
      'Cache-Control: no-store', 'X-Content-Type-Options: nosniff',
      `Content-Length: ${Buffer.byteLength(body)}`, ...(status === 401 ? ['WWW-Authenticate: Bearer'] : []),
      ...(retryAfter !== undefined ? [`Retry-After: ${retryAfter}`] : []),
    ];
    socket.once('finish', () => socket.destroy());
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  },

  /**
   * What the client presented, in this order: `Authorization: Bearer`, the `bearer` subprotocol with
   * the token beside it, a `?ticket=` from POST /v1/events/ticket, and last `?access_token=` (kept
   * for old clients; discouraged: URLs end up in proxy and access logs).
   */
  presented(req: IncomingMessage, url: URL): Presented | undefined {
    const header = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (header) return { token: header };
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    if (protocols[0] === bearerProtocol && protocols[1]) return { token: protocols[1] };
    const ticket = url.searchParams.get('ticket');
    if (ticket) return { ticket };
    const query = url.searchParams.get('access_token');
    return query ? { token: query } : undefined;
  },

  /** `since` as a pos: a number is taken as is, a uuid must be one of the caller's stored events. */
  async since(sql: postgres.Sql | undefined, owner: string, raw: string | null | undefined): Promise<number | undefined> {
    if (raw === null || raw === undefined || raw === '') return undefined;
    if (posRe.test(raw)) return Number(raw);
    if (!uuidRe.test(raw)) {
      throw new AppError('VALIDATION_ERROR', '"since" must be an event pos (digits) or an event id (uuid)', { details: [{ path: 'since', message: 'must be a pos or an event id' }] });
    }
    const pos = sql ? await eventPos(sql, owner, raw) : undefined;
    if (pos === undefined) throw new AppError('NOT_FOUND', 'no such event (unknown, older than EVENT_RETENTION_HOURS, or not yours); resume by pos instead');
    return pos;
  },

  frame(e: StoredEvent): string {
    return JSON.stringify({
      id: e.id, pos: e.pos, type: e.type, at: e.occurredAt, occurredAt: e.occurredAt, ...(e.connectionId && { connectionId: e.connectionId }), data: e.data,
    });
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
    const tickets = opts.tickets ?? memoryTickets();
    const { feed, sql } = opts;
    const replayBatch = opts.replayBatch ?? 1000;
    const wss = new WebSocketServer({
      noServer: true, clientTracking: false, maxPayload: maxIncomingBytes, perMessageDeflate: false,
      // Echo `bearer` when offered (a browser drops a socket whose offered protocol goes unanswered);
      // the token, offered beside it, is never selected.
      handleProtocols: (protocols) => (protocols.has(bearerProtocol) ? bearerProtocol : false),
    });
    const byOwner = new Map<string, Set<Client>>();
    let stopping = true; // until onPostStart
    let pinger: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;

    // Lines name the caller by pseudonym (src/observability/subjects.ts), never by sub; both lines
    // here are rare (a dropped or failing socket), so the hash may be looked up as they are written.
    const logAbout = (c: Client, level: 'warn' | 'debug', message: string, fields: Record<string, unknown>) => {
      const subjects = server.plugins['integration-request-log']?.subjects;
      void (subjects ? subjects.hashOf(c.owner).catch(() => undefined) : Promise.resolve(undefined))
        .then((hash) => log.log(level, message, { ...fields, ...(hash && { user: { hash } }) }));
    };

    const send = (c: Client, frame: string) => {
      if (c.ws.readyState !== WebSocket.OPEN) return;
      if (c.ws.bufferedAmount + Buffer.byteLength(frame) > maxBuffered) {
        logAbout(c, 'warn', 'live events socket dropped: client not reading', { bufferedBytes: c.ws.bufferedAmount });
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

    // Sends one stored event unless it was sent already (a replayed event arriving live too).
    const sendStored = (c: Client, e: StoredEvent) => {
      if (e.pos <= c.lastPos) return;
      c.lastPos = e.pos;
      send(c, internals.frame(e));
    };

    // Pages the caller's stored events after lastPos onto the socket, waiting for the socket to take
    // each page (a replay of 100,000 events must not pile up in memory), then releases the live events
    // that arrived meanwhile. Live events are held from the moment the socket opened, so none falls
    // between the last page read and the switch; lastPos drops the ones the pages already had.
    const replay = async (c: Client) => {
      try {
        for (;;) {
          if (c.ws.readyState !== WebSocket.OPEN) return;
          const page = await readEvents(sql!, c.owner, { afterPos: c.lastPos, limit: replayBatch });
          for (const e of page) {
            if (e.pos <= c.lastPos) continue;
            c.lastPos = e.pos;
            const frame = internals.frame(e);
            if (c.ws.bufferedAmount > maxBuffered / 2) {
              await new Promise<void>((resolve) => c.ws.send(frame, () => resolve()));
            } else {
              c.ws.send(frame);
            }
          }
          await opts.afterReplayPage?.(page.length);
          if (page.length === replayBatch) continue;
          if (c.overflow) {
            c.overflow = false;
            continue;
          }
          const held = c.pending;
          c.pending = [];
          c.replaying = false;
          for (const e of held) sendStored(c, e);
          return;
        }
      } catch (err) {
        logAbout(c, 'warn', 'live events replay failed', { error: (err as Error).message });
        // 1011: the server could not finish; the client reconnects with the last pos it got.
        if (c.ws.readyState === WebSocket.OPEN) c.ws.close(1011, 'replay failed; reconnect with since');
      }
    };

    const attach = (ws: WebSocket, grant: TicketGrant, since?: number) => {
      const c: Client = { ws, owner: grant.sub, alive: true, lastPos: since ?? feed?.pos ?? 0, replaying: since !== undefined && feed !== undefined, pending: [], overflow: false };
      if (feed) {
        c.unsubscribe = feed.subscribe(c.owner, (e) => {
          if (!c.replaying) return sendStored(c, e);
          if (c.pending.length >= maxPending) {
            c.pending = [];
            c.overflow = true;
          }
          if (!c.overflow) c.pending.push(e);
        });
        if (c.replaying) void replay(c);
      }
      const set = byOwner.get(c.owner) ?? new Set<Client>();
      byOwner.set(c.owner, set.add(c));
      const expireAt = grant.tokenExpiresAt;
      const armExpiry = (): void => {
        if (expireAt === undefined) return;
        const left = expireAt - Date.now();
        if (left <= 0) return ws.close(closeCodes.tokenExpired, 'token expired');
        c.expiry = setTimeout(armExpiry, Math.min(left, maxTimer));
      };
      armExpiry();
      ws.on('pong', () => { c.alive = true; });
      ws.on('error', (err) => logAbout(c, 'debug', 'live events socket error', { error: err.message }));
      ws.on('close', () => {
        clearTimeout(c.expiry);
        c.unsubscribe?.();
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
      const presented = internals.presented(req, url);
      // The upgrade never enters Hapi's request cycle: the same limits as a GET under /v1 are taken
      // here, per address before the token is looked at, then in the caller's `status` budget.
      const limits = server.plugins['integration-rate-limit'];
      const open = async (): Promise<{ grant: TicketGrant; since?: number }> => {
        await limits?.takeAddress(limits.clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for']));
        if (!presented) throw new AppError('UNAUTHORIZED', 'authentication required');
        let grant: TicketGrant;
        if ('ticket' in presented) {
          const taken = await tickets.take(presented.ticket).catch((err: unknown) => {
            throw new AppError('DEPENDENCY_UNAVAILABLE', 'live-event tickets cannot be read right now; retry shortly', { cause: err });
          });
          if (!taken) throw new AppError('UNAUTHORIZED', 'invalid or used ticket');
          grant = taken;
        } else {
          const caller = await authenticateToken(server, presented.token);
          const tokenExpiresAt = internals.expiresAt(presented.token);
          grant = tokenExpiresAt === undefined ? { sub: caller.sub } : { sub: caller.sub, tokenExpiresAt };
        }
        await limits?.take('status', grant.sub);
        if (!feed) return { grant };
        // Without since: everything committed after this moment, read from the table (the feed may
        // not have handed out what was committed just before, which must not arrive as "new").
        const since = await internals.since(sql, grant.sub, url.searchParams.get('since')) ?? await lastEventPos(sql!);
        return { grant, since };
      };
      open().then(({ grant, since }) => {
        if (socket.destroyed) return;
        if (stopping) return internals.refuse(socket, 503, 'DEPENDENCY_UNAVAILABLE', 'server is stopping; reconnect shortly');
        if ((byOwner.get(grant.sub)?.size ?? 0) >= maxPerCaller) {
          return internals.refuse(socket, 429, 'RATE_LIMITED', `at most ${maxPerCaller} live event sockets per caller`);
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          // One write per loop turn for all the frames of a turn (3 status events per message).
          if (socket instanceof Socket) coalesceWrites(socket);
          attach(ws, grant, since);
        });
      }, (err: unknown) => {
        if (!(err instanceof AppError)) {
          log.error('live events authentication failed', { error: (err as Error).message });
          return internals.refuse(socket, 401, 'UNAUTHORIZED', 'invalid token');
        }
        if (err.code === 'RATE_LIMITED') return internals.refuse(socket, 429, err.code, err.message, err.retryAfter);
        if (err.code === 'VALIDATION_ERROR') return internals.refuse(socket, 400, err.code, err.message);
        if (err.code === 'NOT_FOUND') return internals.refuse(socket, 404, err.code, err.message);
        const unavailable = err.code === 'DEPENDENCY_UNAVAILABLE';
        internals.refuse(socket, unavailable ? 503 : 401, unavailable ? err.code : 'UNAUTHORIZED', err.message);
      });
    };
    server.listener.on('upgrade', onUpgrade);

    server.ext('onPostStart', () => {
      stopping = false;
      if (!feed) unsubscribe = bus.subscribe(onEvent);
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
          'Upgrade to a WebSocket (`Upgrade: websocket`). Authenticate with `Authorization: Bearer <jwt>`; from a browser, which',
          'cannot set that header, offer the subprotocols `bearer` and the token (`new WebSocket(url, [\'bearer\', jwt])`: the',
          'server answers `Sec-WebSocket-Protocol: bearer`), or pass a single-use `?ticket=` from `POST /v1/events/ticket`.',
          '`?access_token=<jwt>` still works but is discouraged: URLs are written to proxy and access logs.',
          'A missing or bad token or ticket is refused with 401 before upgrading. Opening a socket counts in the `status` group.',
          'Frames are JSON `{ "type", "at", "data" }` for your own resources only: `connection.status` (data: Connection),',
          '`message.status` (data: Message), `message.received` (data: `{ connectionId, chat, from, text, platformMessageId, date }`).',
          `The server pings every ${Math.round(pingMs / 1000)} s and drops a client that has not answered the previous ping;`,
          `a client that stops reading is dropped once ${Math.round(maxBuffered / 1024)} KiB of frames wait (close 1008).`,
          'Close 1001: the daemon stops or restarts; close 4001: the token expired (sign in again).',
          'Every event is stored before it is pushed (kept EVENT_RETENTION_HOURS, 72) and its frame carries `id` (uuid) and',
          '`pos` (increasing): `{ "id", "pos", "type", "at", "occurredAt", "connectionId"?, "data" }`. Reconnect with',
          '`?since=<pos or id>` of the last frame you got: the stored events after it are replayed, then live ones follow, with no',
          'gap and no duplicate at the seam. A malformed `since` is refused with 400, an event id that is not yours (or expired)',
          'with 404, before upgrading. A plain GET without the upgrade is a 400.',
        ].join(' '),
        validate: { query: Joi.object({
          since: Joi.string().max(64).description(sinceDescription),
          access_token: Joi.string(), ticket: Joi.string(),
        }).label('EventsSocketQuery') },
        ...documented({ 101: { description: 'Switching Protocols: the WebSocket is open' } },
          { 404: 'NOT_FOUND: `since` names an event id that is not yours or has expired', 400: 'VALIDATION_ERROR: not a WebSocket upgrade, or a malformed `since`', 429: 'RATE_LIMITED (also: too many open sockets)', 503: 'DEPENDENCY_UNAVAILABLE: stopping' }),
      },
      handler: () => {
        throw new AppError('VALIDATION_ERROR', `${path} needs a WebSocket upgrade (Upgrade: websocket)`);
      },
    });

    server.route({
      method: 'POST', path: `${path}/ticket`,
      options: {
        tags: ['api', 'events'], auth: authStrategy, description: 'A single-use ticket to open the live-events socket',
        notes: [
          `For clients that can put nothing but a URL on the socket: open \`${path}?ticket=<ticket>\` within 30 s. The ticket`,
          'works once, stands for the caller who asked for it, and the socket it opens closes (4001) when that caller\'s',
          'token expires. A logged ticket is worthless: used or expired. Counts in the `status` group. No body.',
        ].join(' '),
        validate: { payload: noBody },
        ...documented({ 201: { schema: ticketAnswer, description: 'The ticket' } }, { 503: 'DEPENDENCY_UNAVAILABLE: the ticket store (Redis) is down' },
          { rateLimit: { group: 'status' } }),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const exp = (request.auth.artifacts as { decoded?: { payload?: { exp?: unknown } } }).decoded?.payload?.exp;
        const grant: TicketGrant = typeof exp === 'number' ? { sub, tokenExpiresAt: exp * 1000 } : { sub };
        const issued = await tickets.issue(grant).catch((err: unknown) => {
          throw new AppError('DEPENDENCY_UNAVAILABLE', 'live-event tickets cannot be issued right now; retry shortly', { cause: err });
        });
        return h.response(issued).code(201);
      },
    });

    if (sql) {
      const eventSchema = Joi.object({
        id: Joi.string().required().description('uuid; the same wherever the event is delivered (WebSocket, RabbitMQ messageId, webhook-id)'),
        pos: Joi.number().integer().required().description('increasing in commit order; resume after it with since'),
        type: Joi.string().valid(...eventTypes).required(),
        at: Joi.string().isoDate().required().description('same as occurredAt (the v1 frame field)'),
        occurredAt: Joi.string().isoDate().required(),
        connectionId: Joi.string(),
        data: Joi.any().required().description('connection.status: Connection; message.status: Message; message.received: { messageId, connectionId, chat, from, text, platformMessageId, date }'),
      }).label('Event');
      const logPage = Joi.object({
        items: Joi.array().items(eventSchema).required(),
        nextSince: Joi.string().description('present when the page is full: the last pos, pass it as since for the next page'),
      }).label('EventLogPage');
      const logQuery = Joi.object({
        since: Joi.string().max(64).pattern(/^(\d{1,15}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/)
          .messages({ 'string.pattern.base': '"since" must be an event pos (digits) or an event id (uuid)' }).description(sinceDescription),
        limit: Joi.number().integer().min(1).max(replayBatch).default(100),
        type: Joi.array().items(Joi.string().valid(...eventTypes)).single().description('only these types (repeat the parameter for several)'),
        connectionId: uuid.description('only events of this connection (yours, else 404)'),
      }).label('EventLogQuery');
      server.route<{ Query: { since?: string; limit: number; type?: string[]; connectionId?: string } }>({
        method: 'GET', path: `${path}/log`,
        options: {
          tags: ['api', 'events'], auth: authStrategy, description: 'Stored events as JSON pages (for clients without WebSockets)',
          notes: [
            'The same events, envelope and order as the live socket, oldest first, after `since` (none: from the oldest kept;',
            'events are kept EVENT_RETENTION_HOURS, 72). A full page carries `nextSince` (the last pos; the name the client uses): pass it as `since`.',
            'A short page means you are up to date; poll again with the last `pos` you got.',
          ].join(' '),
          validate: { query: logQuery },
          ...documented({ 200: { schema: logPage, description: 'A page of events' } },
            { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND: `since` names an event that is not yours or expired, or `connectionId` is not yours' }),
        },
        handler: async (request) => {
          const { sub } = callerIn(request);
          const q = request.query;
          if (q.connectionId !== undefined && !(await ownsConnection(sql, sub, q.connectionId))) throw new AppError('NOT_FOUND', 'connection not found');
          const afterPos = (await internals.since(sql, sub, q.since)) ?? 0;
          const items = await readEvents(sql, sub, {
            afterPos, limit: q.limit, ...(q.type && { types: q.type }), ...(q.connectionId && { connectionId: q.connectionId }),
          });
          const view = items.map((e) => ({
            id: e.id, pos: e.pos, type: e.type, at: e.occurredAt, occurredAt: e.occurredAt, ...(e.connectionId && { connectionId: e.connectionId }), data: e.data,
          }));
          return items.length === q.limit ? { items: view, nextSince: String(items.at(-1)!.pos) } : { items: view };
        },
      });
    }
  },
};
