import createFetchClient, { type Client as FetchClient } from 'openapi-fetch';
import { ApiError, NetworkError } from './errors.ts';
import { EventStream, type EventStreamOptions, type LiveEvent, type TokenSource } from './events.ts';
import type { components, paths } from './generated/openapi.ts';

export type { LiveEvent, TokenSource };

type Schemas = components['schemas'];
export type Connection = Schemas['Connection'];
export type ConnectionStatus = Connection['status'];
export type ConnectionPage = Schemas['ConnectionPage'];
/** One platform's create body (the document's union: a branch per platform). */
export type CreateConnection = NonNullable<paths['/v1/connections']['post']['requestBody']>['content']['application/json'];
export type Chat = Schemas['Chat'];
export type AddChat = Schemas['AddChat'];
export type Message = Schemas['Message'];
export type MessagePage = Schemas['MessagePage'];
export type SendMessage = Schemas['SendMessage'];
export type BatchMessage = Schemas['BatchMessage'];
export type QrLogin = Schemas['QrLogin'];
export type ActorList = Schemas['ActorList'];
export type ActorDetail = Schemas['ActorDetail'];
/** `GET /admin/cluster`: live nodes, and every shard's lease (owner null while free). */
export type ClusterView = Schemas['ClusterView'];

// Routes API.md describes that are not in the daemon's OpenAPI document yet, typed by hand from
// API.md. Each moves to the generated types once its route ships (uploads and the event log:
// issue 15; webhooks: issue 16).
/** `POST /v1/uploads` (API.md, "Messages beyond text"). */
export interface Upload { id: string; size: number; sha256: string; contentType: string; filename?: string; expiresAt: string }
export interface Media { type: 'photo' | 'document' | 'video' | 'audio' | 'voice' | 'animation'; uploadId?: string; url?: string; caption?: string; filename?: string }
/** `SendMessage` with the second stage's optional media (then `text` is the caption and may be left out). */
export type SendMessageInput = Omit<SendMessage, 'text'> & { text?: string; media?: Media };
export interface Webhook {
  id: string; url: string; events: string[]; description?: string; enabled: boolean; disabledReason?: string; createdAt: string;
  /** only in the answer that creates or rotates it */
  secret?: string;
}
export interface WebhookDelivery {
  id: string; webhookId: string; eventId: string; eventType: string; status: 'pending' | 'succeeded' | 'failed';
  attempts: Array<{ at: string; httpStatus?: number; error?: string; durationMs: number }>; nextAttemptAt?: string;
}
export interface EventLogPage { items: LiveEvent[]; nextSince?: string }

export interface ClientOptions {
  /** The service's address, e.g. `http://127.0.0.1:8080` (no `/v1`). */
  baseUrl: string;
  /** A JWT, or a function that returns a current one (called per request: refresh it there). */
  token: TokenSource;
  /** Defaults to the global fetch (Node ≥ 18, browsers). */
  fetch?: typeof fetch;
  /**
   * Every `POST /v1/messages` carries an `Idempotency-Key` (a random UUID unless the caller gives
   * one), and each message of a batch an `idempotencyKey`, so a retry after a lost answer never sends
   * twice. Default true; false sends none unless given.
   */
  idempotencyKeys?: boolean;
  /** Retries of a send with its idempotency key after a network error or a 502/503/504. Default 2. */
  sendRetries?: number;
  /** Passed to every EventStream (a WebSocket constructor for runtimes without a global one, …). */
  events?: Partial<EventStreamOptions>;
}

export interface UploadOptions {
  filename?: string;
  contentType?: string;
  /** bytes sent so far, and the total when known */
  onProgress?: (sent: number, total?: number) => void;
}

type Body = Blob | Uint8Array | ReadableStream<Uint8Array>;

const internals = {
  async token(source: TokenSource): Promise<string> {
    return typeof source === 'function' ? source() : source;
  },
  trimSlash: (url: string) => url.replace(/\/+$/, ''),
  newKey: () => globalThis.crypto.randomUUID(),
  sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
  retryable: (err: unknown) => err instanceof NetworkError || (err instanceof ApiError && [502, 503, 504].includes(err.status)),
  /** A body as a stream that reports how much of it was read (what fetch has sent, give or take its buffer). */
  counted(body: Body, onProgress: (sent: number) => void): ReadableStream<Uint8Array> {
    const source = body instanceof ReadableStream ? body : new Blob([body as Uint8Array]).stream();
    let sent = 0;
    return source.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sent += chunk.byteLength;
        onProgress(sent);
        controller.enqueue(chunk);
      },
    }));
  },
};

/**
 * A typed client of the Integration Service. `api` is the raw typed client (openapi-fetch over the
 * generated `paths`), for any route; the groups below return the answer's data and throw ApiError
 * (with the API's code) on a refusal and NetworkError when no answer came.
 */
