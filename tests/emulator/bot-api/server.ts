import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { World } from '../world/world.ts';
import { TgError, type BotRec, type ChatRec, type MediaRec, type MediaType, type PeerRef, type WorldEvent } from '../world/types.ts';
import { BodyError, delay, isUploadedPart, readMultipart, readParams, sendJson, listenOn } from '../http.ts';
import { chatJson, fileIdOf, memberJson, messageJson, privateChatJson, updateJson, userJson } from './render.ts';
import { fetchLocal } from './fetch-url.ts';

// The Bot API over HTTP: /bot<token>/<method>, GET query or POST JSON/form, Telegram's envelope
// {ok, result, description?} / {ok:false, error_code, description, parameters.retry_after}. No dedupe
// on sendMessage: the Bot API has none. A bot's updates go to one consumer, as on Telegram: its
// webhook, or the one getUpdates in flight (a newer one, or a webhook being set, ends it with 409).

type Params = Record<string, unknown>;
type BotMethod = (bot: BotRec, p: Params, gone: AbortSignal) => unknown | Promise<unknown>;

class BotApiError extends Error {
  constructor(readonly status: number, description: string, readonly retryAfter?: number) {
    super(description);
  }
}

/** A result Telegram sends with a description beside it (setWebhook's "Webhook was set"). */
class Described {
  constructor(readonly result: unknown, readonly description: string) {}
}

const MAX_POLL_S = 50; // Telegram caps getUpdates' long poll at 50 s
const DEFAULT_MAX_CONNECTIONS = 40;

// core.telegram.org/bots/api#sending-files: multipart uploads up to 10 MB for photos and 50 MB for
// other files; files by URL up to 5 MB (photos) and 20 MB (others).
const MB = 1024 * 1024;
const UPLOAD_MAX = 50 * MB;
const PHOTO_MAX = 10 * MB;
const URL_PHOTO_MAX = 5 * MB;
const URL_FILE_MAX = 20 * MB;

// Telegram's descriptions for the rules the world enforces, word for word where they are known.
const DESCRIPTIONS = {
  notModified: 'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
  cantEdit: "Bad Request: message can't be edited",
  cantDelete: "Bad Request: message can't be deleted",
  editNotFound: 'Bad Request: message to edit not found',
  deleteNotFound: 'Bad Request: message to delete not found',
  wrongFile: 'Bad Request: wrong file identifier/HTTP URL specified',
  urlFailed: 'Bad Request: failed to get HTTP URL content',
} as const;

const mediaMethods: Record<string, MediaType> = {
  sendPhoto: 'photo', sendDocument: 'document', sendVideo: 'video', sendAudio: 'audio', sendVoice: 'voice', sendAnimation: 'animation',
};

// Telegram's 409 descriptions, word for word: what a bot whose updates go elsewhere gets.
export const CONFLICT = {
  webhookActive: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
  otherPoller: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
  webhookSet: 'Conflict: terminated by setWebhook request',
} as const;

type WakeReason = 'update' | 'timeout' | 'gone' | keyof typeof CONFLICT;

// Webhooks are posted only to this machine (the emulator reaches no network). Like a local
// telegram-bot-api server, it takes plain http and any port there; elsewhere Telegram's rules apply.
const isLoopback = (u: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);

