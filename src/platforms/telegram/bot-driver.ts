import { fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import { botMachine, type BotEvent, type BotStepInput, type VerifyOutput } from '../../../machines/bot.machine.ts';
import { AppError } from '../../errors.ts';
import type { Driver, DriverContext, ReceivedMessage } from '../../supervisor/driver.ts';
import type { ChatCheck } from '../../supervisor/types.ts';
import { BotApi, type BotChatMember, type BotUpdate } from './bot-api.ts';

// The I/O of one bot: the Bot API over HTTP (TELEGRAM_BOT_API_URL). The token is decrypted into
// this closure only; it reaches the Bot API URL path and nothing else.

export interface BotDriverOptions {
  botApiUrl: string;
  timeoutMs?: number;
  /** Long-poll getUpdates for incoming messages (one request in flight per bot). */
  pollUpdates?: boolean;
  pollTimeoutS?: number;
}

interface BotSlots {
  verify(): Promise<VerifyOutput>;
  watch(sendBack: (event: BotEvent) => void): () => void;
}

// Provided once per process; actors find their bot by connection id (see account-driver.ts).
const slots = new Map<string, BotSlots>();
const slotsOf = (connectionId: string): BotSlots => {
  const found = slots.get(connectionId);
  if (!found) throw new AppError('CONNECTION_NOT_ACTIVE', 'The connection is not running in this process');
  return found;
};
let provided: AnyStateMachine | undefined;
const providedMachine = (): AnyStateMachine => (provided ??= botMachine.provide({
  actors: {
    verify: fromPromise<VerifyOutput, BotStepInput>(({ input }) => slotsOf(input.connectionId).verify()),
    watch: fromCallback<BotEvent, BotStepInput>(({ sendBack, input }) => slotsOf(input.connectionId).watch(sendBack)),
  },
}));

export function botRef(ref: string): string {
  const s = ref.trim();
  const link = /^(?:https?:\/\/)?(?:t\.me|telegram\.me)\/([A-Za-z][\w]{3,31})\/?$/i.exec(s);
  if (link) return `@${link[1]}`;
  if (/^@[A-Za-z][\w]{3,31}$/.test(s) || /^-?\d{1,20}$/.test(s)) return s;
  // Bots cannot join or resolve invite links.
  throw new AppError('TG_CHAT_NOT_FOUND', 'Bots can use a chat by @name or numeric id only');
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
    if (!token) throw new AppError('TG_BOT_TOKEN_INVALID', 'this bot has no token stored');
    api = new BotApi({ baseUrl: opts.botApiUrl, token, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    return api;
  };

  const impl: BotSlots = {
      verify: () =>
        ctx.guard(async () => {
          const me = await (await client()).getMe();
          botId = me.id;
          return { profile: { platformUserId: String(me.id), displayName: me.first_name, ...(me.username ? { username: me.username } : {}) } };
        }),
      watch: (sendBack) => {
        if (opts.pollUpdates === false) return () => undefined;
        let stopped = false;
        let offset = 0;
        let failures = 0;
        void (async () => {
          while (!stopped) {
            try {
              const updates = await (await client()).getUpdates(offset, opts.pollTimeoutS ?? 25);
              failures = 0;
              for (const u of updates) {
                offset = u.update_id + 1;
                if (!stopped) sendBack({ type: 'UPDATE', update: u });
              }
            } catch (err) {
              if (stopped) return;
              if (err instanceof AppError && err.code === 'TG_BOT_TOKEN_INVALID') return sendBack({ type: 'TOKEN_REVOKED' });
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
  slots.set(ctx.connectionId, impl);

  return {
    kind: 'bot',
    machine: providedMachine(),
    setPassword() { /* bots have no 2FA */ },
    async send(msg) {
      const sent = await (await client()).sendMessage({
        chat_id: botRef(msg.chat), text: msg.text,
        ...(msg.parseMode ? { parse_mode: msg.parseMode === 'html' ? 'HTML' : 'MarkdownV2' } : {}),
        ...(msg.silent ? { disable_notification: true } : {}),
        ...(msg.replyTo ? { reply_to_message_id: Number(msg.replyTo) } : {}),
      });
      return { platformMessageId: String(sent.message_id) };
    },
    async checkChat(ref): Promise<ChatCheck> {
      const bot = await client();
      const chat = await bot.getChat(botRef(ref));
      if (botId === undefined) botId = (await bot.getMe()).id;
      const member = await bot.getChatMember(chat.id, botId);
      if (member.status === 'left' || member.status === 'kicked') throw new AppError('TG_NOT_MEMBER', 'The bot is not a member of this chat');
      const isAdmin = member.status === 'creator' || member.status === 'administrator';
      const rights = rightsOf(member);
      const canSend = chat.type === 'channel'
        ? member.status === 'creator' || !!member.can_post_messages
        : member.status !== 'restricted' || member.can_send_messages !== false;
      return {
        platformChatId: String(chat.id), type: chat.type, title: chat.title ?? chat.first_name ?? '',
        ...(chat.username ? { username: chat.username } : {}), isAdmin, canSend, rights,
      };
    },
    received(update): ReceivedMessage | null {
      const m = (update as BotUpdate).message ?? (update as BotUpdate).channel_post;
      if (!m || typeof m.text !== 'string') return null;
      return {
        chat: String(m.chat.id), from: String(m.from?.id ?? m.chat.id), text: m.text,
        platformMessageId: String(m.message_id), date: new Date(m.date * 1000).toISOString(),
      };
    },
    // A bot holds one HTTP client and no caches: a few KiB.
    bytes: () => 4096,
    trim: () => undefined,
    // Bot API logOut locks the token out of the cloud server for 10 minutes: deleting a bot
    // connection only forgets the token (the machine treats LOGOUT like STOP for bots).
    async logOut() { /* nothing to do at Telegram */ },
    async dispose() { api = undefined; },
    release() {
      if (slots.get(ctx.connectionId) === impl) slots.delete(ctx.connectionId);
    },
  };
}
