import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { AppError } from '../../errors.ts';
import type { MediaType, OutboundMedia } from '../adapter.ts';
import { tgError } from './codes.ts';
import { metrics } from '../../observability/metrics.ts';
import { SpanKind, withSpan } from '../../observability/tracing.ts';
import { mapBotApiError, type BotApiFailure } from './errors.ts';

// A thin Bot API client over undici. The token is part of the URL path (Telegram's design), so
// no URL, request or response object ever leaves this module inside an error.

export interface BotUser { id: number; is_bot: boolean; first_name: string; username?: string }
export interface BotChat { id: number; type: 'private' | 'group' | 'supergroup' | 'channel'; title?: string; username?: string; first_name?: string }
export interface BotChatMember {
  status: 'creator' | 'administrator' | 'member' | 'restricted' | 'left' | 'kicked';
  user: BotUser;
  can_post_messages?: boolean; can_edit_messages?: boolean; can_delete_messages?: boolean;
  can_send_messages?: boolean; can_restrict_members?: boolean; can_invite_users?: boolean; can_pin_messages?: boolean;
  can_manage_chat?: boolean; can_promote_members?: boolean; can_change_info?: boolean;
}
export interface BotMessage { message_id: number; date: number; chat: BotChat; from?: BotUser; text?: string; caption?: string }

// The send method and file field of each media type (core.telegram.org/bots/api#sendphoto …).
const mediaMethods: Record<MediaType, [method: string, field: string]> = {
  photo: ['sendPhoto', 'photo'], document: ['sendDocument', 'document'], video: ['sendVideo', 'video'],
  audio: ['sendAudio', 'audio'], voice: ['sendVoice', 'voice'], animation: ['sendAnimation', 'animation'],
};
// A multipart upload's deadline grows with the file: the base timeout plus 1 s per 256 KiB (50 MB: +200 s).
const uploadBytesPerMs = 256;
export interface BotUpdate { update_id: number; message?: BotMessage; channel_post?: BotMessage }

export interface BotApiOptions {
  baseUrl: string;
  token: string;
  // Telegram answers in ~100 ms; 10 s means it is not answering at all.
  timeoutMs?: number;
}

// Calls that change nothing: repeating one after a lost answer is always safe.
const readOnly: ReadonlySet<string> = new Set(['getMe', 'getChat', 'getChatMember', 'getUpdates']);

// Failures that mean Telegram did not act on the request: no connection was made, or the
// connection closed before any answer. The second is what a request written to an idle keep-alive
// socket that the server has just closed looks like. Seen once in tests/delivery/faults.e2e.test.ts:
// in a RabbitMQ restart (sending paused for seconds, sockets idle near the server's 5 s keep-alive),
// 9 of 1000 bot sends failed "unreachable" without a timeout, and none of the 9 had been posted (the
// socket codes were not recorded then; the message carries them now). A server that acted and then
// dropped the connection unanswered would look the same; like browsers resending on a reused
// connection, that rarer case is accepted. A timeout (the request sat unanswered) stays in doubt.
const notProcessedCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', // never connected
  'UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', // closed before any answer
]);
function socketCode(err: unknown): string | undefined {
  // undici's request throws the socket error (err.code); a wrapped one has it as err.cause.code.
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.cause?.code ?? e?.code;
  return typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : undefined;
}
const notProcessed = (err: unknown) => notProcessedCodes.has(socketCode(err) ?? '');

// Every call goes through undici's request() on one keep-alive agent rather than fetch: fetch builds
// a WHATWG Request, Response and web streams per call, which took ~14 % of the daemon's main thread
// at 30,000/min on bench:send (half the messages from bots; issue 18), and copied each piece of an
// uploaded file once more into its body stream.
// No connection limit: every bot's getUpdates long poll holds a connection for up to 25 s.
const agent = new Agent({ keepAliveTimeout: 4_000 });

