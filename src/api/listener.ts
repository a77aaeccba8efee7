import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Server } from '@hapi/hapi';
import { errorSpec } from '../errors.ts';

const timeoutStatus = errorSpec('REQUEST_TIMEOUT')!.status;

export interface ListenerLimits {
  /** Headers and body of one request must arrive within this; 408 otherwise. Default 30 s. */
  requestTimeoutMs?: number;
  /** Open sockets the listener accepts (WebSockets included); further ones are closed at once. 0: no cap. */
  maxConnections?: number;
  /**
   * Requests whose body may take longer than requestTimeoutMs (file uploads): their own deadline in
   * ms, by method and URL; undefined for every other request.
   */
  longRequest?: (method: string, url: string) => number | undefined;
}

export const listenerDefaults = { requestTimeoutMs: 30_000, maxConnections: 0 };
// Headers come in one or two packets from any real client; 10 s (Node's default is 60 s) is plenty
// and frees a socket held by a client that dribbles header bytes.
const maxHeadersTimeoutMs = 10_000;
// Node checks the deadlines on an interval (30 s by default, so a deadline could overrun by 30 s).
// Once a second costs one walk over the open connections' list in C++.
const maxCheckIntervalMs = 1_000;

const timeoutAnswer = ((): Buffer => {
  const body = JSON.stringify({ error: { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time; send it again' } });
  return Buffer.from([
    `HTTP/1.1 ${timeoutStatus} Request Timeout`, 'Connection: close', 'Content-Type: application/json; charset=utf-8',
    'Cache-Control: no-store', 'X-Content-Type-Options: nosniff', `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ].join('\r\n'));
})();

/**
 * Bounds how long one client can hold a socket without sending (slowloris: headers or a body
 * dribbled a byte at a time). Node's `headersTimeout`/`requestTimeout` give the deadlines; when one
 * passes, the client gets a 408 in the API's error envelope and the socket is closed.
 *
 * Why not Hapi's own `payload.timeout`: it raises its 408 but then waits for the rest of the body
 * before answering (it drains the request to keep the connection usable), which is exactly what a
 * slow client never finishes; the socket stayed until Node's 300 s default.
 */
export function limitListener(server: Server, limits: ListenerLimits = {}): void {
  const requestTimeoutMs = limits.requestTimeoutMs ?? listenerDefaults.requestTimeoutMs;
  // connectionsCheckingInterval is a documented Server property (Node 18.12+) that @types/node 20 lacks.
  const listener = server.listener as HttpServer & { connectionsCheckingInterval: number };
  listener.requestTimeout = requestTimeoutMs;
  listener.headersTimeout = Math.min(maxHeadersTimeoutMs, requestTimeoutMs);
  // Read by Node when the server starts listening (setupConnectionsTracking), so set before start.
  listener.connectionsCheckingInterval = Math.max(10, Math.min(maxCheckIntervalMs, Math.floor(requestTimeoutMs / 4)));
  if (limits.maxConnections) listener.maxConnections = limits.maxConnections;

  // The answer in flight on each socket: a timeout after it started writing can only close.
  const inFlight = new WeakMap<Socket, ServerResponse>();
  // Long requests (uploads) by socket: Node's requestTimeout is one value for the whole listener, so
  // its expiry is ignored for them and their own deadline is kept by a timer instead.
  const long = new WeakMap<Socket, { deadline: number }>();
  listener.prependListener('request', (req, res) => {
    inFlight.set(req.socket, res);
    const ms = limits.longRequest?.(req.method ?? '', req.url ?? '');
    let timer: NodeJS.Timeout | undefined;
    if (ms !== undefined && ms > requestTimeoutMs) {
      const socket = req.socket;
      long.set(socket, { deadline: Date.now() + ms });
      timer = setTimeout(() => { if (!req.complete) timedOut(socket); }, ms);
      timer.unref();
    }
    res.once('close', () => {
      clearTimeout(timer);
      if (inFlight.get(req.socket) === res) inFlight.delete(req.socket);
      long.delete(req.socket);
    });
  });

  // Hapi's clientError handler answers every client error with a bare 400; timeouts are ours.
  const others = listener.listeners('clientError') as Array<(err: Error, socket: Socket) => void>;
  listener.removeAllListeners('clientError');
  listener.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
      for (const handler of others) handler.call(listener, err, socket);
      return;
    }
    const longOne = long.get(socket);
    if (longOne && Date.now() < longOne.deadline) {
      // Node stopped watching this request and detached its error handler from the socket: the
      // request goes on under its own deadline, and the socket is closed after its answer.
      const res = inFlight.get(socket);
      if (res) res.shouldKeepAlive = false;
      return;
    }
    timedOut(socket);
  });

  function timedOut(socket: Socket): void {
    const res = inFlight.get(socket);
    if (res) res.statusCode = timeoutStatus; // for the request log: Hapi logs the request when it gives up
    if (!socket.writable || res?.headersSent) {
      socket.destroy();
      return;
    }
    // Ended after the answer is flushed; a client that does not read it either is cut after 1 s.
    const cut = setTimeout(() => socket.destroy(), 1_000);
    cut.unref();
    socket.end(timeoutAnswer, () => {
      clearTimeout(cut);
      socket.destroy();
    });
  }
}