const truthy = (v: unknown) => v === true || v === 'true' || v === 'True' || v === '1';

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
  private readonly polls = new Map<number, { wake: (reason: WakeReason) => void }>();
  private readonly pushing = new Set<number>();
  private readonly stopping = new AbortController();
  private readonly unsubscribe: () => void;
  private readonly methods: Record<string, BotMethod>;
  /** Files sent before, by file_id: a send may name one instead of uploading it again. */
  private readonly fileIds = new Map<string, MediaRec>();

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
      ...Object.fromEntries(Object.entries(mediaMethods).map(([name, type]) => [name, (bot: BotRec, p: Params) => this.sendMedia(bot, p, type)])),
      editMessageText: (bot, p) => this.editMessage(bot, p, 'text'),
      editMessageCaption: (bot, p) => this.editMessage(bot, p, 'caption'),
      deleteMessage: (bot, p) => this.deleteMessage(bot, p),
      getUpdates: (bot, p, gone) => this.getUpdates(bot, p, gone),
      setWebhook: (bot, p) => this.setWebhook(bot, p),
      deleteWebhook: (bot, p) => this.deleteWebhook(bot, p),
      getWebhookInfo: (bot) => {
        const base = { url: bot.webhook?.url ?? '', has_custom_certificate: false, pending_update_count: bot.updates.length };
        const hook = bot.webhook;
        if (!hook) return base;
        return {
          ...base, max_connections: hook.maxConnections,
          ...(hook.lastErrorDate !== undefined ? { last_error_date: hook.lastErrorDate, last_error_message: hook.lastErrorMessage } : {}),
        };
      },
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
      const params = /^multipart\/form-data/i.test(req.headers['content-type'] ?? '') ? await readMultipart(req, url, UPLOAD_MAX) : await readParams(req, url);
      // The caller hung up before the answer (a poller that gave up): its long poll stops waiting.
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      const result = await method(bot, params, gone.signal);
      const latency = this.world.faults.latencyMs(bot.id);
      if (latency > 0) await delay(latency, this.stopping.signal);
      if (result instanceof Described) sendJson(res, 200, { ok: true, result: result.result, description: result.description });
      else sendJson(res, 200, { ok: true, result });
    } catch (err) {
      const e = this.toBotApiError(err);
      // A refused upload is not read to its end: the connection closes after the answer.
      if (e.status === 413) res.setHeader('connection', 'close');
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
        MEDIA_CAPTION_TOO_LONG: 'Bad Request: message caption is too long',
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

  /** The chat a bot posts into, with the Bot API's own refusals before the world's rights check. */
  private postTarget(bot: BotRec, chatId: unknown): PeerRef {
    const peer = this.peerOf(chatId);
    if (peer.type === 'chat') {
      const member = peer.chat.members.get(bot.id);
      if (!member) throw new BotApiError(403, `Forbidden: bot is not a member of the ${peer.chat.kind} chat`);
      if (peer.chat.kind === 'channel' && member.role === 'member') throw new BotApiError(400, 'Bad Request: need administrator rights in the channel chat');
    }
    return peer;
  }

  private sendMessage(bot: BotRec, p: Params): unknown {
    const peer = this.postTarget(bot, p.chat_id);
    if (String(p.parse_mode ?? '').toLowerCase() === 'markdownv2') checkMarkdownV2(String(p.text ?? ''));
    const { message } = this.world.send(bot, peer, String(p.text ?? ''), null);
    return messageJson(this.world, message, bot.id);
  }

  /**
   * sendPhoto, sendDocument, …: the file as a multipart upload, a file_id sent before, or an HTTP URL
   * the emulator fetches itself (only from this machine), each with Telegram's size limits.
   */
  private async sendMedia(bot: BotRec, p: Params, type: MediaType): Promise<unknown> {
    const peer = this.postTarget(bot, p.chat_id);
    const given = p[type];
    let file: MediaRec;
    if (isUploadedPart(given)) {
      const u = given.upload;
      file = { type, size: u.size, sha256: u.sha256, ...(u.filename ? { filename: u.filename } : {}), ...(u.mimeType ? { mimeType: u.mimeType } : {}) };
    } else if (typeof given === 'string' && /^https?:\/\//i.test(given)) {
      const got = await fetchLocal(given, type === 'photo' ? URL_PHOTO_MAX : URL_FILE_MAX);
      if (got === 'too-large') throw new BotApiError(400, DESCRIPTIONS.wrongFile);
      if (!got) throw new BotApiError(400, DESCRIPTIONS.urlFailed);
      file = { type, ...got };
    } else if (typeof given === 'string' && given) {
      const known = this.fileIds.get(given);
      if (!known) throw new BotApiError(400, DESCRIPTIONS.wrongFile);
      file = { ...known, type };
    } else {
      throw new BotApiError(400, `Bad Request: there is no ${type} in the request`);
    }
    if (type === 'photo' && file.size > PHOTO_MAX) throw new BotApiError(400, 'Bad Request: PHOTO_SAVE_FILE_INVALID');
    const caption = String(p.caption ?? '');
    if (String(p.parse_mode ?? '').toLowerCase() === 'markdownv2') checkMarkdownV2(caption);
    const { message } = this.world.send(bot, peer, caption, null, undefined, file);
    this.fileIds.set(fileIdOf(file), file);
    return messageJson(this.world, message, bot.id);
  }

  /** editMessageText (a text message) and editMessageCaption (a message with a file). */
  private editMessage(bot: BotRec, p: Params, field: 'text' | 'caption'): unknown {
    const peer = this.peerOf(p.chat_id);
    const id = Number(p.message_id);
    let current;
    try {
      current = this.world.findMessage(bot, peer, id);
    } catch {
      throw new BotApiError(400, DESCRIPTIONS.editNotFound);
    }
    if (field === 'text' && current.media) throw new BotApiError(400, 'Bad Request: there is no text in the message to edit');
    if (field === 'caption' && !current.media) throw new BotApiError(400, 'Bad Request: there is no caption in the message to edit');
    const text = String(p[field] ?? '');
    if (field === 'text' && !text.trim()) throw new BotApiError(400, 'Bad Request: message text is empty');
    if (String(p.parse_mode ?? '').toLowerCase() === 'markdownv2') checkMarkdownV2(text);
    try {
      return messageJson(this.world, this.world.editMessage(bot, peer, id, text, { via: 'bot-api' }), bot.id);
    } catch (err) {
      if (err instanceof TgError && err.message === 'MESSAGE_NOT_MODIFIED') throw new BotApiError(400, DESCRIPTIONS.notModified);
      if (err instanceof TgError && err.message === 'MESSAGE_AUTHOR_REQUIRED') throw new BotApiError(400, DESCRIPTIONS.cantEdit);
      throw err;
    }
  }

  private deleteMessage(bot: BotRec, p: Params): unknown {
    const peer = this.peerOf(p.chat_id);
    const id = Number(p.message_id);
    try {
      this.world.findMessage(bot, peer, id);
    } catch {
      throw new BotApiError(400, DESCRIPTIONS.deleteNotFound);
    }
    try {
      this.world.deleteMessages(bot, peer, [id], { via: 'bot-api' });
    } catch (err) {
      if (err instanceof TgError && err.message === 'MESSAGE_DELETE_FORBIDDEN') throw new BotApiError(400, DESCRIPTIONS.cantDelete);
      throw err;
    }
    return true;
  }

  private async getUpdates(bot: BotRec, p: Params, gone: AbortSignal): Promise<unknown> {
    bot.getUpdatesCalls++;
    if (bot.webhook) throw new BotApiError(409, CONFLICT.webhookActive);
    // One consumer per bot, like Telegram: a newer getUpdates ends the one in flight with 409.
    this.polls.get(bot.id)?.wake('otherPoller');
    const offset = Number(p.offset ?? 0);
    const limit = Math.min(100, Math.max(1, Number(p.limit ?? 100)));
    const timeoutS = Math.min(MAX_POLL_S, Math.max(0, Number(p.timeout ?? 0)));
    // A positive offset confirms every update before it (Telegram forgets them); negative counts from the end.
    if (offset > 0) bot.updates = bot.updates.filter((u) => u.updateId >= offset);
    const pick = () => (offset < 0 ? bot.updates.slice(offset) : bot.updates).slice(0, limit).map((u) => updateJson(this.world, u, bot.id));
    if (bot.updates.length > 0 || timeoutS === 0) return pick();
    const reason = await new Promise<WakeReason>((resolve) => {
      const onStop = () => entry.wake('update');
      const onGone = () => entry.wake('gone');
      const timer = setTimeout(() => entry.wake('timeout'), timeoutS * 1000);
      const entry = {
        wake: (r: WakeReason) => {
          clearTimeout(timer);
          this.stopping.signal.removeEventListener('abort', onStop);
          gone.removeEventListener('abort', onGone);
          if (this.polls.get(bot.id) === entry) this.polls.delete(bot.id);
          resolve(r);
        },
      };
      this.polls.set(bot.id, entry);
      this.stopping.signal.addEventListener('abort', onStop, { once: true });
      gone.addEventListener('abort', onGone, { once: true });
    });
    if (reason === 'otherPoller' || reason === 'webhookSet' || reason === 'webhookActive') throw new BotApiError(409, CONFLICT[reason]);
    return pick();
  }

  private setWebhook(bot: BotRec, p: Params): Described {
    const raw = p.url === undefined || p.url === null ? '' : String(p.url);
    if (raw === '') return this.deleteWebhook(bot, p);
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    if (!url || (!isLoopback(url) && url.protocol !== 'https:')) throw new BotApiError(400, 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook');
    if (!isLoopback(url) && !['', '80', '88', '443', '8443'].includes(url.port)) {
      throw new BotApiError(400, 'Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443');
    }
    const maxConnections = p.max_connections === undefined ? DEFAULT_MAX_CONNECTIONS : Number(p.max_connections);
    if (!Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > 100) throw new BotApiError(400, 'Bad Request: invalid max_connections specified');
    const secretToken = p.secret_token === undefined || p.secret_token === '' ? undefined : String(p.secret_token);
    const same = bot.webhook?.url === raw && bot.webhook.secretToken === secretToken && bot.webhook.maxConnections === maxConnections;
    if (truthy(p.drop_pending_updates)) bot.updates = [];
    if (same) return new Described(true, 'Webhook is already set');
    this.world.setWebhook(bot, { url: raw, secretToken, maxConnections });
    return new Described(true, 'Webhook was set');
  }

  private deleteWebhook(bot: BotRec, p: Params): Described {
    if (truthy(p.drop_pending_updates)) bot.updates = [];
    if (!bot.webhook) return new Described(true, 'Webhook is already deleted');
    this.world.setWebhook(bot, undefined);
    return new Described(true, 'Webhook was deleted');
  }

  private onEvent(e: WorldEvent): void {
    if (e.type === 'message') {
      for (const id of e.recipients) {
        const acc = this.world.accounts.get(id);
        if (acc?.kind !== 'bot') continue;
        if (acc.webhook) void this.pushWebhook(acc);
        else this.polls.get(id)?.wake('update');
      }
    } else if (e.type === 'webhook') {
      const bot = this.world.accounts.get(e.botId);
      if (bot?.kind !== 'bot' || !bot.webhook) return;
      this.polls.get(bot.id)?.wake('webhookSet');
      void this.pushWebhook(bot);
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
      const hook = bot.webhook;
      // Anywhere but this machine is out of reach: the updates wait there (pending_update_count).
      if (!isLoopback(new URL(hook.url))) return;
      const u = bot.updates[0]!;
      const fail = (message: string) => {
        hook.lastErrorDate = Math.floor(this.world.clock.now() / 1000);
        hook.lastErrorMessage = message;
      };
      try {
        const res = await fetch(hook.url, {
          method: 'POST', body: JSON.stringify(updateJson(this.world, u, bot.id)),
          headers: { 'content-type': 'application/json', ...(hook.secretToken ? { 'x-telegram-bot-api-secret-token': hook.secretToken } : {}) },
          signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(10_000)]),
        });
        await res.arrayBuffer();
        if (!res.ok) return fail(`Wrong response from the webhook: ${res.status} ${res.statusText}`);
      } catch {
        return fail('Connection refused');
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
