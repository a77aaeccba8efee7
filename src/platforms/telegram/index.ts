import { bulkhead } from 'cockatiel';
import Joi from 'joi';
import { isPossiblePhoneNumber, parsePhoneNumber } from 'libphonenumber-js/max';
import { errors } from 'telegram';
import { MACHINE_VERSION as ACCOUNT_VERSION, migrateAccountSnapshot } from '../../../machines/account.machine.ts';
import { MACHINE_VERSION as BOT_VERSION, migrateBotSnapshot } from '../../../machines/bot.machine.ts';
import { maskPhone } from '../../observability/redact.ts';
import type { ConnectionKind, NewConnectionPlan, PlatformAdapter, RateWindow, SendCapabilities } from '../adapter.ts';
import { accountDriver, providedAccountMachine, type AccountDriverOptions } from './account-driver.ts';
import { BotApi } from './bot-api.ts';
import { botDriver, providedBotMachine, type BotDriverOptions } from './bot-driver.ts';
import { isBotApiFailure, telegramCodes, tgError } from './codes.ts';
import { mapBotApiError, mapTelegramError } from './errors.ts';

// Telegram as one adapter of the platform interface (src/platforms/adapter.ts): user accounts
// (GramJS over MTProto: phone code, QR, 2FA) and bots (the Bot API over HTTP). Nothing outside this
// folder knows GramJS, the Bot API or a TG_ code.

export interface TelegramPacing {
  /** About 1 message per second into one chat (core.telegram.org/bots/faq). */
  chatPerSecond: number;
  /** At most 20 messages per minute into one group. */
  groupPerMinute: number;
  /** About 30 messages per second per bot over all chats. */
  botPerSecond: number;
}

export const defaultTelegramPacing: TelegramPacing = { chatPerSecond: 1, groupPerMinute: 20, botPerSecond: 30 };

export interface TelegramOptions {
  account: Omit<AccountDriverOptions, 'connectSlot'>;
  bot: BotDriverOptions;
  // Account connects in flight at once (default 16). A connect costs the daemon ~2.5 ms of CPU in
  // GramJS (bench:accounts), and every one whose answer arrives in the same poll phase runs before
  // the loop turns: 200 in flight held the loop ~400 ms at a time (p99 0.4 s during a restart of
  // 1,000); 16 keep a turn near 20–30 ms and still keep the CPU busy, as the DC answers in ~1 ms.
  maxConcurrentConnects?: number;
  pacing?: Partial<TelegramPacing>;
}

// Telegram bot tokens look like 123456:ABC-def (API.md); the pattern also keeps odd bytes out of logs.
export const botTokenPattern = /^\d+:[\w-]+$/;

// Conditions are written `is <anything else> → forbidden, otherwise required`: hapi-swagger lists a field as
// required whenever a `then` requires it, which would document phone and token as both required.
const createSchema = Joi.object({
  platform: Joi.string().valid('telegram').default('telegram'),
  kind: Joi.string().valid('user', 'bot').required(),
  method: Joi.string().valid('phone', 'qr').description('user only; default phone')
    .when('kind', { is: Joi.valid('user').required(), then: Joi.any().default('phone'), otherwise: Joi.forbidden() }),
  phone: Joi.string().trim().max(32).example('+12015550123').description('required for kind user with method phone (the default): E.164 or international format')
    .when('method', { is: Joi.any().invalid('phone'), then: Joi.forbidden(), otherwise: Joi.required() }),
  token: Joi.string().max(256).pattern(botTokenPattern).example('123456:ABC-def').description('required for kind bot, refused otherwise')
    .when('kind', { is: Joi.any().invalid('bot'), then: Joi.forbidden(), otherwise: Joi.required() }),
  updates: Joi.string().valid('poll', 'none').description('bot only; default poll. none: the bot only sends and checks chats, never calls getUpdates (it can live beside its own backend)')
    .when('kind', { is: Joi.any().invalid('bot'), then: Joi.forbidden() }),
  takeOver: Joi.boolean().description('bot only: delete the bot\'s webhook before polling (its updates then come here)')
    .when('kind', { is: Joi.any().invalid('bot'), then: Joi.forbidden() }),
}).label('CreateTelegramConnection').example({ platform: 'telegram', kind: 'user', phone: '+12015550123' });

interface CreateBody { kind: 'user' | 'bot'; method?: 'phone' | 'qr'; phone?: string; token?: string; updates?: 'poll' | 'none'; takeOver?: boolean }

// Numbers Telegram takes that no numbering plan lists: its test numbers +99966 X YYYY (X the test DC,
// core.telegram.org/api/auth#test-accounts) and Fragment's anonymous +888 numbers (fragment.com).
const telegramOnlyNumber = /^\+(?:99966\d{5}|888\d{4,12})$/;

