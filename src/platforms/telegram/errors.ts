import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { errors } from 'telegram';
import { AppError, isAppError } from '../../errors.ts';
import { metrics } from '../../observability/metrics.ts';
import { tgError, type BotApiFailure, type TelegramCode } from './codes.ts';

// The one map from Telegram's errors (GramJS RPC errors, Bot API envelopes, socket failures) to
// API.md's codes. GramJS gives classes only to a few errors (FloodWaitError, *MigrateError);
// everything else is an RPCError classified on `errorMessage`, never on free text.

const rpcCodes: Record<string, TelegramCode | 'VALIDATION_ERROR'> = {
  PHONE_NUMBER_INVALID: 'TG_PHONE_INVALID',
  PHONE_NUMBER_BANNED: 'TG_PHONE_BANNED',
  PHONE_NUMBER_FLOOD: 'TG_API_429',
  PHONE_CODE_INVALID: 'TG_CODE_INVALID',
  PHONE_CODE_EMPTY: 'TG_CODE_INVALID',
  PHONE_CODE_EXPIRED: 'TG_CODE_EXPIRED',
  PHONE_CODE_HASH_EMPTY: 'TG_CODE_EXPIRED',
  SESSION_PASSWORD_NEEDED: 'TG_2FA_REQUIRED',
  SEND_CODE_UNAVAILABLE: 'TG_CODE_RESEND_UNAVAILABLE',
  PASSWORD_RECOVERY_NA: 'TG_RECOVERY_UNAVAILABLE',
  PASSWORD_EMPTY: 'TG_RECOVERY_UNAVAILABLE',
  CODE_INVALID: 'TG_CODE_INVALID',
  CODE_EMPTY: 'TG_CODE_INVALID',
  PASSWORD_RECOVERY_EXPIRED: 'TG_CODE_EXPIRED',
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
  // Edits and deletes (MESSAGE_NOT_MODIFIED never gets here: the driver takes it as done).
  MESSAGE_ID_INVALID: 'TG_MESSAGE_NOT_FOUND',
  MESSAGE_AUTHOR_REQUIRED: 'TG_MESSAGE_FORBIDDEN',
  MESSAGE_DELETE_FORBIDDEN: 'TG_MESSAGE_FORBIDDEN',
  MESSAGE_EDIT_TIME_EXPIRED: 'TG_MESSAGE_TOO_OLD',
  // Files (core.telegram.org/api/files): the file, its parts or its caption.
  PHOTO_SAVE_FILE_INVALID: 'TG_MEDIA_INVALID',
  PHOTO_INVALID_DIMENSIONS: 'TG_MEDIA_INVALID',
  PHOTO_EXT_INVALID: 'TG_MEDIA_INVALID',
  MEDIA_INVALID: 'TG_MEDIA_INVALID',
  MEDIA_EMPTY: 'TG_MEDIA_INVALID',
  MEDIA_CAPTION_TOO_LONG: 'TG_MEDIA_INVALID',
  FILE_PARTS_INVALID: 'TG_MEDIA_INVALID',
  FILE_PART_INVALID: 'TG_MEDIA_INVALID',
  FILE_PART_SIZE_INVALID: 'TG_MEDIA_INVALID',
  FILE_PART_TOO_BIG: 'TG_MEDIA_INVALID',
  FILE_PART_EMPTY: 'TG_MEDIA_INVALID',
  MD5_CHECKSUM_INVALID: 'TG_MEDIA_INVALID',
};

const messages: Partial<Record<TelegramCode, string>> = {
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
  TG_MESSAGE_NOT_FOUND: 'The message is no longer in the chat',
  TG_MESSAGE_FORBIDDEN: 'The connection may not change this message (not its own, or no rights in the chat)',
  TG_MESSAGE_TOO_OLD: 'Telegram no longer lets this message be changed: it is too old',
  TG_UNAVAILABLE: 'Telegram is unreachable',
  TG_RECOVERY_UNAVAILABLE: 'The account has no recovery e-mail: the 2FA password cannot be reset this way',
  TG_CODE_RESEND_UNAVAILABLE: 'Telegram has no other way to send this code; use the one sent, or start the login again',
};

// Where the code's general message would hide what Telegram meant.
const reasons: Record<string, string> = {
  PEER_FLOOD: 'Telegram limits this account for spam reports (PEER_FLOOD): it may not message people who have not written to it first; @SpamBot tells when the limit ends',
  USER_RESTRICTED: 'Telegram limits this account for spam reports (USER_RESTRICTED); @SpamBot tells when the limit ends',
  FROZEN_METHOD_INVALID: 'Telegram froze this account (FROZEN_METHOD_INVALID): it may not send until an appeal succeeds',
};

const floodError = (seconds: number, cause?: unknown) =>
  tgError('TG_API_429', `Telegram asks to wait ${seconds} s`, { retryAfter: seconds, cause });

const fromCode = (code: TelegramCode, cause: unknown, detail?: string) =>
  tgError(code, messages[code] ?? detail ?? code, { cause });

