import { ApiError } from './errors.ts';

/** One live event (API.md, "Live events" and "Events that are not lost": `id` once stored events ship). */
export interface LiveEvent<T = unknown> { id?: string; type: string; at: string; data: T }
export type TokenSource = string | (() => string | Promise<string>);

/** What the stream needs of a WebSocket: the browser's, Node 22's global one, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: { message?: string; error?: unknown }) => void) | null;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface EventStreamOptions {
  /** ws(s)://host/v1/events */
  url: string;
  token: TokenSource;
  /** Resume after this event id (`?since=`); afterwards the stream keeps its own place. */
  since?: string;
  /** Defaults to the `ws` package in Node, the global WebSocket in browsers. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays: base·2^n, capped, with jitter (0.5–1×). 1 s and 30 s, as the web console. */
  backoff?: { baseMs?: number; capMs?: number };
  /** A socket that hears nothing (no frame, no ping) this long is treated as dead: 2.5 server pings. */
  idleMs?: number;
  onEvent?: (event: LiveEvent) => void;
  onState?: (state: StreamState, info: { attempt: number; since?: string; code?: number; reason?: string }) => void;
}

// Close codes of the server (src/api/events.plugin.ts): 1001 it stops (reconnect), 1008 we read too
// slowly (reconnect), 4001 the token expired (a new token, or stop).
const tokenExpired = 4001;
const open = 1;

const internals = {
  /** `a` comes after `b`: ids are increasing integers (API.md); other shapes cannot be ordered, only told apart. */
  after(a: string, b: string): boolean {
    return /^\d+$/.test(a) && /^\d+$/.test(b) ? BigInt(a) > BigInt(b) : a !== b;
  },
  /**
   * In Node the `ws` package, whatever the version (Node 22's global WebSocket reports a refused
   * upgrade without its status, which would turn a bad token into endless retries): the same
   * behaviour on every supported Node. Elsewhere (browsers) the global WebSocket.
   */
  async defaultWebSocket(): Promise<WebSocketConstructor> {
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    const isNode = typeof process !== 'undefined' && Boolean(process.versions?.node);
    if (global && !isNode) return global;
    const ws = await import('ws');
    return ws.WebSocket as unknown as WebSocketConstructor;
  },
  /** ws reports a refused upgrade as "Unexpected server response: 401"; browsers report nothing. */
  refusedStatus(ev: { message?: string; error?: unknown }): number | undefined {
    const text = ev.message ?? (ev.error as Error | undefined)?.message ?? '';
    const m = /Unexpected server response: (\d{3})/.exec(text);
    return m ? Number(m[1]) : undefined;
  },
};

/**
 * The live events of one caller, kept flowing across disconnects. The token goes in the
 * `Sec-WebSocket-Protocol: bearer, <jwt>` offer (never in the URL). Each frame's `id` is remembered;
 * a reconnect asks for `?since=<last id>`, so the server replays what was stored meanwhile, and a
 * frame at or before the last id (the seam) is dropped. Against a server whose frames carry no id
 * (before stored events), a reconnect resumes live only.
 *
 * Use callbacks (`onEvent`) or `for await (const e of stream)`; `close()` ends both.
 */
export class EventStream implements AsyncIterable<LiveEvent> {
  lastId: string | undefined;
  private readonly opts: EventStreamOptions;
  private socket: WebSocketLike | undefined;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private started = false;
  private failure: Error | undefined;
  private readonly queue: LiveEvent[] = [];
  private readonly waiting: Array<{ resolve: (r: IteratorResult<LiveEvent>) => void; reject: (e: Error) => void }> = [];
  private refusedOnce = false;
  private iterating = false;
  private readonly openWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(opts: EventStreamOptions) {
    this.opts = opts;
    this.lastId = opts.since;
  }

