import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { World } from '../world/world.ts';
import { TgError, type BotRec, type ChatRec, type PeerRef, type WorldEvent } from '../world/types.ts';
import { BodyError, delay, readParams, sendJson, listenOn } from '../http.ts';
import { chatJson, memberJson, messageJson, privateChatJson, updateJson, userJson } from './render.ts';

// The Bot API over HTTP: /bot<token>/<method>, GET query or POST JSON/form, Telegram's envelope
// {ok, result} / {ok:false, error_code, description, parameters.retry_after}. No dedupe on
// sendMessage: the Bot API has none.

type Params = Record<string, unknown>;
type BotMethod = (bot: BotRec, p: Params) => unknown | Promise<unknown>;

class BotApiError extends Error {
  constructor(readonly status: number, description: string, readonly retryAfter?: number) {
    super(description);
  }
}

const MAX_POLL_S = 50; // Telegram caps getUpdates' long poll at 50 s

// MarkdownV2 wants these escaped with '\' everywhere outside code (they never open an entity) and
// refuses the message otherwise, with this description. Only this rule of the parser is emulated.
const MARKDOWN_V2_RESERVED = '#+-={}.!';
function checkMarkdownV2(text: string): void {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (MARKDOWN_V2_RESERVED.includes(text[i]!)) {
      throw new BotApiError(400, `Bad Request: can't parse entities: Character '${text[i]}' is reserved and must be escaped with the preceding '\\'`);
    }
  }
}

export class BotApiServer {
  readonly address = { host: '127.0.0.1', port: 0 };
  private readonly server: Server;
  private readonly sockets = new Map<Socket, number | undefined>();
  private readonly polls = new Map<number, { wake: (reason: 'update' | 'conflict' | 'timeout') => void }>();
  private readonly pushing = new Set<number>();
  private readonly stopping = new AbortController();
  private readonly unsubscribe: () => void;
  private readonly methods: Record<string, BotMethod>;