/**
 * The number in E.164 when it can be one: a number libphonenumber calls *possible* (length and country
 * code; whether it is assigned is Telegram's to say — its PHONE_NUMBER_INVALID answers then), or one of
 * Telegram's own ranges above. Undefined for a malformed string.
 */
export function telegramPhone(raw: string): string | undefined {
  const compact = raw.replace(/[\s().-]/g, '');
  if (telegramOnlyNumber.test(compact)) return compact;
  return isPossiblePhoneNumber(raw) ? parsePhoneNumber(raw).number : undefined;
}

// The forms API.md accepts for a chat, checked before anything reaches Telegram: @name (usernames are
// 5..32 chars; 4 allowed for old ones), a numeric id (Bot API style -100…), a public link t.me/name, an
// invite link t.me/+hash or t.me/joinchat/hash.
const usernameRe = /^@([A-Za-z][A-Za-z0-9_]{3,31})$/;
const numericRe = /^-?\d{1,20}$/;
const publicLinkRe = /^(?:https?:\/\/)?(?:t|telegram)\.me\/([A-Za-z][A-Za-z0-9_]{3,31})\/?$/;
const inviteLinkRe = /^(?:https?:\/\/)?(?:t|telegram)\.me\/(?:\+|joinchat\/)([A-Za-z0-9_-]{8,64})\/?$/;

/** Canonical chat reference: `@name`, the numeric id, or `https://t.me/+hash`; undefined if none fits. */
export function normaliseChatRef(raw: string): string | undefined {
  const s = raw.trim();
  let m: RegExpMatchArray | null;
  if ((m = s.match(usernameRe)) || (m = s.match(publicLinkRe))) return `@${m[1]}`;
  if (numericRe.test(s)) return s;
  if ((m = s.match(inviteLinkRe))) return `https://t.me/+${m[1]}`;
  return undefined;
}

const MB = 1024 * 1024;

/**
 * Files each kind sends, with Telegram's limits: photos up to 10 MB (larger ones are refused:
 * PHOTO_SAVE_FILE_INVALID), other files up to 50 MB through the Bot API (multipart) and 2000 MB
 * through an account (4000 parts of 512 KiB); captions up to 1024 characters.
 */
function mediaCapabilities(fileMax: number): NonNullable<SendCapabilities['media']> {
  return {
    types: { photo: { maxBytes: 10 * MB }, document: { maxBytes: fileMax }, video: { maxBytes: fileMax }, audio: { maxBytes: fileMax }, voice: { maxBytes: fileMax }, animation: { maxBytes: fileMax } },
    captionMaxLength: 1024,
  };
}

function sendCapabilities(resendSafe: boolean, connection: RateWindow[], p: TelegramPacing, fileMax: number): SendCapabilities {
  return {
    text: { maxLength: 4096, parseModes: ['html', 'markdown'] },
    resendSafe,
    media: mediaCapabilities(fileMax),
    // Both kinds repeat edits and deletes safely: a repeated edit is MESSAGE_NOT_MODIFIED / "message is
    // not modified", a repeated delete deletes nothing (MTProto) or "message to delete not found" (Bot API).
    operations: { edit: { resendSafe: true }, delete: { resendSafe: true } },
    pacing: (chat) => ({
      // Bot API and MTProto ids of groups, supergroups and channels are negative (-100… for the latter).
      chat: chat.startsWith('-') ? [{ n: 1, ms: 1000 / p.chatPerSecond }, { n: p.groupPerMinute, ms: 60_000 }] : [{ n: 1, ms: 1000 / p.chatPerSecond }],
      connection,
    }),
  };
}

