// Domain errors carry a stable `code` (API.md) and a category. The core — supervisor, delivery,
// machines, API — decides retry, backoff, waiting or a terminal state from the CATEGORY, never from
// a platform's code or message text; the code is kept for the API answer. The core's own codes are
// below; each platform registers its codes (status + category) with `registerErrorCodes`.

/**
 * What a failure means for the caller of a platform:
 * - retry: transient (network, 5xx, unknown); back off and try again.
 * - rate-limited-until: the platform asks to wait `retryAfter` seconds (a flood wait); wait exactly.
 * - quota-until: a quota is spent until `retryAfter` seconds from now (daily uploads, posts per 24 h).
 * - reauthorize: the session or token was revoked or expired; a person must log in again.
 * - rejected: a definite "no" to this request's content (wrong code, chat refuses it); retrying the
 *   same request cannot help, the connection itself is fine.
 * - outcome-unknown: no answer came after the request left; it may or may not have taken effect.
 * - fatal: the connection cannot work until a person acts (banned number, invalid token).
 */
export type ErrorCategory = 'retry' | 'rate-limited-until' | 'quota-until' | 'reauthorize' | 'rejected' | 'outcome-unknown' | 'fatal';

export interface ErrorCodeSpec { status: number; category: ErrorCategory }

const spec = (status: number, category: ErrorCategory): ErrorCodeSpec => ({ status, category });

const coreCodes = {
  VALIDATION_ERROR: spec(400, 'rejected'),
  UNAUTHORIZED: spec(401, 'rejected'),
  FORBIDDEN: spec(403, 'rejected'),
  // 403, not 429: waiting does not make room (deleting does, or for queued messages their sending),
  // and clients retry 429 by themselves; the message names the quota, its limit and what is in use.
  QUOTA_EXCEEDED: spec(403, 'rejected'),
  // CONSENT_REQUIRED=true and no granted `processing` consent (or it was withdrawn): granting it helps.
  CONSENT_REQUIRED: spec(403, 'rejected'),
  // A connection's status code, never an HTTP answer: stopped because `processing` was withdrawn;
  // it stays stopped until the consent is granted again and a person reconnects it.
  CONSENT_WITHDRAWN: spec(403, 'fatal'),
  NOT_FOUND: spec(404, 'rejected'),
  INVALID_STATE: spec(409, 'rejected'),
  CONNECTION_NOT_ACTIVE: spec(409, 'retry'),
  IDEMPOTENCY_CONFLICT: spec(409, 'rejected'),
  // Not in API.md's list: none of its codes says "you sent too slowly" (headers or body past REQUEST_TIMEOUT_MS).
  REQUEST_TIMEOUT: spec(408, 'rejected'),
  PAYLOAD_TOO_LARGE: spec(413, 'rejected'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, 'rejected'),
  RATE_LIMITED: spec(429, 'rate-limited-until'),
  // A message's state, never an HTTP answer: queued longer than MESSAGE_QUEUE_TTL_HOURS, not sent.
  MESSAGE_EXPIRED: spec(410, 'rejected'),
  INTERNAL: spec(500, 'retry'),
  // A message whose send may or may not have reached the platform (no answer came, and a resend
  // could post it twice): failed rather than risk a duplicate.
  OUTCOME_UNKNOWN: spec(502, 'outcome-unknown'),
  DEPENDENCY_UNAVAILABLE: spec(503, 'retry'),
  CIRCUIT_OPEN: spec(503, 'retry'),
  MEMORY_BUDGET_EXCEEDED: spec(503, 'fatal'),
  PLATFORM_UNAVAILABLE: spec(503, 'retry'),
  // Load shedding: the event loop lags past OVERLOAD_LAG_MS, so a request is refused at once with
  // Retry-After instead of waiting in the backlog until the caller's own timeout.
  OVERLOADED: spec(503, 'retry'),
  // The connection's platform cannot take this request: a media type, an edit or a delete it does not
  // support (its SendCapabilities), or a file over its size limit for that type.
  PLATFORM_UNSUPPORTED: spec(422, 'rejected'),
  // An outgoing request (a media URL, later webhooks) to a scheme or address the egress policy forbids:
  // not https, or loopback, private, link-local, CGNAT, multicast or metadata (src/net/egress.ts).
  EGRESS_FORBIDDEN: spec(422, 'rejected'),
  // A media URL that did not give the file: its server answered 4xx, or it was too large. Transient
  // failures (5xx, network) carry category retry on the instance.
  MEDIA_FETCH_FAILED: spec(422, 'rejected'),
  // Meta and the other token/OAuth platforms (API.md "OAuth platforms … and WhatsApp"): shared codes,
  // the platform's own code kept in the message. A token the platform refuses when connecting:
  PLATFORM_AUTH_INVALID: spec(422, 'fatal'),
  // A token that worked and was revoked or expired (Graph 190; Google's invalid_grant on refresh): a person authorizes
  // again (POST /v1/connections/{id}/reauthorize). A 5xx or network error is never this.
  PLATFORM_AUTH_REVOKED: spec(401, 'reauthorize'),
  // The platform asked to slow down (WhatsApp 130429/131056, Graph 4/17/32/613).
  PLATFORM_RATE_LIMITED: spec(429, 'rate-limited-until'),
  // A counted platform quota is spent (publishing per 24 h, the messaging tier, YouTube's daily
  // units, TikTok's post inits per minute): refused before any call, with retryAfter until it resets.
  PLATFORM_QUOTA_EXCEEDED: spec(429, 'quota-until'),
  // A definite refusal of this request by the platform (bad recipient, unknown template, a malformed video).
  PLATFORM_REJECTED: spec(422, 'rejected'),
  // WhatsApp: free-form messages only within 24 h of the customer's last message (Graph 131047).
  OUTSIDE_SERVICE_WINDOW: spec(422, 'rejected'),
  // OAuth platforms (API.md "OAuth platforms"). The callback's `state` is unknown, used or older than 10 min:
  // nothing changed; start again from the connection's authorizeUrl (or POST …/reauthorize).
  OAUTH_STATE_INVALID: spec(400, 'rejected'),
  // The person declined consent at the platform: the connection is left in `error`.
  PLATFORM_AUTH_DENIED: spec(422, 'rejected'),
  // An edit that would leave the message as it is (Telegram's MESSAGE_NOT_MODIFIED, checked before sending).
  MESSAGE_NOT_MODIFIED: spec(422, 'rejected'),
} satisfies Record<string, ErrorCodeSpec>;

