// Domain errors carry a stable `code` from API.md. The supervisor decides retry, backoff or a
// terminal state from `code` and `retryable`, never from message text; HTTP handlers map `status`.

export const errorCodes = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  CONNECTION_NOT_ACTIVE: 409,
  IDEMPOTENCY_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  DEPENDENCY_UNAVAILABLE: 503,
  CIRCUIT_OPEN: 503,
  MEMORY_BUDGET_EXCEEDED: 503,
  TG_PHONE_INVALID: 400,
  TG_PHONE_BANNED: 422,
  TG_CODE_INVALID: 422,
  TG_CODE_EXPIRED: 422,
  TG_2FA_REQUIRED: 409,
  TG_PASSWORD_INVALID: 422,
  TG_SESSION_EXPIRED: 422,
  TG_API_429: 429,
  TG_BOT_TOKEN_INVALID: 422,
  TG_CHAT_NOT_FOUND: 422,
  TG_NOT_MEMBER: 422,
  TG_NOT_ADMIN: 422,
  TG_CHAT_WRITE_FORBIDDEN: 422,
  TG_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof errorCodes;

// Codes after which retrying the same call cannot succeed without a person acting.
const permanent: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'VALIDATION_ERROR', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'INVALID_STATE', 'CONNECTION_NOT_ACTIVE',
  'IDEMPOTENCY_CONFLICT', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'MEMORY_BUDGET_EXCEEDED',
  'TG_PHONE_INVALID', 'TG_PHONE_BANNED', 'TG_CODE_INVALID', 'TG_CODE_EXPIRED', 'TG_2FA_REQUIRED',
  'TG_PASSWORD_INVALID', 'TG_SESSION_EXPIRED', 'TG_BOT_TOKEN_INVALID', 'TG_CHAT_NOT_FOUND', 'TG_NOT_MEMBER',
  'TG_NOT_ADMIN', 'TG_CHAT_WRITE_FORBIDDEN',
]);

export interface ErrorDetail { path: string; message: string; type?: string }

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfter?: number;
  readonly details?: ErrorDetail[];
  /**
   * The request may have reached the platform and taken effect: no answer came (a timeout, a
   * connection lost after the request was written). Resending a non-idempotent call could do it twice.
   */
  readonly outcomeUnknown?: boolean;

  constructor(code: ErrorCode, message: string, opts: { retryAfter?: number; details?: ErrorDetail[]; cause?: unknown; outcomeUnknown?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = errorCodes[code];
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
    if (opts.details !== undefined) this.details = opts.details;
    if (opts.outcomeUnknown) this.outcomeUnknown = true;
  }

  get retryable(): boolean {
    return !permanent.has(this.code);
  }

  // The shape that goes into snapshots, rows and API answers: never the cause, never a stack.
  toJSON(): { code: ErrorCode; message: string; retryAfter?: number } {
    return this.retryAfter === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, retryAfter: this.retryAfter };
  }
}

export const isAppError = (err: unknown): err is AppError => err instanceof AppError;

export const isErrorCode = (value: unknown): value is ErrorCode =>
  typeof value === 'string' && Object.prototype.hasOwnProperty.call(errorCodes, value);
