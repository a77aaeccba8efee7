import { fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import { botMachine } from '../../../machines/bot.machine.ts';
import type { ConnectOutput, StepInput } from '../../../machines/connection.ts';
import { AppError } from '../../errors.ts';
import type { ChatCheck, Driver, DriverContext, ReceivedMessage } from '../adapter.ts';
import { tgError } from './codes.ts';
import { requireAdmin } from './account-chats.ts';
import { BotApi, type BotChatMember, type BotUpdate } from './bot-api.ts';
import { botMedia, type BotMessageFiles } from './incoming-media.ts';

// The I/O of one bot: the Bot API over HTTP (TELEGRAM_BOT_API_URL). The token is decrypted into
// this closure only; it reaches the Bot API URL path and nothing else.

export interface BotDriverOptions {
  botApiUrl: string;
  timeoutMs?: number;
  /** Long-poll getUpdates for incoming messages (one request in flight per bot). */
  pollUpdates?: boolean;
  pollTimeoutS?: number;
}

type Watcher = (event: { type: string; [k: string]: unknown }) => void;

interface BotSlots {
  connect(): Promise<ConnectOutput>;
  watch(sendBack: Watcher): () => void;
  logOut(): Promise<void>;
}

// The failures the bot machine notices itself, in Telegram's words.
export const botErrors = {
  dropped: { code: 'TG_UNAVAILABLE', message: 'Bot API connection dropped', category: 'retry' },
  revoked: { code: 'TG_BOT_TOKEN_INVALID', message: 'the bot token was revoked or is not valid', category: 'fatal' },
} as const;

/** The bot machine with its slots provided by `slotsOf` (built once per supervisor). */
export function providedBotMachine(slotsOf: (connectionId: string) => Driver['slots']): AnyStateMachine {
  const of = (id: string) => slotsOf(id) as unknown as BotSlots;
  return botMachine(botErrors).provide({
    actors: {
      connect: fromPromise<ConnectOutput, StepInput>(({ input }) => of(input.connectionId).connect()),
      logOut: fromPromise<void, StepInput>(({ input }) => of(input.connectionId).logOut()),
      watch: fromCallback<any, StepInput>(({ sendBack, input }) => of(input.connectionId).watch(sendBack as Watcher)),
    },
  });
}

// The pause before a getUpdates 409 is confirmed: 2 s lets a poller of our own previous run (a
// restart, a moved lease) finish its long poll's HTTP request; the owner's backend keeps polling.
const CONFLICT_CONFIRM_MS = 2000;

// core.telegram.org/bots/api#deletemessage: "A message can only be deleted if it was sent less than 48 hours ago".
const botDeleteWindowMs = 48 * 3600_000;

const parseModeOf = (mode: 'html' | 'markdown') => (mode === 'html' ? 'HTML' : 'MarkdownV2');

/** The Bot API's description behind a mapped error (its envelope is the AppError's cause), or ''. */
const botDescription = (err: unknown): string => {
  const cause = err instanceof AppError ? (err.cause as { description?: unknown } | undefined) : undefined;
  return typeof cause?.description === 'string' ? cause.description : '';
};

export function botRef(ref: string): string {
  const s = ref.trim();
  const link = /^(?:https?:\/\/)?(?:t\.me|telegram\.me)\/([A-Za-z][\w]{3,31})\/?$/i.exec(s);
  if (link) return `@${link[1]}`;
  if (/^@[A-Za-z][\w]{3,31}$/.test(s) || /^-?\d{1,20}$/.test(s)) return s;
  // Bots cannot join or resolve invite links.
  throw tgError('TG_CHAT_NOT_FOUND', 'Bots can use a chat by @name or numeric id only');
}

const rightsOf = (m: BotChatMember): Record<string, boolean> => {
  const creator = m.status === 'creator';
  return {
    postMessages: creator || !!m.can_post_messages,
    editMessages: creator || !!m.can_edit_messages,
    deleteMessages: creator || !!m.can_delete_messages,
    banUsers: creator || !!m.can_restrict_members,
    inviteUsers: creator || !!m.can_invite_users,
    pinMessages: creator || !!m.can_pin_messages,
    changeInfo: creator || !!m.can_change_info,
    addAdmins: creator || !!m.can_promote_members,
  };
};

export function botDriver(ctx: DriverContext, opts: BotDriverOptions): Driver {
  let api: BotApi | undefined;
  let botId: number | undefined;

  const client = async (): Promise<BotApi> => {
    if (api) return api;
    const { bot_token: token } = await ctx.secrets.load();
    if (!token) throw tgError('TG_BOT_TOKEN_INVALID', 'this bot has no token stored');
    api = new BotApi({ baseUrl: opts.botApiUrl, token, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    return api;
  };

  const impl: BotSlots = {
    connect: () =>
      ctx.guard(async () => {
        const me = await (await client()).getMe();
        botId = me.id;
        return { authorized: true, profile: { platformUserId: String(me.id), displayName: me.first_name, ...(me.username ? { username: me.username } : {}) } };
      }),
    // Bot API logOut locks the token out of the cloud server for 10 minutes: deleting a bot
    // connection only forgets the token.
    logOut: async () => undefined,
    watch: (sendBack) => {
      if (opts.pollUpdates === false) return () => undefined;
      let stopped = false;
      let offset = 0;
      let failures = 0;
      let conflicts = 0;
      void (async () => {
        // updates: "none" (stored at create): the bot only sends; its updates belong to its own backend.
        if ((await ctx.secrets.load().catch(() => ({} as Record<string, string>))).bot_updates === 'none') return;
        while (!stopped) {
          try {
            const updates = await (await client()).getUpdates(offset, opts.pollTimeoutS ?? 25);
            failures = 0;
            conflicts = 0;
            let next = offset;
            for (const u of updates) {
              next = u.update_id + 1;
              if (!stopped) sendBack({ type: 'UPDATE', update: u });
            }
            // The next getUpdates' offset confirms these to Telegram, which then forgets them: only
            // once they are stored. A crash before that gets them again (stored once: deduplicated by
            // chat and message id); confirming on receipt lost 183 of 250 to a kill -9
            // (tests/events/incoming-faults.e2e.test.ts). A failed store is fetched again after a pause.
            if (updates.length > 0 && !stopped) await ctx.incomingStored?.();
            offset = next;
          } catch (err) {
            if (stopped) return;
            if (err instanceof AppError && err.code === 'TG_BOT_TOKEN_INVALID') return sendBack({ type: 'REVOKED' });
            // 409: a webhook or another poller has the updates. One more poll after a pause confirms
            // it (the other poller may have been a previous run of ours, gone now); a second 409 ends
            // the connection in error TG_BOT_IN_USE: no loop fighting the owner's backend.
            if (err instanceof AppError && err.code === 'TG_BOT_IN_USE') {
              if (++conflicts >= 2) return sendBack({ type: 'REVOKED', error: err });
              await new Promise((r) => setTimeout(r, CONFLICT_CONFIRM_MS).unref());
              continue;
            }
            if (err instanceof AppError && err.code === 'TG_API_429') {
              await new Promise((r) => setTimeout(r, (err.retryAfter ?? 1) * 1000).unref());
              continue;
            }
            // Three failed polls in a row (~30 s of silence) is a dead link, not a hiccup.
            if (++failures >= 3) return sendBack({ type: 'CONNECTION_DROPPED' });
            await new Promise((r) => setTimeout(r, 1000 * failures).unref());
          }
        }
      })();
      return () => { stopped = true; };
    },
  };

  const checkBotChat = async (ref: string): Promise<ChatCheck> => {
    const bot = await client();
    const chat = await bot.getChat(botRef(ref));
    if (botId === undefined) botId = (await bot.getMe()).id;
    const member = await bot.getChatMember(chat.id, botId);
    if (member.status === 'left' || member.status === 'kicked') throw tgError('TG_NOT_MEMBER', 'The bot is not a member of this chat');
    const isAdmin = member.status === 'creator' || member.status === 'administrator';
    const rights = rightsOf(member);
    const canSend = chat.type === 'channel'
      ? member.status === 'creator' || !!member.can_post_messages
      : member.status !== 'restricted' || member.can_send_messages !== false;
    return {
      platformChatId: String(chat.id), type: chat.type, title: chat.title ?? chat.first_name ?? '',
      ...(chat.username ? { username: chat.username } : {}), isAdmin, canSend, rights,
    };
  };

  return {
    slots: impl as unknown as Driver['slots'],
    async send(msg) {
      const options = {
        ...(msg.parseMode ? { parse_mode: parseModeOf(msg.parseMode) } : {}),
        ...(msg.silent ? { disable_notification: true } : {}),
        ...(msg.replyTo ? { reply_to_message_id: Number(msg.replyTo) } : {}),
      };
      const api = await client();
      const sent = msg.media
        ? await api.sendMedia(msg.media, { chat_id: botRef(msg.chat), ...(msg.text ? { caption: msg.text } : {}), ...options })
        : await api.sendMessage({ chat_id: botRef(msg.chat), text: msg.text, ...options });
      return { platformMessageId: String(sent.message_id) };
    },
    // Edits and deletes repeat harmlessly, unlike sends: Telegram answers a repeated edit "message is
    // not modified" and a repeated delete "message to delete not found", both taken as done.
    async operate(op) {
      const api = await client();
      const target = { chat_id: botRef(op.chat), message_id: Number(op.platformMessageId) };
      try {
        if (op.type === 'delete') await api.call('deleteMessage', target);
        else if (op.media) await api.call('editMessageCaption', { ...target, caption: op.text, ...(op.parseMode ? { parse_mode: parseModeOf(op.parseMode) } : {}) });
        else await api.call('editMessageText', { ...target, text: op.text, ...(op.parseMode ? { parse_mode: parseModeOf(op.parseMode) } : {}) });
      } catch (err) {
        const description = botDescription(err);
        if (op.type === 'edit' && /message is not modified/i.test(description)) return;
        if (op.type === 'delete' && /message to delete not found/i.test(description)) return;
        // "message can't be deleted" says neither why; past Telegram's 48 h it is the age.
        if (op.type === 'delete' && /message can't be deleted/i.test(description) && Date.now() - op.sentAt.getTime() > botDeleteWindowMs) {
          throw tgError('TG_MESSAGE_TOO_OLD', 'Telegram lets a bot delete a message only within 48 hours of sending it', { cause: err });
        }
        throw err;
      }
    },
    async checkChat(ref, opts): Promise<ChatCheck> {
      return requireAdmin(await checkBotChat(ref), opts);
    },
    received(update): ReceivedMessage | null {
      const m = (update as BotUpdate).message ?? (update as BotUpdate).channel_post;
      const media = m && botMedia(m as BotMessageFiles);
      if (!m || (typeof m.text !== 'string' && !media)) return null;
      return {
        chat: String(m.chat.id), from: String(m.from?.id ?? m.chat.id), text: m.text ?? m.caption ?? '',
        platformMessageId: String(m.message_id), date: new Date(m.date * 1000).toISOString(), ...(media ? { media } : {}),
      };
    },
    // A bot holds one HTTP client and no caches: a few KiB.
    bytes: () => 4096,
    trim: () => undefined,
    logOut: impl.logOut,
    async dispose() { api = undefined; },
  };
}
