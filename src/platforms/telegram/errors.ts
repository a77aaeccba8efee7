import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { errors } from 'telegram';
import { AppError, isAppError, type ErrorCode } from '../../errors.ts';

// The one map from Telegram's errors (GramJS RPC errors, Bot API envelopes, socket failures) to
// API.md's codes. GramJS gives classes only to a few errors (FloodWaitError, *MigrateError);
// everything else is an RPCError classified on `errorMessage`, never on free text.

const rpcCodes: Record<string, ErrorCode> = {
  PHONE_NUMBER_INVALID: 'TG_PHONE_INVALID',
  PHONE_NUMBER_BANNED: 'TG_PHONE_BANNED',
  PHONE_NUMBER_FLOOD: 'TG_API_429',
  PHONE_CODE_INVALID: 'TG_CODE_INVALID',
  PHONE_CODE_EMPTY: 'TG_CODE_INVALID',
  PHONE_CODE_EXPIRED: 'TG_CODE_EXPIRED',
  PHONE_CODE_HASH_EMPTY: 'TG_CODE_EXPIRED',
  SESSION_PASSWORD_NEEDED: 'TG_2FA_REQUIRED',
  PASSWORD_HASH_INVALID: 'TG_PASSWORD_INVALID',
  SRP_ID_INVALID: 'TG_PASSWORD_INVALID',
  AUTH_KEY_UNREGISTERED: 'TG_SESSION_EXPIRED',
  AUTH_KEY_INVALID: 'TG_SESSION_EXPIRED',
  AUTH_KEY_PERM_EMPTY: 'TG_SESSION_EXPIRED',
  SESSION_REVOKED: 'TG_SESSION_EXPIRED',
  SESSION_EXPIRED: 'TG_SESSION_EXPIRED',
  USER_DEACTIVATED: 'TG_SESSION_EXPIRED',
  USER_DEACTIVATED_BAN: 'TG_SESSION_EXPIRED',
  // Two live connections on one key: Telegram drops the key for both; the session must log in again.
  AUTH_KEY_DUPLICATED: 'TG_SESSION_EXPIRED',
  AUTH_TOKEN_EXPIRED: 'TG_CODE_EXPIRED',
  USERNAME_INVALID: 'TG_CHAT_NOT_FOUND',
  USERNAME_NOT_OCCUPIED: 'TG_CHAT_NOT_FOUND',
  CHANNEL_INVALID: 'TG_CHAT_NOT_FOUND',
  CHANNEL_PRIVATE: 'TG_NOT_MEMBER',
  CHAT_ID_INVALID: 'TG_CHAT_NOT_FOUND',
  PEER_ID_INVALID: 'TG_CHAT_NOT_FOUND',
  INVITE_HASH_INVALID: 'TG_CHAT_NOT_FOUND',
  INVITE_HASH_EXPIRED: 'TG_CHAT_NOT_FOUND',
  USER_NOT_PARTICIPANT: 'TG_NOT_MEMBER',
  CHAT_ADMIN_REQUIRED: 'TG_NOT_ADMIN',
  CHAT_WRITE_FORBIDDEN: 'TG_CHAT_WRITE_FORBIDDEN',
  CHAT_SEND_PLAIN_FORBIDDEN: 'TG_CHAT_WRITE_FORBIDDEN',
  CHAT_RESTRICTED: 'TG_CHAT_WRITE_FORBIDDEN',
  USER_BANNED_IN_CHANNEL: 'TG_CHAT_WRITE_FORBIDDEN',
  USER_IS_BLOCKED: 'TG_CHAT_WRITE_FORBIDDEN',
  INPUT_USER_DEACTIVATED: 'TG_CHAT_WRITE_FORBIDDEN',
  USER_ID_INVALID: 'TG_CHAT_NOT_FOUND',
  // Telegram's definite "no" about one message, not about the link: resending the same message
  // gets the same answer 8 times over ~4 min, so these are permanent and never move the connection.
  // The recipient or the chat refuses this account (privacy, a block, rights, a spam limit):
  USER_PRIVACY_RESTRICTED: 'TG_CHAT_WRITE_FORBIDDEN',
  PRIVACY_PREMIUM_REQUIRED: 'TG_CHAT_WRITE_FORBIDDEN',
  YOU_BLOCKED_USER: 'TG_CHAT_WRITE_FORBIDDEN',
  CHAT_GUEST_SEND_FORBIDDEN: 'TG_CHAT_WRITE_FORBIDDEN',
  CHAT_FORBIDDEN: 'TG_CHAT_WRITE_FORBIDDEN',
  // PEER_FLOOD and USER_RESTRICTED: the account is spam-limited, for days, not seconds. Not
  // TG_API_429 (that one is retried and paces the chat); the account may not write to strangers.
  PEER_FLOOD: 'TG_CHAT_WRITE_FORBIDDEN',
  USER_RESTRICTED: 'TG_CHAT_WRITE_FORBIDDEN',
  // A frozen account (Telegram's moderation, 420 but no wait) may only appeal.
  FROZEN_METHOD_INVALID: 'TG_CHAT_WRITE_FORBIDDEN',
  // The caller's message itself: bad markup, a reply to a message that is not there, its length.
  MESSAGE_TOO_LONG: 'VALIDATION_ERROR',
  MESSAGE_EMPTY: 'VALIDATION_ERROR',
  ENTITY_BOUNDS_INVALID: 'VALIDATION_ERROR',
  ENTITIES_TOO_LONG: 'VALIDATION_ERROR',
  ENTITY_MENTION_USER_INVALID: 'VALIDATION_ERROR',
  REPLY_MESSAGE_ID_INVALID: 'VALIDATION_ERROR',
  REPLY_TO_INVALID: 'VALIDATION_ERROR',
};