// Telegram's refusal of one request: the code, and a message that keeps Telegram's own reason.
function refusal(code: TelegramCode | 'VALIDATION_ERROR', name: string, cause: unknown): AppError {
  if (code === 'VALIDATION_ERROR') return new AppError(code, reasons[name] ?? `Telegram refused the request as invalid (${name})`, { cause });
  // Telegram's own "no" to a number that passed our shape check: 422, not the 400 of a malformed string (API.md).
  if (code === 'TG_PHONE_INVALID') return tgError(code, messages[code]!, { cause, status: 422 });
  const text = reasons[name] ?? (code === 'TG_CHAT_WRITE_FORBIDDEN' || code === 'TG_MEDIA_INVALID' ? `${messages[code] ?? 'Telegram refused the file'} (${name})` : messages[code] ?? name);
  return tgError(code, text, { cause });
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
    // A session live twice is a bug of ours (two owners of one connection), not the user's: counted
    // for the AuthKeyDuplicated alert (ops/prometheus/alerts.yml).
    if (name === 'AUTH_KEY_DUPLICATED') metrics.platformAuthKeyDuplicated.inc({ platform: 'telegram' });
    const code = rpcCodes[name];
    if (code) return refusal(code, name, err);
    // Parts Telegram no longer has (expired between upload and send): uploading again helps.
    if (/^FILE_PART_\d+_MISSING$/.test(name)) return tgError('TG_UNAVAILABLE', `Telegram lost an uploaded part (${name})`, { cause: err });
    if (err.code === 401) return fromCode('TG_SESSION_EXPIRED', err);
    if (err.code === 420) return floodError(1, err);
    // MTProto's error codes: 406 is "like 400, shown differently" (core.telegram.org/api/errors).
    if (err.code === 400 || err.code === 406) return refusal('VALIDATION_ERROR', name, err);
    if (err.code === 403) return refusal('TG_CHAT_WRITE_FORBIDDEN', name, err);
    return tgError('TG_UNAVAILABLE', `Telegram answered ${name || 'an error'}`, { cause: err });
  }
  return tgError('TG_UNAVAILABLE', messages.TG_UNAVAILABLE!, { cause: err });
}

export type { BotApiFailure };

// The Bot API's descriptions for edits and deletes (editMessageText, editMessageCaption, deleteMessage).
// "message can't be deleted" says neither why nor whether the 48 h passed: the driver, which knows the
// message's age, may name it TG_MESSAGE_TOO_OLD instead.
function botEditError(description: string): TelegramCode | undefined {
  if (/message to (?:edit|delete) not found/i.test(description)) return 'TG_MESSAGE_NOT_FOUND';
  if (/message can't be (?:edited|deleted)|MESSAGE_AUTHOR_REQUIRED|MESSAGE_DELETE_FORBIDDEN/i.test(description)) return 'TG_MESSAGE_FORBIDDEN';
  if (/MESSAGE_EDIT_TIME_EXPIRED/i.test(description)) return 'TG_MESSAGE_TOO_OLD';
  return undefined;
}

/** Bot API envelope `{ok:false, error_code, description}` → AppError. */
export function mapBotApiError(body: BotApiFailure, method: string): AppError {
  const description = body.description ?? '';
  if (body.error_code === 429) return floodError(Math.max(1, body.parameters?.retry_after ?? 1), body);
  if (body.error_code === 401 || body.error_code === 404 && method === 'getMe') {
    return fromCode('TG_BOT_TOKEN_INVALID', body);
  }
  if (body.error_code === 403) return fromCode(/not a member|kicked/i.test(description) ? 'TG_NOT_MEMBER' : 'TG_CHAT_WRITE_FORBIDDEN', body);
  // getUpdates while a webhook is set, or beside another poller (core.telegram.org/bots/api#getupdates).
  if (body.error_code === 409) {
    const why = /webhook/i.test(description)
      ? 'its updates go to a webhook (delete it, connect with takeOver: true, or use updates: "none")'
      : 'another program polls its updates (stop it, or connect with updates: "none" to only send)';
    return tgError('TG_BOT_IN_USE', `The bot is in use elsewhere: ${why}`, { cause: body });
  }
  // Uploads over the Bot API's 50 MB: its HTTP server refuses the request itself.
  if (body.error_code === 413) return tgError('TG_MEDIA_INVALID', 'The file is larger than the Bot API takes (50 MB)', { cause: body });
  if (body.error_code === 400) {
    const edit = botEditError(description);
    if (edit) return tgError(edit, messages[edit]!, { cause: body });
    if (/PHOTO_SAVE_FILE_INVALID|PHOTO_INVALID_DIMENSIONS|wrong file identifier|failed to get HTTP URL content|there is no \w+ in the request|caption is too long|file is too big/i.test(description)) {
      return tgError('TG_MEDIA_INVALID', `Telegram refused the file: ${description.replace(/^Bad Request:\s*/i, '').slice(0, 200)}`, { cause: body });
    }
    if (/chat not found|user not found|PEER_ID_INVALID/i.test(description)) return fromCode('TG_CHAT_NOT_FOUND', body);
    const movedTo = body.parameters?.migrate_to_chat_id;
    if (movedTo !== undefined) return tgError('TG_CHAT_NOT_FOUND', `The group was upgraded to a supergroup; send to ${movedTo}`, { cause: body });
    if (/not enough rights|have no rights|need administrator rights|CHAT_WRITE_FORBIDDEN|CHAT_SEND_[A-Z]+_FORBIDDEN/i.test(description)) return fromCode('TG_CHAT_WRITE_FORBIDDEN', body);
    if (/member list is inaccessible|USER_NOT_PARTICIPANT|not a member/i.test(description)) return fromCode('TG_NOT_MEMBER', body);
    // Every other 400 is Telegram's "no" to this message: bad markup ("can't parse entities: …"),
    // "message to be replied not found", text too long or empty. Its reason goes to the caller;
    // descriptions name offsets and tags, never the token.
    const reason = description.replace(/^Bad Request:\s*/i, '').slice(0, 200) || 'Bad Request';
    return new AppError('VALIDATION_ERROR', `Telegram refused the ${method === 'sendMessage' ? 'message' : 'request'}: ${reason}`, { cause: body });
  }
  return tgError('TG_UNAVAILABLE', `Telegram Bot API ${method} failed (${body.error_code})`, { cause: body });
}
