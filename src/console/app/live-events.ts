import { reconnectDelay } from './backoff.ts';
import type { LiveFrame } from './types.ts';

// The `/v1/events` socket, kept open: after a drop it comes back after 1, 2, 4 … 30 s (jittered),
// and `onOpen` lets the app re-read what it may have missed while it was away.
export type LiveState = 'connecting' | 'open' | 'waiting';

export interface LiveEventsOptions {
  url: () => string;
  onFrame: (frame: LiveFrame) => void;
  onState: (state: LiveState, retryInMs?: number) => void;
  onOpen: () => void;
}

export class LiveEvents {
  private socket: WebSocket | null = null;
  private timer: number | undefined;
  private attempt = 0;
  private stopped = false;

  constructor(private readonly opts: LiveEventsOptions) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, 'signed out');
    this.socket = null;
  }

  private connect(): void {
    this.opts.onState('connecting');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url());
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
      if (this.socket === ws) this.socket = null;
      if (!this.stopped) this.retry();
    });
  }

  private retry(): void {
    const delay = reconnectDelay(this.attempt++);
    this.opts.onState('waiting', delay);
    this.timer = window.setTimeout(() => this.connect(), delay);
  }
}

export const eventsUrl = (token: string, loc: Location = location): string =>
  `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/events?access_token=${encodeURIComponent(token)}`;