  constructor(private readonly world: World) {
    // Every pending long poll (one per bot: 500 in bench:send) listens for the stop; each removes its
    // listener when it ends, so past 10 is expected, not a leak.
    setMaxListeners(0, this.stopping.signal);
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.set(socket, undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.unsubscribe = world.on((e) => this.onEvent(e));
    this.methods = {
      getMe: (bot) => ({ ...userJson(bot), can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false }),
      getChat: (bot, p) => this.getChat(bot, p),
      getChatMember: (bot, p) => this.getChatMember(bot, p),
      getChatAdministrators: (bot, p) => {
        const chat = this.memberChat(bot, p.chat_id);
        return [...chat.members.values()].filter((m) => m.role !== 'member').map((m) => memberJson(world, m, m.id));
      },
      sendMessage: (bot, p) => this.sendMessage(bot, p),
      getUpdates: (bot, p) => this.getUpdates(bot, p),
      setWebhook: (bot, p) => {
        if (typeof p.url !== 'string') throw new BotApiError(400, 'Bad Request: bad webhook: URL must be provided');
        bot.webhook = p.url || undefined;
        this.polls.get(bot.id)?.wake('conflict');
        void this.pushWebhook(bot);
        return true;
      },
      deleteWebhook: (bot, p) => {
        bot.webhook = undefined;
        if (p.drop_pending_updates === true || p.drop_pending_updates === 'true') bot.updates = [];
        return true;
      },
      getWebhookInfo: (bot) => ({ url: bot.webhook ?? '', has_custom_certificate: false, pending_update_count: bot.updates.length }),
    };
  }

  async listen(host: string, port: number): Promise<number> {
    this.address.port = await listenOn(this.server, host, port);
    this.address.host = host;
    return this.address.port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    try {
      if (!match) throw new BotApiError(404, 'Not Found');
      const bot = this.world.botByToken(decodeURIComponent(match[1]!));
      if (!bot) throw new BotApiError(401, 'Unauthorized');
      this.sockets.set(req.socket, bot.id);
      if (this.world.faults.refuses(bot.id)) {
        req.socket.destroy();
        return;
      }
      const method = Object.entries(this.methods).find(([name]) => name.toLowerCase() === match[2]!.toLowerCase())?.[1];
      if (!method) throw new BotApiError(404, 'Not Found');
      const params = await readParams(req, url);
      const result = await method(bot, params);
      const latency = this.world.faults.latencyMs(bot.id);
      if (latency > 0) await delay(latency, this.stopping.signal);
      sendJson(res, 200, { ok: true, result });
    } catch (err) {
      const e = this.toBotApiError(err);
      sendJson(res, e.status, {
        ok: false, error_code: e.status, description: e.message,
        ...(e.retryAfter !== undefined ? { parameters: { retry_after: e.retryAfter } } : {}),
      });
    }
  }

  private toBotApiError(err: unknown): BotApiError {
    if (err instanceof BotApiError) return err;
    if (err instanceof BodyError) return new BotApiError(err.status, err.message);
    if (err instanceof TgError) {
      if (err.retryAfter !== undefined) return new BotApiError(429, `Too Many Requests: retry after ${err.retryAfter}`, err.retryAfter);
      const known: Record<string, string> = {
        PEER_ID_INVALID: 'Bad Request: chat not found',
        MESSAGE_EMPTY: 'Bad Request: message text is empty',
        MESSAGE_TOO_LONG: 'Bad Request: message is too long',
      };
      return new BotApiError(400, known[err.message] ?? `Bad Request: ${err.message}`);
    }
    process.stderr.write(`[emulator] bot api failure: ${(err as Error).stack ?? String(err)}\n`);
    return new BotApiError(500, 'Internal Server Error');
  }

  /** chat_id: a user/bot id, a Bot API chat id (-…, -100…) or "@username". */
  private peerOf(chatId: unknown): PeerRef {
    const raw = String(chatId ?? '');
    if (raw.startsWith('@')) {
      const found = this.world.byName(raw);
      if (found && (found.kind === 'user' || found.kind === 'bot')) return { type: 'user', id: found.id };
      if (found) return { type: 'chat', chat: found };
    } else if (/^-?\d+$/.test(raw)) {
      const id = Number(raw);
      if (id > 0 && this.world.accounts.has(id)) return { type: 'user', id };
      const chat = this.world.chatByBotApiId(id);
      if (chat) return { type: 'chat', chat };
    }
    throw new BotApiError(400, 'Bad Request: chat not found');
  }

  private memberChat(bot: BotRec, chatId: unknown): ChatRec {
    const peer = this.peerOf(chatId);
    if (peer.type !== 'chat') throw new BotApiError(400, 'Bad Request: there are no administrators in the private chat');
    if (!peer.chat.members.has(bot.id)) throw new BotApiError(403, `Forbidden: bot is not a member of the ${peer.chat.kind} chat`);
    return peer.chat;
  }

  private getChat(_bot: BotRec, p: Params): unknown {
    const peer = this.peerOf(p.chat_id);
    return peer.type === 'chat' ? chatJson(peer.chat) : privateChatJson(this.world.accounts.get(peer.id)!);
  }

  private getChatMember(bot: BotRec, p: Params): unknown {
    const chat = this.memberChat(bot, p.chat_id);
    const userId = Number(p.user_id);
    if (!this.world.accounts.has(userId)) throw new BotApiError(400, 'Bad Request: user not found');
    return memberJson(this.world, chat.members.get(userId), userId);
  }

  private sendMessage(bot: BotRec, p: Params): unknown {
    const peer = this.peerOf(p.chat_id);
    if (peer.type === 'chat') {
      const member = peer.chat.members.get(bot.id);
      if (!member) throw new BotApiError(403, `Forbidden: bot is not a member of the ${peer.chat.kind} chat`);
      if (peer.chat.kind === 'channel' && member.role === 'member') throw new BotApiError(400, 'Bad Request: need administrator rights in the channel chat');
    }
    if (String(p.parse_mode ?? '').toLowerCase() === 'markdownv2') checkMarkdownV2(String(p.text ?? ''));
    const { message } = this.world.send(bot, peer, String(p.text ?? ''), null);
    return messageJson(this.world, message, bot.id);
  }

  private async getUpdates(bot: BotRec, p: Params): Promise<unknown> {
    if (bot.webhook) throw new BotApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    const offset = Number(p.offset ?? 0);
    const limit = Math.min(100, Math.max(1, Number(p.limit ?? 100)));
    const timeoutS = Math.min(MAX_POLL_S, Math.max(0, Number(p.timeout ?? 0)));
    // A positive offset confirms every update before it (Telegram forgets them); negative counts from the end.
    if (offset > 0) bot.updates = bot.updates.filter((u) => u.updateId >= offset);
    const pick = () => (offset < 0 ? bot.updates.slice(offset) : bot.updates).slice(0, limit).map((u) => updateJson(this.world, u, bot.id));
    if (bot.updates.length > 0 || timeoutS === 0) return pick();
    // One long poll per bot, like Telegram: a newer request terminates the older one with 409.
    this.polls.get(bot.id)?.wake('conflict');
    const reason = await new Promise<'update' | 'conflict' | 'timeout'>((resolve) => {
      const onStop = () => entry.wake('update');
      const timer = setTimeout(() => entry.wake('timeout'), timeoutS * 1000);
      const entry = {
        wake: (r: 'update' | 'conflict' | 'timeout') => {
          clearTimeout(timer);
          this.stopping.signal.removeEventListener('abort', onStop);
          if (this.polls.get(bot.id) === entry) this.polls.delete(bot.id);
          resolve(r);
        },
      };
      this.polls.set(bot.id, entry);
      this.stopping.signal.addEventListener('abort', onStop, { once: true });
    });
    if (reason === 'conflict') throw new BotApiError(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
    return pick();
  }

  private onEvent(e: WorldEvent): void {
    if (e.type === 'message') {
      for (const id of e.recipients) {
        const acc = this.world.accounts.get(id);
        if (acc?.kind !== 'bot') continue;
        if (acc.webhook) void this.pushWebhook(acc);
        else this.polls.get(id)?.wake('update');
      }
    } else if (e.type === 'drop') {
      for (const [socket, botId] of this.sockets) if (e.accountId === undefined || botId === e.accountId) socket.destroy();
    }
  }

  /** Posts pending updates to the bot's webhook in order; an update stays queued until the hook answers 2xx. */
  private async pushWebhook(bot: BotRec): Promise<void> {
    if (this.pushing.has(bot.id)) return;
    this.pushing.add(bot.id);
    try {
      await this.drainWebhook(bot);
    } finally {
      this.pushing.delete(bot.id);
    }
  }

  private async drainWebhook(bot: BotRec): Promise<void> {
    while (bot.webhook && bot.updates.length > 0 && !this.stopping.signal.aborted) {
      const u = bot.updates[0]!;
      try {
        const res = await fetch(bot.webhook, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(updateJson(this.world, u, bot.id)),
          signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(10_000)]),
        });
        await res.arrayBuffer();
        if (!res.ok) return;
      } catch {
        return;
      }
      if (bot.updates[0] === u) bot.updates.shift();
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.stopping.abort();
    for (const socket of this.sockets.keys()) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
