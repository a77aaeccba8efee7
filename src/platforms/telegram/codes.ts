import { errors } from 'telegram';
import { AppError, registerErrorCodes, type AppErrorOptions, type ErrorCategory, type ErrorCodeSpec } from '../../errors.ts';

// Telegram's error codes of API.md, with the HTTP status they answer and what they mean to the core
// (src/errors.ts ErrorCategory). Registered when this module loads: every file of the adapter that
// raises a TG_ code does it through tgError below, so the table is always in place first.

const spec = (status: number, category: ErrorCategory): ErrorCodeSpec => ({ status, category });

export const telegramCodes = {
  // 400 for a malformed number (checked before any call); Telegram's own refusal answers 422.
  TG_PHONE_INVALID: spec(400, 'fatal'),
  TG_PHONE_BANNED: spec(422, 'fatal'),
  TG_CODE_INVALID: spec(422, 'rejected'),
  TG_CODE_EXPIRED: spec(422, 'rejected'),
  TG_2FA_REQUIRED: spec(409, 'rejected'),
  TG_PASSWORD_INVALID: spec(422, 'rejected'),
  TG_SESSION_EXPIRED: spec(422, 'reauthorize'),
  TG_API_429: spec(429, 'rate-limited-until'),
  // A bot token never starts working by retrying; there is no re-login for a bot, only a new token.
  TG_BOT_TOKEN_INVALID: spec(422, 'fatal'),
  TG_CHAT_NOT_FOUND: spec(422, 'rejected'),
  TG_NOT_MEMBER: spec(422, 'rejected'),
  TG_NOT_ADMIN: spec(422, 'rejected'),
  TG_CHAT_WRITE_FORBIDDEN: spec(422, 'rejected'),
  // Edits and deletes: the message is gone from the chat; it is not the connection's to change (or
  // the connection lacks the rights); it is older than Telegram lets it be changed.
  TG_MESSAGE_NOT_FOUND: spec(422, 'rejected'),
  TG_MESSAGE_FORBIDDEN: spec(422, 'rejected'),
  TG_MESSAGE_TOO_OLD: spec(422, 'rejected'),
  // Telegram refused the file: a photo over 10 MB, a caption too long, a file over the Bot API's 50 MB.
  TG_MEDIA_INVALID: spec(422, 'rejected'),
  TG_UNAVAILABLE: spec(503, 'retry'),
  // auth.resendCode: Telegram has no other way to send the code (SEND_CODE_UNAVAILABLE).
  TG_CODE_RESEND_UNAVAILABLE: spec(422, 'rejected'),
  // auth.requestPasswordRecovery: the account has no recovery e-mail (PASSWORD_RECOVERY_NA).
  TG_RECOVERY_UNAVAILABLE: spec(422, 'rejected'),
  // The bot's updates go to a webhook or another poller (Bot API 409 on getUpdates): polling again
  // only fights the owner's backend for them. Ends the connection until the owner chooses.
  TG_BOT_IN_USE: spec(409, 'fatal'),
} satisfies Record<string, ErrorCodeSpec>;

export type TelegramCode = keyof typeof telegramCodes;

registerErrorCodes(telegramCodes);

export interface TelegramErrorOptions extends Omit<AppErrorOptions, 'category'> {
  /** No answer came after the request left: it may have taken effect (category outcome-unknown). */
  outcomeUnknown?: boolean;
}

export interface BotApiFailure { error_code: number; description?: string; parameters?: { retry_after?: number; migrate_to_chat_id?: number } }

export const isBotApiFailure = (v: unknown): v is BotApiFailure =>
  typeof v === 'object' && v !== null && typeof (v as BotApiFailure).error_code === 'number';

/**
 * A Telegram error. TG_UNAVAILABLE is about the link (scope connection: reconnect) unless Telegram
 * answered — an RPC error or a Bot API envelope (its 500) says nothing about the link, so one
 * request failed and the connection stays active for the others.
 */
export function tgError(code: TelegramCode, message: string, opts: TelegramErrorOptions = {}): AppError {
  const { outcomeUnknown, ...rest } = opts;
  const answered = opts.cause instanceof errors.RPCError || isBotApiFailure(opts.cause);
  return new AppError(code, message, {
    ...(code === 'TG_UNAVAILABLE' && !answered && opts.scope === undefined ? { scope: 'connection' } : {}),
    ...rest,
    ...(outcomeUnknown ? { category: 'outcome-unknown' } : {}),
  });
}
