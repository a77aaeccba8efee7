import { AppError, type ErrorCategory } from '../../errors.ts';

// The Graph API as every Meta platform (WhatsApp Cloud API, Instagram, Threads) answers it: one HTTP
// host with a version prefix, JSON in and out, and one error envelope
// {error: {message, type, code, error_subcode?, is_transient?, error_data?, fbtrace_id}} (Graph API
// "Handling Errors" guide; WhatsApp Cloud API "Error codes"). This file owns the client and the one
// classification of Graph codes into the adapter's categories; each platform folder names its codes.

/** Graph API version the service speaks (facebook/openapi describes business-messaging-api_v23.0). */
export const defaultGraphVersion = 'v23.0';

export interface GraphFailure {
  /** HTTP status of the answer; 0 when none came. */
  status: number;
  /** Graph `error.code`, or 0 when the body was not Graph's envelope. */
  code: number;
  subcode?: number;
  message: string;
  transient?: boolean;
  /** Set when no answer came: 'refused' (nothing left this process), 'lost' (the request may have arrived). */
  network?: 'refused' | 'lost';
}

/** A Graph answer that was not a success, kept as Graph gave it (never with the token). */
export class GraphApiError extends Error {
  constructor(readonly failure: GraphFailure) {
    super(failure.network ? `Graph API: no answer (${failure.network})` : `Graph API ${failure.status}: (#${failure.code}) ${failure.message}`);
    this.name = 'GraphApiError';
  }
}

export const isGraphApiError = (err: unknown): err is GraphApiError => err instanceof GraphApiError;

export interface GraphClientOptions {
  /** e.g. https://graph.facebook.com (no version). */
  baseUrl: string;
  version?: string;
  timeoutMs?: number;
}

// Node's fetch wraps socket errors; these mean the request never left (nothing to repeat twice).
const refusedCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET_BEFORE_SEND', 'UND_ERR_CONNECT_TIMEOUT']);

export class GraphClient {
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(opts: GraphClientOptions) {
    this.#base = `${opts.baseUrl.replace(/(?<!\/)\/+$/, '')}/${opts.version ?? defaultGraphVersion}`;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
  }

  /** One call with the token in the Authorization header (never in the URL, so never in a log line). */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, token: string, body?: unknown, query?: Record<string, string>): Promise<T> {
    const url = new URL(`${this.#base}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      throw new GraphApiError({ status: 0, code: 0, message: 'no answer', network: code && refusedCodes.has(code) ? 'refused' : 'lost' });
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = undefined;
    }
    if (res.ok && parsed !== undefined) return parsed as T;
    const e = (parsed as { error?: Record<string, unknown> } | undefined)?.error;
    throw new GraphApiError({
      status: res.status,
      code: typeof e?.code === 'number' ? e.code : 0,
      ...(typeof e?.error_subcode === 'number' ? { subcode: e.error_subcode } : {}),
      message: typeof e?.message === 'string' ? e.message.slice(0, 300) : `HTTP ${res.status}`,
      ...(typeof e?.is_transient === 'boolean' ? { transient: e.is_transient } : {}),
    });
  }
}

/** What a Graph failure means for the core, and the shared code it answers with. */
export interface GraphVerdict { code: string; category: ErrorCategory; retryAfter?: number; scope?: 'request' | 'connection' }

/**
 * Graph codes common to every Meta API ("Handling Errors" guide): 190 token invalid/expired, 102
 * session, 10 and 200–299 permissions → a person must authorize again; 4 (app), 17 (user), 32 (page),
 * 613 (custom) and 80000–80014 (business use case) rate limits → wait; 1, 2 and is_transient → retry;
 * 100 and other definite refusals → rejected. A platform's own codes come first (`platform`).
 */
export function graphVerdict(f: GraphFailure, platform: (f: GraphFailure) => GraphVerdict | undefined, phase: 'connect' | 'send' | 'read'): GraphVerdict {
  if (f.network === 'refused') return { code: 'PLATFORM_UNAVAILABLE', category: 'retry', scope: 'connection' };
  // The request may have reached Meta: a send cannot be known to have failed.
  if (f.network === 'lost') return phase === 'send' ? { code: 'OUTCOME_UNKNOWN', category: 'outcome-unknown' } : { code: 'PLATFORM_UNAVAILABLE', category: 'retry', scope: 'connection' };
  const own = platform(f);
  if (own) return own;
  if (f.code === 190 || f.code === 102 || f.code === 10 || (f.code >= 200 && f.code <= 299)) {
    return phase === 'connect' && f.code !== 190 ? { code: 'PLATFORM_AUTH_INVALID', category: 'fatal' } : { code: 'PLATFORM_AUTH_REVOKED', category: 'reauthorize' };
  }
  // Rate limits count per hour (app/user/page) or per business use case; Graph gives no Retry-After
  // (only X-App-Usage percentages), so wait a minute and try again.
  if (f.code === 4 || f.code === 17 || f.code === 32 || f.code === 613 || (f.code >= 80000 && f.code <= 80014)) {
    return { code: 'PLATFORM_RATE_LIMITED', category: 'rate-limited-until', retryAfter: 60, scope: 'connection' };
  }
  if (f.code === 1 || f.code === 2 || f.transient === true || f.status >= 500 || f.status === 0 || f.code === 0) {
    return { code: 'PLATFORM_UNAVAILABLE', category: 'retry' };
  }
  return { code: 'PLATFORM_REJECTED', category: 'rejected' };
}

/** The AppError of a Graph failure: the shared code, with Graph's code kept in the message (never the token). */
export function graphAppError(err: GraphApiError, v: GraphVerdict, platformName: string): AppError {
  const f = err.failure;
  const what = f.network ? 'no answer came' : `${f.message} (Graph code ${f.code}${f.subcode ? `, subcode ${f.subcode}` : ''}, HTTP ${f.status})`;
  return new AppError(v.code, `${platformName}: ${what}`, {
    cause: err,
    category: v.category,
    ...(v.retryAfter !== undefined ? { retryAfter: v.retryAfter } : {}),
    ...(v.scope ? { scope: v.scope } : {}),
  });
}