  /** Opens the socket (once); resolves when the first connection is open or rejects if it is refused for good. */
  start(): Promise<void> {
    if (!this.started) {
      this.started = true;
      void this.connect();
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('event stream closed'));
    if (this.socket?.readyState === open) return Promise.resolve();
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }));
  }

  /** Stops for good: no reconnect, iteration ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    this.socket?.close(1000, 'client closing');
    this.emitState('closed', {});
    for (const w of this.openWaiters.splice(0)) w.reject(this.failure ?? new Error('event stream closed'));
    for (const w of this.waiting.splice(0)) this.failure ? w.reject(this.failure) : w.resolve({ value: undefined, done: true });
  }

  /** Drops the current socket as a network failure would (the stream reconnects and resumes). For tests and `--reconnect`. */
  dropConnection(): void {
    this.socket?.close(4000, 'client dropped the connection');
  }

  [Symbol.asyncIterator](): AsyncIterator<LiveEvent> {
    this.iterating = true;
    if (!this.started) void this.start().catch(() => undefined);
    return {
      next: () => {
        const value = this.queue.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (this.failure) return Promise.reject(this.failure);
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private emitState(state: StreamState, info: { code?: number; reason?: string }): void {
    this.opts.onState?.(state, { attempt: this.attempt, ...(this.lastId !== undefined && { since: this.lastId }), ...info });
  }

  private fail(err: Error): void {
    this.failure = err;
    this.close();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let Ctor: WebSocketConstructor;
    let token: string;
    try {
      Ctor = this.opts.WebSocket ?? await internals.defaultWebSocket();
      token = typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token;
    } catch (err) {
      return this.fail(err as Error);
    }
    if (this.closed) return;
    const url = new URL(this.opts.url);
    if (this.lastId !== undefined) url.searchParams.set('since', this.lastId);
    this.emitState(this.attempt === 0 ? 'connecting' : 'reconnecting', {});
    const ws = new Ctor(url.toString(), ['bearer', token]);
    this.socket = ws;
    let refused: number | undefined;
    ws.onopen = () => {
      this.attempt = 0;
      this.refusedOnce = false;
      this.touch();
      this.emitState('open', {});
      for (const w of this.openWaiters.splice(0)) w.resolve();
    };
    // ws (Node) also tells us about the server's pings: the link is alive even when nothing happens.
    (ws as unknown as { on?: (e: string, f: () => void) => void }).on?.('ping', () => this.touch());
    ws.onmessage = (ev) => {
      this.touch();
      let frame: LiveEvent;
      try {
        frame = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data)) as LiveEvent;
      } catch {
        return; // not one of ours
      }
      if (frame.id !== undefined) {
        const id = String(frame.id);
        if (this.lastId !== undefined && !internals.after(id, this.lastId)) return; // already delivered: the replay seam
        this.lastId = id;
      }
      this.deliver(frame);
    };
    ws.onerror = (ev) => { refused = internals.refusedStatus(ev) ?? refused; };
    ws.onclose = (ev) => {
      clearTimeout(this.idleTimer);
      if (this.socket !== ws || this.closed) return;
      if (refused === 401 || ev.code === tokenExpired) {
        // A token source that is a function may hand out a fresh token: one more try, then stop.
        if (typeof this.opts.token !== 'function' || this.refusedOnce) {
          return this.fail(new ApiError(401, { code: 'UNAUTHORIZED', message: ev.code === tokenExpired ? 'the token expired' : 'the events socket refused the token' }));
        }
        this.refusedOnce = true;
      }
      if (refused === 403 || refused === 404) return this.fail(new ApiError(refused, { code: refused === 403 ? 'FORBIDDEN' : 'NOT_FOUND', message: `the events socket answered ${refused}` }));
      this.attempt += 1;
      const { baseMs = 1000, capMs = 30_000 } = this.opts.backoff ?? {};
      const delay = Math.min(capMs, baseMs * 2 ** (this.attempt - 1)) * (0.5 + Math.random() / 2);
      this.emitState('reconnecting', { code: ev.code, reason: ev.reason });
      this.retryTimer = setTimeout(() => void this.connect(), delay);
    };
  }

  private touch(): void {
    clearTimeout(this.idleTimer);
    const idleMs = this.opts.idleMs ?? 75_000;
    const ws = this.socket;
    this.idleTimer = setTimeout(() => ws?.close(4000, 'no frame or ping'), idleMs);
    (this.idleTimer as { unref?: () => void }).unref?.();
  }

  private deliver(event: LiveEvent): void {
    this.opts.onEvent?.(event);
    const w = this.waiting.shift();
    if (w) w.resolve({ value: event, done: false });
    else if (this.iterating) this.queue.push(event); // callbacks only: nothing is kept
  }
}
