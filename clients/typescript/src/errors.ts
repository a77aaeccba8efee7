/** The API's error envelope (API.md): `{ error: { code, message, retryAfter?, details? } }`. */
export interface ErrorBody {
  code: string;
  message: string;
  retryAfter?: number;
  details?: Array<{ field?: string; message?: string; [k: string]: unknown }>;
}

/**
 * A refused call: the HTTP status and the API's own error code (`TG_CODE_INVALID`, `RATE_LIMITED`, …).
 * Code on the code, never on the message: messages are for people and may change.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | undefined;
  readonly details: ErrorBody['details'];
  readonly requestId: string | undefined;

  constructor(status: number, body: ErrorBody, requestId?: string) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.retryAfter = body.retryAfter;
    this.details = body.details;
    this.requestId = requestId;
  }

  /** The error of a failed response, from its envelope or, for a body that is not one (a proxy's page), from its status. */
  static async from(res: Response, parsed?: unknown): Promise<ApiError> {
    let body = parsed;
    if (body === undefined) {
      const text = await res.text().catch(() => '');
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    const requestId = res.headers.get('x-request-id') ?? undefined;
    const envelope = (body as { error?: Partial<ErrorBody> } | undefined)?.error;
    if (envelope && typeof envelope.code === 'string') {
      return new ApiError(res.status, { message: `${envelope.code}`, ...envelope } as ErrorBody, requestId);
    }
    return new ApiError(res.status, { code: codeOfStatus(res.status), message: `HTTP ${res.status} ${res.statusText}`.trim() }, requestId);
  }
}

/** A network failure (no answer at all): the call may or may not have reached the server. */
export class NetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NetworkError';
  }
}

const byStatus: Record<number, string> = {
  400: 'VALIDATION_ERROR', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 408: 'REQUEST_TIMEOUT', 409: 'INVALID_STATE',
  413: 'PAYLOAD_TOO_LARGE', 429: 'RATE_LIMITED', 503: 'DEPENDENCY_UNAVAILABLE',
};
const codeOfStatus = (status: number): string => byStatus[status] ?? (status >= 500 ? 'INTERNAL' : 'HTTP_ERROR');
