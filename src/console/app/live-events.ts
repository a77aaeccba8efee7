import { reconnectDelay } from './backoff.ts';
import type { LiveFrame } from './types.ts';

// The `/v1/events` socket, kept open: after a drop it comes back after 1, 2, 4 … 30 s (jittered),
// and `onOpen` lets the app re-read what it may have missed while it was away.
export type LiveState = 'connecting' | 'open' | 'waiting';

// What this module needs of a WebSocket and of the timers; the browser's by default, a test's
// (a Node `ws` client, a manual clock) otherwise.
export interface SocketLike {
  addEventListener(type: 'open' | 'close', listener: () => void): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
  close(code?: number, reason?: string): void;
}

export interface LiveEventsOptions {
  url: () => string;
  /** Subprotocols offered on each attempt (read every time: the token may have changed). */
  protocols?: () => string[];
  onFrame: (frame: LiveFrame) => void;
  onState: (state: LiveState, retryInMs?: number) => void;
  onOpen: () => void;
  connect?: (url: string, protocols: string[]) => SocketLike;
  schedule?: (fn: () => void, ms: number) => unknown;
  cancel?: (handle: unknown) => void;
  random?: () => number;
}

export class LiveEvents {
  private socket: SocketLike | null = null;
  private timer: unknown;
  private attempt = 0;
  private stopped = false;
  private readonly connectSocket: (url: string, protocols: string[]) => SocketLike;
  private readonly schedule: (fn: () => void, ms: number) => unknown;
  private readonly cancel: (handle: unknown) => void;

  constructor(private readonly opts: LiveEventsOptions) {
    this.connectSocket = opts.connect ?? ((url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike);
    this.schedule = opts.schedule ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.cancel = opts.cancel ?? ((h) => globalThis.clearTimeout(h as number));
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.cancel(this.timer);
    this.socket?.close(1000, 'signed out');
    this.socket = null;
  }

  private connect(): void {
    this.opts.onState('connecting');
    let ws: SocketLike;
    try {
      ws = this.connectSocket(this.opts.url(), this.opts.protocols?.() ?? []);
    } catch {
      this.retry();
      return;
    }
    this.socket = ws;
    ws.addEventListener('open', () => {
      this.attempt = 0;
      this.opts.onState('open');
      this.opts.onOpen();
    });
    ws.addEventListener('message', (ev) => {
      if (typeof ev.data !== 'string') return;
      let frame: unknown;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame && typeof frame === 'object' && 'type' in frame && 'data' in frame) this.opts.onFrame(frame as LiveFrame);
    });
    ws.addEventListener('close', () => {
      if (this.socket !== ws) return;
      this.socket = null;
      if (!this.stopped) this.retry();
    });
  }

  private retry(): void {
    const delay = reconnectDelay(this.attempt++, this.opts.random);
    this.opts.onState('waiting', delay);
    this.timer = this.schedule(() => this.connect(), delay);
  }
}

export const eventsUrl = (loc: { protocol: string; host: string }): string =>
  `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/events`;

// The token rides in the handshake's Sec-WebSocket-Protocol header (`bearer`, then the token; the
// server answers `bearer`), never in the URL, which proxies and access logs write down. A JWT is
// base64url and dots: valid subprotocol characters.
export const eventsProtocols = (token: string): string[] => ['bearer', token];
