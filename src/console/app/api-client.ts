import type { ActorList, AuditEntry, ClusterView, Chat, Connection, Consent, MediaType, Message, Page, Priority, Upload, Webhook, WebhookDelivery } from './types.ts';

// The public API of API.md and nothing else. The token goes out only in the Authorization header;
// no cookies are ever set or read (credentials: 'omit').

export interface ErrorDetail { path: string; message: string }

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type NewConnection =
  | { platform: 'telegram'; kind: 'user'; phone: string }
  | { platform: 'telegram'; kind: 'user'; method: 'qr' }
  | { platform: 'telegram'; kind: 'bot'; token: string; updates?: 'poll' | 'none'; takeOver?: boolean }
  | { platform: OAuthPlatform; kind: 'account'; redirectUri?: string }
  | { platform: 'whatsapp'; kind: 'business-number'; phoneNumberId: string; accessToken: string; wabaId?: string };

/** The platforms whose connections are made by consent at the platform (API.md "OAuth platforms"). */
export const oauthPlatforms = ['instagram', 'threads', 'youtube', 'tiktok'] as const;
export type OAuthPlatform = typeof oauthPlatforms[number];

export interface NewMessage { connectionId: string; chat: string; text?: string; priority: Priority; media?: { type: MediaType; uploadId: string } }

interface RequestOptions { body?: unknown; accept?: string; headers?: Record<string, string>; raw?: Blob }

export class ApiClient {
  constructor(
    private readonly token: () => string | null,
    private readonly onUnauthorized: () => void,
    private readonly base = '',
  ) {}