const messages: Partial<Record<ErrorCode, string>> = {
  TG_PHONE_INVALID: 'Telegram does not accept this phone number',
  TG_PHONE_BANNED: 'This phone number is banned by Telegram',
  TG_CODE_INVALID: 'The login code is wrong',
  TG_CODE_EXPIRED: 'The login code has expired; request a new one',
  TG_2FA_REQUIRED: 'The account has two-step verification; send its password',
  TG_PASSWORD_INVALID: 'The two-step verification password is wrong',
  TG_SESSION_EXPIRED: 'The Telegram session was revoked or expired; log in again',
  TG_BOT_TOKEN_INVALID: 'Telegram refused the bot token',
  TG_CHAT_NOT_FOUND: 'Telegram does not know this chat',
  TG_NOT_MEMBER: 'The connection is not a member of this chat',
  TG_NOT_ADMIN: 'The connection is not an administrator of this chat',
  TG_CHAT_WRITE_FORBIDDEN: 'The connection may not send messages to this chat',
  TG_UNAVAILABLE: 'Telegram is unreachable',
};

// Where the code's general message would hide what Telegram meant.
const reasons: Record<string, string> = {
  PEER_FLOOD: 'Telegram limits this account for spam reports (PEER_FLOOD): it may not message people who have not written to it first; @SpamBot tells when the limit ends',
  USER_RESTRICTED: 'Telegram limits this account for spam reports (USER_RESTRICTED); @SpamBot tells when the limit ends',
  FROZEN_METHOD_INVALID: 'Telegram froze this account (FROZEN_METHOD_INVALID): it may not send until an appeal succeeds',
};

const floodError = (seconds: number, cause?: unknown) =>
  new AppError('TG_API_429', `Telegram asks to wait ${seconds} s`, { retryAfter: seconds, cause });

const fromCode = (code: ErrorCode, cause: unknown, detail?: string) =>
  new AppError(code, messages[code] ?? detail ?? code, { cause });

// Telegram's refusal of one request: the code, and a message that keeps Telegram's own reason.
function refusal(code: ErrorCode, name: string, cause: unknown): AppError {
  const text = reasons[name] ?? (code === 'VALIDATION_ERROR'
    ? `Telegram refused the request as invalid (${name})`
    : code === 'TG_CHAT_WRITE_FORBIDDEN' ? `${messages[code]} (${name})` : messages[code] ?? name);
  return new AppError(code, text, { cause });
}

/**
 * GramJS (MTProto) errors → AppError. An RPC error is Telegram's answer (`cause` keeps it, see
 * endsConnection): 400/406 are a definite "no" to the request's content, 403 a "not allowed"
 * for this chat or peer — both permanent; 500 and others are Telegram failing on its side
 * (TG_UNAVAILABLE, retried). Anything else (our timeouts, a dropped socket) is TG_UNAVAILABLE.
 */