export type CoreErrorCode = keyof typeof coreCodes;
/** A core code, or one a platform registered (e.g. Telegram's). */
export type ErrorCode = CoreErrorCode | (string & Record<never, never>);

const registry = new Map<string, ErrorCodeSpec>(Object.entries(coreCodes));

/** Adds a platform's codes; the same code registered twice must mean the same thing. */
export function registerErrorCodes(specs: Record<string, ErrorCodeSpec>): void {
  for (const [code, s] of Object.entries(specs)) {
    const known = registry.get(code);
    if (known && (known.status !== s.status || known.category !== s.category)) throw new Error(`error code ${code} registered twice with different meanings`);
    registry.set(code, s);
  }
}

export const errorSpec = (code: string): ErrorCodeSpec | undefined => registry.get(code);
export const knownErrorCodes = (): string[] => [...registry.keys()];
export const isErrorCode = (value: unknown): value is ErrorCode => typeof value === 'string' && registry.has(value);

export interface ErrorDetail { path: string; message: string; type?: string }

export interface AppErrorOptions {
  retryAfter?: number;
  details?: ErrorDetail[];
  cause?: unknown;
  /** Overrides the code's category for this instance (e.g. TG_UNAVAILABLE after a request left: outcome-unknown). */
  category?: ErrorCategory;
  /** Overrides the code's HTTP status for this instance. */
  status?: number;
  /**
   * 'connection' when the failure is about the whole connection rather than this one request: the
   * link gave no answer (reconnect), or a flood wait covers every chat of the connection.
   */
  scope?: 'request' | 'connection';
}

const retryableCategories: ReadonlySet<ErrorCategory> = new Set(['retry', 'rate-limited-until', 'quota-until', 'outcome-unknown']);

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly category: ErrorCategory;
  readonly scope: 'request' | 'connection';
  readonly retryAfter?: number;
  readonly details?: ErrorDetail[];

  constructor(code: ErrorCode, message: string, opts: AppErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    const known = registry.get(code);
    // An unregistered code is a bug in its thrower; it answers 500 rather than something it is not.
    this.status = opts.status ?? known?.status ?? 500;
    this.category = opts.category ?? known?.category ?? 'retry';
    this.scope = opts.scope ?? 'request';
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
    if (opts.details !== undefined) this.details = opts.details;
  }

  /** Trying again later may succeed (transient, a wait, or an unknown outcome the caller may resend safely). */
  get retryable(): boolean {
    return retryableCategories.has(this.category);
  }

  /**
   * The request may have reached the platform and taken effect: no answer came (a timeout, a
   * connection lost after the request was written). Resending a non-idempotent call could do it twice.
   */
  get outcomeUnknown(): boolean {
    return this.category === 'outcome-unknown';
  }

  // The shape that goes into snapshots, rows and API answers: never the cause, never a stack.
  toJSON(): { code: ErrorCode; message: string; retryAfter?: number } {
    return this.retryAfter === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retryAfter: this.retryAfter };
  }
}

export const isAppError = (err: unknown): err is AppError => err instanceof AppError;

/**
 * A send or step failure that concerns the connection, not one request: a revoked session or token,
 * a connection that cannot work, or a link that gave no answer. Anything else — a refusal of one
 * message, a flood wait, the platform's own 5xx — leaves a healthy connection active.
 */
export function endsConnection(e: AppError): boolean {
  if (e.category === 'fatal' || e.category === 'reauthorize') return true;
  return (e.category === 'retry' || e.category === 'outcome-unknown') && e.scope === 'connection';
}