export class IntegrationClient {
  readonly baseUrl: string;
  readonly api: FetchClient<paths>;
  private readonly opts: ClientOptions;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.baseUrl = internals.trimSlash(opts.baseUrl);
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.api = createFetchClient<paths>({ baseUrl: this.baseUrl, fetch: (req) => this.fetchImpl(req) });
    const token = opts.token;
    this.api.use({ async onRequest({ request }) {
      request.headers.set('authorization', `Bearer ${await internals.token(token)}`);
      return request;
    } });
  }

  /** Any call by path: JSON in and out, the envelope thrown as ApiError. For routes the generated types do not have yet. */
  async request<T>(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; query?: Record<string, string | number | boolean | undefined> } = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { authorization: `Bearer ${await internals.token(this.opts.token)}`, accept: 'application/json', ...init.headers };
    let body: RequestInit['body'];
    if (init.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = headers['content-type'] === 'application/json' ? JSON.stringify(init.body) : init.body as RequestInit['body'];
    }
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method, headers, ...(body !== undefined && { body }), ...(body instanceof ReadableStream && { duplex: 'half' }) } as RequestInit);
    } catch (err) {
      throw new NetworkError(`${method} ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw await ApiError.from(res);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>, what: string): Promise<T> {
    let result: { data?: T; error?: unknown; response: Response };
    try {
      result = await call;
    } catch (err) {
      throw new NetworkError(`${what}: ${(err as Error).message}`, { cause: err });
    }
    if (!result.response.ok) throw await ApiError.from(result.response, result.error);
    return result.data as T;
  }

  readonly connections = {
    list: (query: { status?: string; platform?: string; kind?: string; limit?: number; cursor?: string } = {}) =>
      this.unwrap(this.api.GET('/v1/connections', { params: { query: query as never } }), 'list connections') as Promise<ConnectionPage>,
    /** Every page of the list, followed by cursor. */
    all: async (query: { status?: string; platform?: string; kind?: string } = {}): Promise<Connection[]> => {
      const out: Connection[] = [];
      let cursor: string | undefined;
      do {
        const page = await this.connections.list({ ...query, limit: 100, ...(cursor && { cursor }) });
        out.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return out;
    },
    get: (id: string) => this.unwrap(this.api.GET('/v1/connections/{id}', { params: { path: { id } } }), 'get connection') as Promise<Connection>,
    create: (body: CreateConnection) => this.unwrap(this.api.POST('/v1/connections', { body }), 'create connection') as Promise<Connection>,
    remove: (id: string) => this.unwrap(this.api.DELETE('/v1/connections/{id}', { params: { path: { id } } }), 'delete connection') as Promise<void>,
    reconnect: (id: string) => this.unwrap(this.api.POST('/v1/connections/{id}/reconnect', { params: { path: { id } } }), 'reconnect') as Promise<Connection>,
    code: (id: string, code: string) => this.unwrap(this.api.POST('/v1/connections/{id}/code', { params: { path: { id } }, body: { code } }), 'send code') as Promise<Connection>,
    password: (id: string, password: string) =>
      this.unwrap(this.api.POST('/v1/connections/{id}/password', { params: { path: { id } }, body: { password } }), 'send password') as Promise<Connection>,
    qr: (id: string) => this.unwrap(this.api.GET('/v1/connections/{id}/qr', { params: { path: { id } } }), 'get QR') as Promise<QrLogin>,
  };

  readonly chats = {
    add: (connectionId: string, body: AddChat) =>
      this.unwrap(this.api.POST('/v1/connections/{id}/chats', { params: { path: { id: connectionId } }, body }), 'add chat') as Promise<Chat>,
    list: (connectionId: string) =>
      this.unwrap(this.api.GET('/v1/connections/{id}/chats', { params: { path: { id: connectionId } } }), 'list chats') as Promise<{ items: Chat[] }>,
    get: (connectionId: string, chatId: string, refresh = false) =>
      this.unwrap(this.api.GET('/v1/connections/{id}/chats/{chatId}', { params: { path: { id: connectionId, chatId }, query: { ...(refresh && { refresh }) } as never } }), 'get chat') as Promise<Chat>,
    remove: (connectionId: string, chatId: string) =>
      this.unwrap(this.api.DELETE('/v1/connections/{id}/chats/{chatId}', { params: { path: { id: connectionId, chatId } } }), 'remove chat') as Promise<void>,
  };

  readonly messages = {
    /**
     * Queues a message (202). With an idempotency key (generated unless `idempotencyKeys: false`),
     * a network error or 502/503/504 is retried with the same key: the service answers the first
     * message again instead of queuing a second.
     */
    send: async (body: SendMessageInput, opts: { idempotencyKey?: string } = {}): Promise<Message> => {
      const key = opts.idempotencyKey ?? (this.opts.idempotencyKeys === false ? undefined : internals.newKey());
      const headers: Record<string, string> = key ? { 'idempotency-key': key } : {};
      const attempts = key ? 1 + (this.opts.sendRetries ?? 2) : 1;
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.request<Message>('POST', '/v1/messages', { body, headers });
        } catch (err) {
          if (attempt >= attempts || !internals.retryable(err)) throw err;
          await internals.sleep(250 * 2 ** attempt);
        }
      }
    },
    /** All or none; each message without an `idempotencyKey` gets one (see send). */
    sendBatch: (messages: Array<SendMessageInput & { idempotencyKey?: string }>) => {
      const keyed = this.opts.idempotencyKeys === false ? messages : messages.map((m) => ({ ...m, idempotencyKey: m.idempotencyKey ?? internals.newKey() }));
      return this.request<{ items: Message[] }>('POST', '/v1/messages/batch', { body: { messages: keyed } });
    },
    get: (id: string) => this.unwrap(this.api.GET('/v1/messages/{id}', { params: { path: { id } } }), 'get message') as Promise<Message>,
    list: (query: { connectionId?: string; status?: string; limit?: number; cursor?: string } = {}) =>
      this.unwrap(this.api.GET('/v1/messages', { params: { query: query as never } }), 'list messages') as Promise<MessagePage>,
  };

  /** `POST /v1/uploads` (API.md; the route ships with issue 15): raw body, `?filename=`. */
  readonly uploads = {
    create: (body: Body, opts: UploadOptions = {}): Promise<Upload> => {
      const total = body instanceof Blob ? body.size : body instanceof Uint8Array ? body.byteLength : undefined;
      const stream = opts.onProgress ? internals.counted(body, (sent) => opts.onProgress!(sent, total)) : body;
      return this.request<Upload>('POST', '/v1/uploads', {
        body: stream, query: { filename: opts.filename },
        headers: { 'content-type': opts.contentType ?? 'application/octet-stream', ...(total !== undefined && { 'content-length': String(total) }) },
      });
    },
  };

  /** Outgoing webhooks (API.md, "Webhooks to the caller's endpoints"; the routes ship with issue 16). */
  readonly webhooks = {
    create: (body: { url: string; events: string[]; description?: string }) => this.request<Webhook>('POST', '/v1/webhooks', { body }),
    list: () => this.request<{ items: Webhook[]; nextCursor?: string }>('GET', '/v1/webhooks'),
    get: (id: string) => this.request<Webhook>('GET', `/v1/webhooks/${encodeURIComponent(id)}`),
    update: (id: string, body: { url?: string; events?: string[]; enabled?: boolean; description?: string }) =>
      this.request<Webhook>('PATCH', `/v1/webhooks/${encodeURIComponent(id)}`, { body }),
    remove: (id: string) => this.request<void>('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`),
    rotateSecret: (id: string) => this.request<Webhook>('POST', `/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`),
    test: (id: string) => this.request<unknown>('POST', `/v1/webhooks/${encodeURIComponent(id)}/test`),
    deliveries: (id: string, query: { status?: string; cursor?: string } = {}) =>
      this.request<{ items: WebhookDelivery[]; nextCursor?: string }>('GET', `/v1/webhooks/${encodeURIComponent(id)}/deliveries`, { query }),
    retry: (id: string, deliveryId: string) =>
      this.request<unknown>('POST', `/v1/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/retry`),
  };

  readonly admin = {
    actors: () => this.unwrap(this.api.GET('/admin/actors'), 'list actors') as Promise<ActorList>,
    actor: (id: string) => this.unwrap(this.api.GET('/admin/actors/{id}', { params: { path: { id } } }), 'get actor') as Promise<ActorDetail>,
    restart: (id: string) => this.unwrap(this.api.POST('/admin/actors/{id}/restart', { params: { path: { id } } }), 'restart actor'),
    /** `GET /admin/cluster` (API.md, "Several daemons"). */
    cluster: () => this.unwrap(this.api.GET('/admin/cluster'), 'cluster view'),
  };

  /**
   * The live events WebSocket, resumed with `?since=` across reconnects (see EventStream). Not
   * opened until `start()` or the first `for await`.
   */
  events(opts: Partial<EventStreamOptions> = {}): EventStream {
    return new EventStream({ ...this.opts.events, ...opts, url: `${this.baseUrl.replace(/^http/, 'ws')}/v1/events`, token: this.opts.token });
  }

  /** `GET /v1/events/log?since=&limit=`: the stored events as JSON pages (API.md; ships with issue 15). */
  eventLog(query: { since?: string; limit?: number } = {}): Promise<EventLogPage> {
    return this.request<EventLogPage>('GET', '/v1/events/log', { query });
  }
}

export function createClient(opts: ClientOptions): IntegrationClient {
  return new IntegrationClient(opts);
}
