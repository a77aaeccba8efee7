// How the machines read a failure coming out of an I/O slot. Errors are duck-typed (the app's
// AppError has `code`, `category`, `retryAfter`; the machines must not import it): the CATEGORY
// decides, never the code, which is kept only for the API. Anything without a string `code` is an
// unknown error, which is retried.
import { backoffDelay, type BackoffConfig, type MachineClock } from './backoff.ts';

// What the API shows as `error` on a connection: `retryAt` (epoch ms) only while backing off.
export interface ErrorInfo {
  code: string;
  message: string;
  retryAt?: number;
}

/** A failure a machine raises itself, in the platform's words (see LifecycleErrors). */
export interface Failure {
  code: string;
  message: string;
  category: 'retry' | 'reauthorize' | 'fatal' | 'rejected';
}

// flood: the platform said "wait N s" (a rate limit or a spent quota) — wait exactly that, retry the
//        same step, never give up.
// user:  the platform refused what the person gave (a code, a password) — stay and let them try again.
// fatal: retrying cannot help without a person acting (revoked, banned, invalid) — go to `error`.
// retry: transient (network, 5xx, no answer, unknown) — back off and retry.
export type FailureKind = 'flood' | 'user' | 'fatal' | 'retry';

const kindOfCategory: Record<string, FailureKind> = {
  'rate-limited-until': 'flood',
  'quota-until': 'flood',
  rejected: 'user',
  reauthorize: 'fatal',
  fatal: 'fatal',
  retry: 'retry',
  'outcome-unknown': 'retry',
};

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
    return { kind: 'retry', info: { code: 'PLATFORM_UNAVAILABLE', message: 'unexpected failure talking to the platform' } };
  }
  const rawMessage = field(err, 'message');
  const message = typeof rawMessage === 'string' && rawMessage !== '' ? rawMessage.slice(0, MAX_MESSAGE) : code;
  const info = { code, message };
  const category = field(err, 'category');
  const kind = (typeof category === 'string' ? kindOfCategory[category] : undefined) ?? 'retry';
  if (kind === 'flood') {
    const retryAfter = field(err, 'retryAfter');
    return typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0
      ? { kind, info, retryAfterMs: retryAfter * 1000 }
      : { kind, info };
  }
  return { kind, info };
};

export const failureKind = (err: unknown): FailureKind => parseFailure(err).kind;

/** A send failure that condemns the whole connection: its credentials were revoked or it cannot work. */
export const isConnectionFatal = (err: unknown): boolean => {
  const category = field(err, 'category');
  return category === 'reauthorize' || category === 'fatal';
};

export interface RetryState {
  attempt: number;
  retryAt: number | null;
  error: ErrorInfo | null;
}

// The context change for one failure. Rate-limit waits do not count as attempts (they are not
// failures of ours, and counting them would inflate the next backoff); one without `retryAfter`
// falls back to the backoff schedule.
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
