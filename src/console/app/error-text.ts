import type { ErrorInfo } from './types.ts';

// One sentence per error code of API.md, written for the person at the console (the server's own
// message is kept for codes this table does not know). A function gets the wait in seconds when known.
type Sentence = string | ((seconds: number | undefined) => string);
const sentences: Record<string, Sentence> = {
  VALIDATION_ERROR: 'Some fields are not valid',
  UNAUTHORIZED: 'The access token is missing, expired or not accepted; sign in again',
  FORBIDDEN: 'This token is not allowed to do that',
  NOT_FOUND: 'It does not exist (or was deleted)',
  INVALID_STATE: 'The connection is not at the step this action needs',
  CONNECTION_NOT_ACTIVE: 'The connection is not active; reconnect or log in first',
  IDEMPOTENCY_CONFLICT: 'This request was already sent with different content',
  PAYLOAD_TOO_LARGE: 'The request is larger than 1 MiB',
  UNSUPPORTED_MEDIA_TYPE: 'The service does not accept this content type',
  RATE_LIMITED: (s) => (s === undefined ? 'Too many requests; try again shortly' : `Too many requests; try again in ${s} s`),
  INTERNAL: 'The service failed unexpectedly',
  DEPENDENCY_UNAVAILABLE: 'A backing service is down; try again shortly',
  CIRCUIT_OPEN: 'Paused after repeated failures; it retries by itself, or press Reconnect',
  MEMORY_BUDGET_EXCEEDED: 'The connection used more than its memory budget and was stopped',
  TG_PHONE_INVALID: 'Telegram does not accept this phone number',
  TG_PHONE_BANNED: 'Telegram has banned this phone number',
  TG_CODE_INVALID: 'The login code is wrong',
  TG_CODE_EXPIRED: 'The login code has expired; start the login again',
  TG_2FA_REQUIRED: 'The account has two-step verification; enter its password',
  TG_PASSWORD_INVALID: 'The two-step verification password is wrong',
  TG_SESSION_EXPIRED: 'Telegram ended the session (revoked or logged out); log in again',
  TG_API_429: (s) => (s === undefined ? 'Telegram asks to wait before the next call' : `Telegram asks to wait ${s} s`),
  TG_BOT_TOKEN_INVALID: 'Telegram does not know this bot token',
  TG_CHAT_NOT_FOUND: 'Telegram cannot find this chat',
  TG_NOT_MEMBER: 'The account is not a member of this chat',
  TG_NOT_ADMIN: 'The account is not an admin of this chat',
  TG_CHAT_WRITE_FORBIDDEN: 'The account may not write in this chat',
  TG_UNAVAILABLE: 'Telegram cannot be reached right now; it retries by itself',
  NETWORK: 'The service cannot be reached; check the network',
};

export const knownErrorCodes = (): string[] => Object.keys(sentences);

// Seconds to wait: `retryAfter` when the answer carried it, else the distance to `retryAt`.
const waitSeconds = (err: ErrorInfo, now: number): number | undefined => {
  if (typeof err.retryAfter === 'number') return Math.max(0, Math.ceil(err.retryAfter));
  if (err.retryAt) {
    const at = Date.parse(err.retryAt);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - now) / 1000));
  }
  return undefined;
};

// "TG_API_429 — Telegram asks to wait 17 s". Plain text: callers put it in textContent.
export const describeError = (err: ErrorInfo, now: number = Date.now()): string => {
  const sentence = sentences[err.code];
  if (sentence === undefined) return `${err.code} — ${err.message}`;
  return `${err.code} — ${typeof sentence === 'string' ? sentence : sentence(waitSeconds(err, now))}`;
};
