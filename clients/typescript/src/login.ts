import type { Connection, ConnectionStatus, IntegrationClient, QrLogin } from './client.ts';
import { ApiError } from './errors.ts';

/** A login that ended in `error` (or was given up): the connection's own error code, e.g. TG_PHONE_BANNED. */
export class LoginError extends Error {
  readonly code: string;
  readonly connection: Connection | undefined;
  constructor(code: string, message: string, connection?: Connection) {
    super(message);
    this.name = 'LoginError';
    this.code = code;
    this.connection = connection;
  }
}

export interface WaitOptions {
  /** between reads of the connection; 500 ms */
  pollMs?: number;
  /** give up after; 120 s (Telegram's codes live a few minutes, a QR 30 s per token) */
  timeoutMs?: number;
  signal?: AbortSignal;
  onStatus?: (connection: Connection) => void;
}

const settled: ConnectionStatus[] = ['awaiting-code', 'awaiting-qr', 'awaiting-2fa', 'awaiting-authorization', 'active', 'error', 'stopped'];
// A wrong code or password may be typed again; Telegram itself locks out after a few more.
const maxTries = 3;

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason as Error); }, { once: true });
});

/** Reads the connection until `done(c)` holds; an `error` status ends it with LoginError. */
export async function waitForConnection(client: IntegrationClient, id: string, done: (c: Connection) => boolean, opts: WaitOptions = {}): Promise<Connection> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let last: string | undefined;
  for (;;) {
    opts.signal?.throwIfAborted();
    const c = await client.connections.get(id);
    const seen = `${c.status}:${c.login?.qr?.url ?? ''}`;
    if (seen !== last) opts.onStatus?.(c);
    last = seen;
    if (done(c)) return c;
    if (c.status === 'error' || c.status === 'stopped') {
      throw new LoginError(c.error?.code ?? 'LOGIN_FAILED', c.error?.message ?? `the connection is ${c.status}`, c);
    }
    if (Date.now() > deadline) throw new LoginError('LOGIN_TIMEOUT', `still ${c.status} after ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s`, c);
    await sleep(opts.pollMs ?? 500, opts.signal);
  }
}

const isSettled = (c: Connection) => settled.includes(c.status);

/** Asks `ask` until the step is accepted; a refusal with `retryCode` asks again (up to 3 times), anything else is thrown. */
async function step(ask: () => Promise<string>, send: (value: string) => Promise<Connection>, retryCode: string, onRetry?: (err: ApiError) => void): Promise<Connection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send(await ask());
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== retryCode || attempt >= maxTries) throw err;
      onRetry?.(err);
    }
  }
}

export interface PasswordStep {
  /** The 2FA password (the hint Telegram keeps for it, if any). Used once, never stored. */
  password?: (hint: string | undefined, connection: Connection) => Promise<string>;
  /** A wrong code or password, before asking again. */
  onRetry?: (err: ApiError) => void;
}

async function finish(client: IntegrationClient, c: Connection, opts: PasswordStep & WaitOptions): Promise<Connection> {
  if (c.status === 'awaiting-2fa') {
    if (!opts.password) throw new LoginError('TG_2FA_REQUIRED', 'the account has a 2FA password and no password step was given', c);
    const ask = opts.password;
    c = await step(() => ask(c.login?.passwordHint ?? undefined, c), (pw) => client.connections.password(c.id, pw), 'TG_PASSWORD_INVALID', opts.onRetry);
    opts.onStatus?.(c);
  }
  return c.status === 'active' ? c : waitForConnection(client, c.id, (x) => x.status === 'active', opts);
}

export interface PhoneLoginOptions extends PasswordStep, WaitOptions {
  phone: string;
  /** The code Telegram sent (in the app, by SMS, …; `connection.login.codeType` says where). */
  code: (connection: Connection) => Promise<string>;
}

/** phone → code → (2FA password) → active. */
export async function loginWithPhone(client: IntegrationClient, opts: PhoneLoginOptions): Promise<Connection> {
  let c = await client.connections.create({ platform: 'telegram', kind: 'user', phone: opts.phone });
  opts.onStatus?.(c);
  c = await waitForConnection(client, c.id, isSettled, opts);
  if (c.status === 'awaiting-code') {
    const waiting = c;
    c = await step(() => opts.code(waiting), (code) => client.connections.code(waiting.id, code), 'TG_CODE_INVALID', opts.onRetry);
    opts.onStatus?.(c);
  }
  return finish(client, c, opts);
}

export interface QrLoginOptions extends PasswordStep, WaitOptions {
  /** Show this QR (`tg://login?token=…`); called again whenever it is renewed (Telegram's tokens live ~30 s). */
  onQr: (qr: QrLogin, connection: Connection) => void;
}

/** QR → scanned in the Telegram app → (2FA password) → active. */
export async function loginWithQr(client: IntegrationClient, opts: QrLoginOptions): Promise<Connection> {
  let c = await client.connections.create({ platform: 'telegram', kind: 'user', method: 'qr' });
  let shown: string | undefined;
  const show = (x: Connection) => {
    const qr = x.login?.qr;
    if (x.status === 'awaiting-qr' && qr?.url && qr.url !== shown) {
      shown = qr.url;
      opts.onQr(qr as QrLogin, x);
    }
  };
  show(c);
  // Long enough for a person to find the phone; the QR renews itself meanwhile.
  c = await waitForConnection(client, c.id, (x) => { show(x); return x.status === 'active' || x.status === 'awaiting-2fa'; }, { timeoutMs: 300_000, ...opts });
  return finish(client, c, opts);
}

/** A bot by its token: active at once, or ApiError TG_BOT_TOKEN_INVALID. */
export async function connectBot(client: IntegrationClient, opts: { token: string; updates?: 'poll' | 'none' }): Promise<Connection> {
  return client.connections.create({ platform: 'telegram', kind: 'bot', token: opts.token, ...(opts.updates && { updates: opts.updates }) } as never);
}