  private async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { Accept: opts.accept ?? 'application/json', ...opts.headers };
    const token = this.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.raw) headers['Content-Type'] = opts.raw.type || 'application/octet-stream';
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method, headers, credentials: 'omit', cache: 'no-store',
        body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
      });
    } catch {
      throw new ApiError(0, 'NETWORK', 'The service cannot be reached');
    }
    if (res.ok) return res;
    const err = await toApiError(res);
    if (err.status === 401) this.onUnauthorized();
    throw err;
  }

  private async json<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    const res = await this.send(method, path, opts);
    return (res.status === 204 ? undefined : await res.json()) as T;
  }

  listConnections = async (): Promise<Connection[]> => {
    const all: Connection[] = [];
    // Follow cursors to the end; 20 pages of 100 is far beyond one caller's accounts.
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const q = new URLSearchParams({ limit: '100' });
      if (cursor) q.set('cursor', cursor);
      const res = await this.json<Page<Connection>>('GET', `/v1/connections?${q}`);
      all.push(...res.items);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    return all;
  };

  getConnection = (id: string) => this.json<Connection>('GET', `/v1/connections/${enc(id)}`);
  createConnection = (body: NewConnection) => this.json<Connection>('POST', '/v1/connections', { body });
  submitCode = (id: string, code: string) => this.json<Connection>('POST', `/v1/connections/${enc(id)}/code`, { body: { code } });
  submitPassword = (id: string, password: string) =>
    this.json<Connection>('POST', `/v1/connections/${enc(id)}/password`, { body: { password } });
  resendCode = (id: string) => this.json<Connection>('POST', `/v1/connections/${enc(id)}/code/resend`);
  requestRecovery = (id: string) => this.json<{ emailPattern: string }>('POST', `/v1/connections/${enc(id)}/password/recovery`);
  recoverPassword = (id: string, code: string, newPassword?: string) =>
    this.json<Connection>('POST', `/v1/connections/${enc(id)}/password/recovery/code`, { body: newPassword ? { code, newPassword } : { code } });
  reauthorize = (id: string) => this.json<Connection>('POST', `/v1/connections/${enc(id)}/reauthorize`);
  reconnect = (id: string) => this.json<Connection>('POST', `/v1/connections/${enc(id)}/reconnect`, { body: {} });
  deleteConnection = (id: string) => this.json<void>('DELETE', `/v1/connections/${enc(id)}`);
  getQr = (id: string) => this.json<{ url: string; expiresAt: string }>('GET', `/v1/connections/${enc(id)}/qr`);

  // The image needs the Authorization header, so it cannot be a plain <img src>: fetch it as a blob.
  getQrImage = async (id: string): Promise<Blob> =>
    (await this.send('GET', `/v1/connections/${enc(id)}/qr`, { accept: 'image/svg+xml, image/png;q=0.9' })).blob();

  listChats = async (id: string): Promise<Chat[]> =>
    (await this.json<Page<Chat>>('GET', `/v1/connections/${enc(id)}/chats`)).items;
  addChat = (id: string, chat: string, requireAdmin: boolean) =>
    this.json<Chat>('POST', `/v1/connections/${enc(id)}/chats`, { body: requireAdmin ? { chat, requireAdmin } : { chat } });
  refreshChat = (id: string, chatId: string) =>
    this.json<Chat>('GET', `/v1/connections/${enc(id)}/chats/${enc(chatId)}?refresh=true`);
  removeChat = (id: string, chatId: string) => this.json<void>('DELETE', `/v1/connections/${enc(id)}/chats/${enc(chatId)}`);

  // One key per submission: a retried request after a dropped answer cannot queue the text twice.
  sendMessage = (body: NewMessage, idempotencyKey: string) =>
    this.json<Message>('POST', '/v1/messages', { body, headers: { 'Idempotency-Key': idempotencyKey } });
  // The file as the raw body (its type kept): the service streams it to storage; its id goes into media.uploadId.
  uploadFile = (file: File) => this.json<Upload>('POST', `/v1/uploads?filename=${enc(file.name)}`, { raw: file });
  editMessage = (id: string, text: string) => this.json<Message>('PATCH', `/v1/messages/${enc(id)}`, { body: { text } });
  deleteMessage = (id: string) => this.json<Message>('DELETE', `/v1/messages/${enc(id)}`);
  listMessages = (query: { connectionId?: string; status?: string; limit?: number; cursor?: string; q?: string }) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    return this.json<Page<Message>>('GET', `/v1/messages?${q}`);
  };

  audit = (query: { limit?: number; cursor?: string }, all = false) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    return this.json<Page<AuditEntry>>('GET', `${all ? '/admin/audit' : '/v1/audit'}?${q}`);
  };
  listWebhooks = async (): Promise<Webhook[]> => (await this.json<{ items: Webhook[] }>('GET', '/v1/webhooks')).items;
  createWebhook = (body: { url: string; events: string[] }) => this.json<Webhook>('POST', '/v1/webhooks', { body });
  testWebhook = (id: string) => this.json<void>('POST', `/v1/webhooks/${enc(id)}/test`);
  rotateWebhookSecret = (id: string) => this.json<Webhook>('POST', `/v1/webhooks/${enc(id)}/rotate-secret`);
  setWebhookEnabled = (id: string, enabled: boolean) => this.json<Webhook>('PATCH', `/v1/webhooks/${enc(id)}`, { body: { enabled } });
  deleteWebhook = (id: string) => this.json<void>('DELETE', `/v1/webhooks/${enc(id)}`);
  webhookDeliveries = (id: string) => this.json<Page<WebhookDelivery>>('GET', `/v1/webhooks/${enc(id)}/deliveries`);
  retryWebhookDelivery = (id: string, deliveryId: string) => this.json<void>('POST', `/v1/webhooks/${enc(id)}/deliveries/${enc(deliveryId)}/retry`);
  consents = async (): Promise<Consent[]> => (await this.json<{ items: Consent[] }>('GET', '/v1/me/consents')).items;
  decideConsent = (purpose: string, granted: boolean, version: string) =>
    this.json<Consent>('PUT', `/v1/me/consents/${enc(purpose)}`, { body: { granted, version } });
  exportMe = async (): Promise<Blob> => (await this.send('GET', '/v1/me/export')).blob();
  deleteMe = () => this.json<void>('DELETE', '/v1/me');
  actors = () => this.json<ActorList>('GET', '/admin/actors');
  restartActor = (id: string) => this.json<unknown>('POST', `/admin/actors/${enc(id)}/restart`, { body: {} });
  cluster = () => this.json<ClusterView>('GET', '/admin/cluster');
}

const enc = encodeURIComponent;

const toApiError = async (res: Response): Promise<ApiError> => {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; retryAfter?: unknown; details?: unknown } } | undefined)?.error;
  const header = Number(res.headers.get('Retry-After'));
  const retryAfter = typeof e?.retryAfter === 'number' ? e.retryAfter : Number.isFinite(header) && header > 0 ? header : undefined;
  const details = Array.isArray(e?.details)
    ? e.details.map((d: { path?: unknown; message?: unknown }) => ({ path: String(d?.path ?? ''), message: String(d?.message ?? '') }))
    : [];
  return new ApiError(
    res.status,
    typeof e?.code === 'string' ? e.code : res.status === 401 ? 'UNAUTHORIZED' : `HTTP_${res.status}`,
    typeof e?.message === 'string' ? e.message : res.statusText || `HTTP ${res.status}`,
    retryAfter,
    details,
  );
};