export function telegramAdapter(opts: TelegramOptions): PlatformAdapter {
  const connects = bulkhead(opts.maxConcurrentConnects ?? 16, Number.MAX_SAFE_INTEGER);
  const connectSlot = <T>(fn: () => Promise<T>) => connects.execute(fn);
  const pacing = { ...defaultTelegramPacing, ...opts.pacing };

  const user: ConnectionKind = {
    kind: 'user',
    machineVersion: ACCOUNT_VERSION,
    machine: providedAccountMachine,
    // Version 1 had no awaiting-code.resend and no codeInfo: the same states, one context field more.
    migrateSnapshot: (stored, version) => (version === 1 ? migrateAccountSnapshot(stored) : undefined),
    input: (row, backoff) => ({ connectionId: row.id, login: (row.login?.method as string | undefined) ?? 'session', backoff }),
    driver: (ctx) => accountDriver(ctx, { ...opts.account, connectSlot }),
    loginSteps: ['code', 'password', 'qr'],
    // random_id derived from the message id: Telegram drops a resend as a duplicate. User accounts
    // have no published global rate; their flood waits pause the whole connection when Telegram says so.
    send: sendCapabilities(true, [], pacing, 2000 * MB),
  };

  const bot: ConnectionKind = {
    kind: 'bot',
    machineVersion: BOT_VERSION,
    machine: providedBotMachine,
    migrateSnapshot: (stored, version) => (version === 1 ? migrateBotSnapshot(stored) : undefined),
    input: (row, backoff) => ({ connectionId: row.id, backoff }),
    driver: (ctx) => botDriver(ctx, opts.bot),
    loginSteps: [],
    // The Bot API has no idempotency key: a resend after an unanswered call could post twice. 30/s is
    // its documented global limit per bot.
    send: sendCapabilities(false, [{ n: pacing.botPerSecond, ms: 1000 }], pacing, 50 * MB),
  };

  return {
    name: 'telegram',
    kinds: [user, bot],
    errorCodes: telegramCodes,
    documentedErrors: {
      create: { 400: ['TG_PHONE_INVALID'], 422: ['TG_BOT_TOKEN_INVALID', 'TG_PHONE_BANNED'], 503: ['TG_UNAVAILABLE'] },
      code: { 422: ['TG_CODE_INVALID', 'TG_CODE_EXPIRED'], 503: ['TG_UNAVAILABLE'] },
      'code.resend': { 422: ['TG_CODE_RESEND_UNAVAILABLE (no other way to send it)'], 429: ['TG_API_429 (asked before login.resendAfter)'], 503: ['TG_UNAVAILABLE'] },
      password: { 422: ['TG_PASSWORD_INVALID'], 503: ['TG_UNAVAILABLE'] },
      'password.recovery': { 422: ['TG_RECOVERY_UNAVAILABLE (no recovery e-mail)', 'TG_CODE_INVALID', 'TG_CODE_EXPIRED'], 503: ['TG_UNAVAILABLE'] },
      'chat.add': { 422: ['TG_CHAT_NOT_FOUND', 'TG_NOT_MEMBER', 'TG_NOT_ADMIN (requireAdmin, nothing stored)'], 503: ['TG_UNAVAILABLE'] },
      'chat.refresh': { 422: ['TG_CHAT_NOT_FOUND', 'TG_NOT_MEMBER (refresh)'], 503: ['TG_UNAVAILABLE (refresh)'] },
      delete: { 503: ['TG_UNAVAILABLE'] },
    },
    createSchema,
    async prepare(raw): Promise<NewConnectionPlan> {
      const body = raw as unknown as CreateBody;
      if (body.kind === 'bot') {
        const token = body.token!;
        const api = new BotApi({ baseUrl: opts.bot.botApiUrl, token, ...(opts.bot.timeoutMs ? { timeoutMs: opts.bot.timeoutMs } : {}) });
        const me = await api.getMe();
        const profile = { platformUserId: String(me.id), displayName: me.first_name, ...(me.username ? { username: me.username } : {}) };
        const updates = body.updates ?? 'poll';
        // The owner asked for it: the webhook goes (its pending updates stay, for us to poll).
        const takeOver = updates === 'poll' && body.takeOver === true;
        if (takeOver) await api.call('deleteWebhook', { drop_pending_updates: false });
        return {
          kind: 'bot', secrets: { bot_token: token, ...(updates === 'none' ? { bot_updates: 'none' } : {}) }, profile, accountId: profile.platformUserId,
          audit: { kind: 'bot', botId: profile.platformUserId, updates, ...(takeOver ? { takeOver: true, webhookDeleted: true } : {}) },
        };
      }
      // Without application credentials Telegram refuses every login (API_ID_INVALID): say so at once
      // instead of creating a connection that retries until its breaker opens. Bots need none.
      if (!opts.account.apiId || !opts.account.apiHash) {
        throw tgError('TG_UNAVAILABLE', 'TELEGRAM_API_ID and TELEGRAM_API_HASH are not set on this service: phone and QR logins need Telegram application credentials (my.telegram.org); bots work without them', { scope: 'request' });
      }
      if (body.method === 'qr') return { kind: 'user', secrets: {}, login: { method: 'qr' }, audit: { kind: 'user', method: 'qr' } };
      const e164 = telegramPhone(body.phone!);
      if (!e164) {
        throw tgError('TG_PHONE_INVALID', 'phone is not a valid number in international format (+ and country code)', {
          details: [{ path: 'phone', message: 'not a valid phone number', type: 'phone.invalid' }],
        });
      }
      const phoneMasked = maskPhone(e164);
      return { kind: 'user', secrets: { phone: e164 }, login: { method: 'phone' }, phoneMasked, audit: { kind: 'user', method: 'phone', phone: phoneMasked } };
    },
    classify(err) {
      if (err instanceof errors.RPCError || err instanceof errors.FloodWaitError) return mapTelegramError(err);
      if (isBotApiFailure(err)) return mapBotApiError(err, 'request');
      return undefined;
    },
    chatRef: { normalise: normaliseChatRef, description: '"chat" must be @name, a numeric chat id, https://t.me/name or an invite link' },
  };
}