export class BotApi {
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(opts: BotApiOptions) {
    this.#base = `${opts.baseUrl.replace(/(?<!\/)\/+$/, '')}/bot${opts.token}/`;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  // A span per call inside a trace: the method name only — the URL holds the token, params the text.
  // The getUpdates long poll (25 s, forever) would hang off whichever request started the bot: none.
  call<T>(method: string, params: Record<string, unknown> = {}, timeoutMs = this.#timeoutMs): Promise<T> {
    if (method === 'getUpdates') return this.#call<T>(method, params, timeoutMs);
    return withSpan(`telegram bot.${method}`, { 'rpc.system': 'telegram-bot-api', 'rpc.method': method }, () => this.#call<T>(method, params, timeoutMs), { kind: SpanKind.CLIENT, root: false });
  }

  // One path for JSON calls and multipart uploads, over request(): the outcomes and error messages
  // are the same, and an upload's body is the file's pieces as they are read (no web stream between).
  async #call<T>(method: string, params: Record<string, unknown>, timeoutMs: number, upload?: Upload): Promise<T> {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(this.#base + method, {
          method: 'POST', dispatcher: agent, signal: AbortSignal.timeout(timeoutMs),
          ...(upload
            // undici writes an async iterable piece by piece, waiting for the socket to drain (its types
            // name only streams; Readable.from would read 16 pieces ahead).
            ? { headers: { 'content-type': upload.contentType, 'content-length': String(upload.length) }, body: upload.body as never }
            : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) }),
        });
      } catch (err) {
        // The file could not be read from storage: the request stopped before its end, so Telegram
        // cannot have acted on it.
        if (upload?.sourceFailed) throw new AppError('DEPENDENCY_UNAVAILABLE', 'the file could not be read from storage while it was being sent', { cause: err });
        const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
        // The socket error's code (ECONNRESET, UND_ERR_SOCKET…) names the failure and holds no URL.
        const code = socketCode(err);
        throw tgError('TG_UNAVAILABLE', timedOut ? `Bot API ${method} timed out` : `Bot API ${method} unreachable${code ? ` (${code})` : ''}`, {
          outcomeUnknown: !readOnly.has(method) && (timedOut || !notProcessed(err)),
        });
      }
      let body: { ok: boolean; result?: T } & Partial<BotApiFailure>;
      try {
        body = (await res.body.json()) as typeof body;
      } catch {
        // A proxy's 502 or a cut body: the Bot API behind it may have acted.
        res.body.destroy();
        throw tgError('TG_UNAVAILABLE', `Bot API ${method} answered ${res.statusCode} without JSON`, { outcomeUnknown: !readOnly.has(method) });
      }
      if (!body.ok) {
        outcome = String(body.error_code ?? res.statusCode);
        throw mapBotApiError({ error_code: body.error_code ?? res.statusCode, description: body.description, parameters: body.parameters }, method);
      }
      outcome = 'ok';
      return body.result as T;
    } finally {
      // An answer before the whole body went (an early refusal, a timeout): stop reading the file.
      if (upload) void upload.body.return(undefined).catch(() => undefined);
      metrics.apiLatency.observe({ method: `bot.${method}`, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  getMe(): Promise<BotUser> { return this.call('getMe'); }
  getChat(chatId: string | number): Promise<BotChat> { return this.call('getChat', { chat_id: chatId }); }
  getChatMember(chatId: string | number, userId: number): Promise<BotChatMember> {
    return this.call('getChatMember', { chat_id: chatId, user_id: userId });
  }
  sendMessage(params: { chat_id: string | number; text: string; parse_mode?: string; disable_notification?: boolean; reply_to_message_id?: number }): Promise<BotMessage> {
    return this.call('sendMessage', params);
  }

  /**
   * sendPhoto / sendDocument / … as multipart/form-data, the file streamed from storage into the
   * request body (never held whole), with its Content-Length known up front.
   */
  sendMedia(media: OutboundMedia, params: Record<string, string | number | boolean>): Promise<BotMessage> {
    const [method, field] = mediaMethods[media.type];
    const upload = multipart(params, field, media);
    const timeoutMs = this.#timeoutMs + Math.ceil(media.size / uploadBytesPerMs);
    return withSpan(`telegram bot.${method}`, { 'rpc.system': 'telegram-bot-api', 'rpc.method': method }, () => this.#call<BotMessage>(method, {}, timeoutMs, upload), { kind: SpanKind.CLIENT, root: false });
  }
  // Long poll: Telegram holds the request up to `timeout` s, so the HTTP timeout must exceed it.
  getUpdates(offset: number, timeoutS = 25): Promise<BotUpdate[]> {
    return this.call('getUpdates', { offset, timeout: timeoutS, allowed_updates: ['message', 'channel_post'] }, (timeoutS + 10) * 1000);
  }
}

interface Upload { contentType: string; length: number; body: AsyncGenerator<Uint8Array>; sourceFailed: boolean }

// A part header's file name: quotes and line breaks would break the header, so they go.
// eslint-disable-next-line no-control-regex -- control characters are what is removed
const headerSafe = (name: string) => name.replace(/["\\\u0000-\u001f\u007f]/g, '_');

function multipart(params: Record<string, string | number | boolean>, field: string, media: OutboundMedia): Upload {
  const boundary = `----integration-${randomBytes(12).toString('hex')}`;
  const fields = Object.entries(params).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${String(v)}\r\n`).join('');
  const head = Buffer.from(`${fields}--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${headerSafe(media.filename)}"\r\n`
    + `Content-Type: ${media.contentType}\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const state = { failed: false };
  async function* body(): AsyncGenerator<Uint8Array> {
    yield head;
    let sent = 0;
    try {
      for await (const chunk of media.read()) {
        sent += chunk.length;
        yield chunk;
      }
    } catch (err) {
      state.failed = true;
      throw err;
    }
    if (sent !== media.size) {
      state.failed = true;
      throw new Error(`the stored file has ${sent} bytes, its size says ${media.size}`);
    }
    yield tail;
  }
  return {
    contentType: `multipart/form-data; boundary=${boundary}`, length: head.length + media.size + tail.length, body: body(),
    get sourceFailed() { return state.failed; },
  };
}
