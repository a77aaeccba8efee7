// How the machines read a failure coming out of an I/O slot. Errors are duck-typed (the app's
// AppError has `code`, `retryable`, `retryAfter`; the machines must not import it) and anything
// without a string `code` is an unknown error, which is retried.
import { backoffDelay, type BackoffConfig, type MachineClock } from './backoff.ts';

// What the API shows as `error` on a connection: `retryAt` (epoch ms) only while backing off.
export interface ErrorInfo {
  code: string;
  message: string;
  retryAt?: number;
}

// flood: Telegram said "wait N s" — wait exactly that, retry the same step, never give up.
// user:  the person typed something wrong (code, password) — stay and let them try again.
// fatal: retrying cannot help without a person acting — go to `error`.
// retry: transient (network, 5xx, unknown) — back off and retry.
export type FailureKind = 'flood' | 'user' | 'fatal' | 'retry';

const FLOOD = 'TG_API_429';
const USER_CODES: ReadonlySet<string> = new Set(['TG_CODE_INVALID', 'TG_CODE_EXPIRED', 'TG_PASSWORD_INVALID']);
// Terminal even if an adapter forgets `retryable: false`: retrying a revoked session or a dead
// bot token only burns flood-wait budget and can get the account flagged.
const TERMINAL_CODES: ReadonlySet<string> = new Set([
  'TG_SESSION_EXPIRED', 'TG_BOT_TOKEN_INVALID', 'TG_PHONE_INVALID', 'TG_PHONE_BANNED', 'MEMORY_BUDGET_EXCEEDED',
]);
// Codes that condemn the whole connection when a send reports them (PLATFORM_ERROR); any other
// permanent send error (TG_CHAT_WRITE_FORBIDDEN, …) belongs to that one message, not the connection.
const CONNECTION_FATAL_CODES: ReadonlySet<string> = new Set(['TG_SESSION_EXPIRED', 'TG_BOT_TOKEN_INVALID', 'TG_PHONE_BANNED']);

// Messages land in snapshots and API answers: keep them short. Only errors with a code (ours,
// whose messages are written to be safe) keep theirs; an unknown error's text could quote a
// session or token, so it is replaced.
const MAX_MESSAGE = 200;

interface Parsed {
  kind: FailureKind;
  info: ErrorInfo;
  retryAfterMs?: number;
}

const field = (err: unknown, key: string): unknown =>
  err !== null && typeof err === 'object' ? (err as Record<string, unknown>)[key] : undefined;

export const parseFailure = (err: unknown): Parsed => {
  const code = field(err, 'code');
  if (typeof code !== 'string' || code === '') {
    return { kind: 'retry', info: { code: 'TG_UNAVAILABLE', message: 'unexpected failure talking to the platform' } };
  }
  const rawMessage = field(err, 'message');
  const message = typeof rawMessage === 'string' && rawMessage !== '' ? rawMessage.slice(0, MAX_MESSAGE) : code;
  const info = { code, message };
  if (code === FLOOD) {
    const retryAfter = field(err, 'retryAfter');
    return typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0
      ? { kind: 'flood', info, retryAfterMs: retryAfter * 1000 }
      : { kind: 'flood', info };
  }
  if (USER_CODES.has(code)) return { kind: 'user', info };
  if (TERMINAL_CODES.has(code) || field(err, 'retryable') === false) return { kind: 'fatal', info };
  return { kind: 'retry', info };
};

export const failureKind = (err: unknown): FailureKind => parseFailure(err).kind;

export const isConnectionFatal = (err: unknown): boolean => {
  const code = field(err, 'code');
  return typeof code === 'string' && CONNECTION_FATAL_CODES.has(code);
};

export interface RetryState {
  attempt: number;
  retryAt: number | null;
  error: ErrorInfo | null;
}

// The context change for one failure. Flood waits do not count as attempts (they are not
// failures of ours, and counting them would inflate the next backoff); a flood wait without
// `retryAfter` falls back to the backoff schedule.
export const applyFailure = (state: RetryState, err: unknown, backoff: BackoffConfig, clock: MachineClock): RetryState => {
  const { kind, info, retryAfterMs } = parseFailure(err);
  if (kind === 'user' || kind === 'fatal') return { attempt: state.attempt, retryAt: null, error: info };
  const now = clock.now();
  if (kind === 'flood' && retryAfterMs !== undefined) {
    const retryAt = now + retryAfterMs;
    return { attempt: state.attempt, retryAt, error: { ...info, retryAt } };
  }
  const retryAt = now + backoffDelay(state.attempt, backoff, clock.random());
  return { attempt: kind === 'flood' ? state.attempt : state.attempt + 1, retryAt, error: { ...info, retryAt } };
};