export function mapTelegramError(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (err instanceof errors.FloodWaitError || err instanceof errors.SlowModeWaitError) {
    return floodError(Math.max(1, err.seconds), err);
  }
  if (err instanceof errors.RPCError) {
    const name = err.errorMessage ?? '';
    const flood = /^(?:FLOOD_WAIT|FLOOD_PREMIUM_WAIT|SLOWMODE_WAIT)_(\d+)$/.exec(name);
    if (flood) return floodError(Math.max(1, Number(flood[1])), err);
    const code = rpcCodes[name];
    if (code) return refusal(code, name, err);
    if (err.code === 401) return fromCode('TG_SESSION_EXPIRED', err);
    if (err.code === 420) return floodError(1, err);
    // MTProto's error codes: 406 is "like 400, shown differently" (core.telegram.org/api/errors).
    if (err.code === 400 || err.code === 406) return refusal('VALIDATION_ERROR', name, err);
    if (err.code === 403) return refusal('TG_CHAT_WRITE_FORBIDDEN', name, err);
    return new AppError('TG_UNAVAILABLE', `Telegram answered ${name || 'an error'}`, { cause: err });
  }
  return new AppError('TG_UNAVAILABLE', messages.TG_UNAVAILABLE!, { cause: err });
}

export interface BotApiFailure { error_code: number; description?: string; parameters?: { retry_after?: number; migrate_to_chat_id?: number } }

const isBotApiFailure = (v: unknown): v is BotApiFailure =>
  typeof v === 'object' && v !== null && typeof (v as BotApiFailure).error_code === 'number';

/** Bot API envelope `{ok:false, error_code, description}` → AppError. */
export function mapBotApiError(body: BotApiFailure, method: string): AppError {
  const description = body.description ?? '';
  if (body.error_code === 429) return floodError(Math.max(1, body.parameters?.retry_after ?? 1), body);
  if (body.error_code === 401 || body.error_code === 404 && method === 'getMe') {
    return fromCode('TG_BOT_TOKEN_INVALID', body);
  }
  if (body.error_code === 403) return fromCode(/not a member|kicked/i.test(description) ? 'TG_NOT_MEMBER' : 'TG_CHAT_WRITE_FORBIDDEN', body);
  if (body.error_code === 400) {
    if (/chat not found|user not found|PEER_ID_INVALID/i.test(description)) return fromCode('TG_CHAT_NOT_FOUND', body);
    const movedTo = body.parameters?.migrate_to_chat_id;
    if (movedTo !== undefined) return new AppError('TG_CHAT_NOT_FOUND', `The group was upgraded to a supergroup; send to ${movedTo}`, { cause: body });
    if (/not enough rights|have no rights|need administrator rights|CHAT_WRITE_FORBIDDEN|CHAT_SEND_\w+_FORBIDDEN/i.test(description)) return fromCode('TG_CHAT_WRITE_FORBIDDEN', body);
    if (/member list is inaccessible|USER_NOT_PARTICIPANT|not a member/i.test(description)) return fromCode('TG_NOT_MEMBER', body);
    // Every other 400 is Telegram's "no" to this message: bad markup ("can't parse entities: …"),
    // "message to be replied not found", text too long or empty. Its reason goes to the caller;
    // descriptions name offsets and tags, never the token.
    const reason = description.replace(/^Bad Request:\s*/i, '').slice(0, 200) || 'Bad Request';
    return new AppError('VALIDATION_ERROR', `Telegram refused the ${method === 'sendMessage' ? 'message' : 'request'}: ${reason}`, { cause: body });
  }
  return new AppError('TG_UNAVAILABLE', `Telegram Bot API ${method} failed (${body.error_code})`, { cause: body });
}

/**
 * True when the error means the connection itself is unusable: no answer came (a timeout, a dropped,
 * refused or reset socket, a reply that was not Telegram's JSON), or the session or bot token was
 * revoked. Telegram's answer about one request — a refusal, a flood wait, even a 500 — leaves the link
 * healthy: moving the connection out of active for it would park every other message it carries.
 */
export function endsConnection(e: AppError): boolean {
  if (e.code === 'TG_SESSION_EXPIRED' || e.code === 'TG_BOT_TOKEN_INVALID') return true;
  return e.code === 'TG_UNAVAILABLE' && !(e.cause instanceof errors.RPCError || isBotApiFailure(e.cause));
}
