import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import type { Quotas, StatusEvents } from '../config.ts';
import { AppError, type ErrorCode, type ErrorDetail } from '../errors.ts';
import { mediaTypes, type MessageTemplate, type SendCapabilities } from '../platforms/adapter.ts';
import { getChats } from '../store/chats.ts';
import {
  acceptMessages, getMessage, listMessages, toApiMessage, usedIdempotencyKeys,
  type AcceptResult, type MediaInput, type MessageInput, type MessageRow, type MessageStatus, type Priority,
} from '../store/messages.ts';
import { pendingOperations, requestDelete, requestEdit, type OperationPolicy, type OperationRequest } from '../store/operations.ts';
import { outsideWindow } from '../store/platform-messages.ts';
import { getUpload } from '../store/uploads.ts';
import type { Connection } from '../store/connections.ts';
import type { ConnectionService } from '../connections/types.ts';
import { callerIn, documented, notFoundOnBadParams, uuid } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface MessagesPluginOptions {
  sql: postgres.Sql;
  connections: ConnectionService;
  /** The delivery facade (src/delivery/delivery.ts): woken after new rows commit. */
  delivery: { notify(): void };
  /** QUOTA_QUEUED_MESSAGES_PER_OWNER; the store's default when absent */
  quotas?: Pick<Quotas, 'queuedMessagesPerOwner'>;
  /** What a platform kind takes (media types, edits, deletes); absent: text only, no edits or deletes. */
  capabilities?: (platform: string, kind: string) => SendCapabilities | undefined;
  /** Judges a media URL before it is stored (scheme, literal addresses): the egress guard's check(). */
  egress?: { check(url: string): URL };
  /** MESSAGE_STATUS_EVENTS: under `outcomes` an accept stores no `queued` events (the 202 answer shows them). */
  statusEvents?: StatusEvents;
}

interface SendBody {
  connectionId: string; chat: string; text?: string; parseMode?: 'html' | 'markdown'; silent: boolean;
  replyTo?: number | string; priority: Priority; idempotencyKey?: string;
  media?: MediaInput & { caption?: string };
  items?: MediaInput[];
  template?: MessageTemplate;
}
interface ListQuery { connectionId?: string; status?: MessageStatus; limit: number; cursor?: string; q?: string; direction?: 'out' | 'in'; since?: Date }

// ---------------------------------------------------------------------------------------------
// Schemas (OpenAPI labels and examples)

const uuidExample = '0b8f2f8e-6a4f-4c33-9a57-3b9f2d1c7e10';
const messageIdExample = '5d2c7a8e-1f3b-4c9d-8e7f-6a5b4c3d2e1f';
const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// @name (Telegram usernames are 5..32 chars, 4 for old ones), a numeric id (Bot API style -100…),
// a phone number in E.164 (a WhatsApp recipient; wa_ids are numeric), or one of our chat ids
// (POST /v1/connections/{id}/chats), resolved to its platform id here.
const chatRefRe = /^(?:@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d{1,20}|\+\d{7,15}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
// Telegram refuses longer texts (MESSAGE_TOO_LONG) and whitespace-only ones (MESSAGE_EMPTY).
const maxText = 4096;
// Telegram message ids are positive int32.
const maxMessageId = 2_147_483_647;
// A file name as messages show it: no path, no control characters.
// eslint-disable-next-line no-control-regex -- control characters are what the pattern refuses
const filenameRe = /^[^\u0000-\u001f\u007f/\\]{1,255}$/;
// No control characters: Postgres text cannot hold NUL (the insert would fail as a 500), and a key
// is an identifier, not content.
// eslint-disable-next-line no-control-regex -- the control characters are what the pattern refuses
const idempotencyKey = Joi.string().min(1).max(200).pattern(/^[^\u0000-\u001f\u007f]+$/);

const textString = Joi.string().min(1).max(maxText)
  // Postgres text cannot hold NUL; other control characters are the sender's business.
  .custom((v: string, helpers) => (v.includes('\u0000') ? helpers.error('string.nul') : /\S/.test(v) ? v : helpers.error('string.blank')))
  .messages({ 'string.blank': '"text" must contain a visible character', 'string.nul': '"text" must not contain NUL characters' });

const mediaSchema = Joi.object({
  type: Joi.string().valid(...mediaTypes).required().example('document').description('what the platform shows it as'),
  uploadId: uuid.lowercase().example('3f6c2a1e-9b7d-4e8f-a0b1-c2d3e4f5a6b7').description('a file from POST /v1/uploads (yours, not expired)'),
  url: Joi.string().max(2048).uri({ scheme: ['https', 'http'] }).example('https://cdn.example.com/report.pdf')
    .description('https only: fetched by the service when it sends (never passed to the platform), never from private or metadata addresses'),
  caption: textString.max(maxText).description('the caption, instead of `text`'),
  filename: Joi.string().pattern(filenameRe).example('report.pdf').description('the name shown (default: the upload\'s, or the URL\'s)'),
}).xor('uploadId', 'url').label('MessageMedia');

// A carousel (Instagram "Carousel posts"): stored files only, each as it will show (photo or video).
const itemSchema = Joi.object({
  type: Joi.string().valid(...mediaTypes).required().example('photo'),
  uploadId: uuid.lowercase().required().example('3f6c2a1e-9b7d-4e8f-a0b1-c2d3e4f5a6b7').description('a file from POST /v1/uploads (yours, not expired)'),
  filename: Joi.string().pattern(filenameRe),
}).label('CarouselItem');

// WhatsApp message templates (Cloud API "Template messages"): name as approved in WhatsApp Manager,
// a locale, and the parameters of its components; at most 10 components, each with its parameters.
const templateSchema = Joi.object({
  name: Joi.string().pattern(/^[a-z0-9_]{1,512}$/).required().example('order_update'),
  language: Joi.string().pattern(/^[a-z]{2,3}(_[A-Z]{2})?$/).required().example('en_US'),
  components: Joi.array().max(10).items(Joi.object({
    type: Joi.string().valid('header', 'body', 'button', 'HEADER', 'BODY', 'BUTTON').required(),
    parameters: Joi.array().max(20).items(Joi.object().unknown(true)),
    sub_type: Joi.string().max(20), index: Joi.alternatives().try(Joi.string().max(2), Joi.number().integer().min(0).max(9)),
  }).unknown(false)),
}).label('MessageTemplate').description('WhatsApp: a pre-approved template instead of text (required outside the 24-hour window); `text` is then optional');

const sendKeys = {
  // Lowercased: the store matches connection ids as Postgres prints them.
  connectionId: uuid.lowercase().required().example(uuidExample).description('one of your connections; it must be `active`'),
  chat: Joi.string().max(64).required()
    .custom((v: string, helpers) => (chatRefRe.test(v) ? v : helpers.error('string.chatRef')))
    .messages({ 'string.chatRef': '"chat" must be @name, a numeric chat id, a +E.164 phone number (WhatsApp) or one of your chat ids' })
    .example('@my_channel').description('@name | -1001234567890 | +15551234567 (WhatsApp) | a chat id from /v1/connections/{id}/chats (of the same connection)'),
  text: textString
    .when('template', {
      is: Joi.exist(), then: Joi.optional().allow(''),
      otherwise: Joi.any().when('media', {
        is: Joi.exist(), then: Joi.optional().allow(''),
        otherwise: Joi.any().when('items', { is: Joi.exist(), then: Joi.optional().allow(''), otherwise: Joi.required() }),
      }),
    })
    .example('Release 1.4 is out').description('1..4096 characters, sent verbatim (markup only with parseMode); with `media` optional: its caption (Telegram: up to 1024)'),
  parseMode: Joi.string().valid('html', 'markdown').description('how Telegram reads markup in text; plain text when absent'),
  silent: Joi.boolean().default(false).description('deliver without a notification sound'),
  replyTo: Joi.alternatives().try(
    Joi.number().integer().min(1).max(maxMessageId),
    Joi.string().pattern(/^[1-9]\d{0,9}$/),
  ).description('platform message id to reply to').example(42),
  priority: Joi.string().valid('high', 'normal', 'low').default('normal').description('high is sent before normal before low'),
  media: mediaSchema.when('template', { is: Joi.exist(), then: Joi.forbidden() }),
  items: Joi.array().items(itemSchema).min(2).max(10).description('a carousel (Instagram): 2 to 10 stored photos and videos published as one post, `text` its caption; instead of `media`'),
  template: templateSchema,
};

const sendSchema = Joi.object(sendKeys).oxor('media', 'items').oxor('template', 'items').label('SendMessage')
  .example({ connectionId: uuidExample, chat: '@my_channel', text: 'Release 1.4 is out', priority: 'normal' });

const batchItem = Joi.object({
  ...sendKeys,
  idempotencyKey: idempotencyKey.description('like the Idempotency-Key header, per message').example('release-1.4-channel'),
}).oxor('media', 'items').oxor('template', 'items').label('BatchMessage');

const batchSchema = Joi.object({
  // 500 per request (API.md); the 1 MiB body limit still applies, so 500 long texts need two requests.
  messages: Joi.array().items(batchItem).min(1).max(500).required(),
}).label('SendMessageBatch').example({ messages: [{ connectionId: uuidExample, chat: '@my_channel', text: 'Hello', idempotencyKey: 'hello-1' }] });

const sendHeaders = Joi.object({
  'idempotency-key': idempotencyKey.example('release-1.4-channel')
    .description('same key and body again → 200 with the first message; same key, other body → 409 IDEMPOTENCY_CONFLICT'),
}).unknown(true).label('SendMessageHeaders');

const storedMediaSchema = Joi.object({
  type: Joi.string().valid(...mediaTypes).required(), uploadId: Joi.string(), url: Joi.string(), filename: Joi.string(),
  contentType: Joi.string(), size: Joi.number().integer().min(0), sha256: Joi.string(),
}).label('MessageMediaInfo').description('the file: size and sha256 once known (at accept for an upload, when fetched for a URL)');

const pendingSchema = Joi.object({
  type: Joi.string().valid('edit', 'delete').required(), status: Joi.string().valid('queued', 'sending', 'failed').required(),
  text: Joi.string().allow('').description('edit: the new text'),
  error: Joi.object({ code: Joi.string().required(), message: Joi.string().required() }).label('OperationError'),
  requestedAt: Joi.string().isoDate().required(),
}).label('PendingOperation').description('an edit or delete not yet applied, or the last one if it failed');

const messageSchema = Joi.object({
  id: Joi.string().required().example(messageIdExample),
  connectionId: Joi.string().required().example(uuidExample),
  chat: Joi.string().required().example('@my_channel').description('as given'),
  text: Joi.string().allow('').required().example('Release 1.4 is out')
    .description('the caption, with media (possibly empty); empty once sent (or failed) while the consent to message-retention is withdrawn'),
  priority: Joi.string().valid('high', 'normal', 'low').required(),
  status: Joi.string().valid('queued', 'sending', 'sent', 'failed', 'cancelled', 'received').required().example('queued')
    .description('`received` for an incoming message'),
  attempts: Joi.number().integer().min(0).required().example(0),
  platformMessageId: Joi.string().example('1187'),
  error: Joi.object({ code: Joi.string().required(), message: Joi.string().required(), retryAt: Joi.string().isoDate() })
    .label('MessageError').description('why it failed, or why it waits (retryAt)'),
  createdAt: Joi.string().isoDate().required().example('2026-11-28T05:00:00.000Z'),
  sentAt: Joi.string().isoDate().example('2026-11-28T05:00:00.412Z'),
  media: storedMediaSchema,
  items: Joi.array().items(storedMediaSchema).description('a carousel: its files in order'),
  editedAt: Joi.string().isoDate().description('when an edit reached the chat'),
  deletedAt: Joi.string().isoDate().description('when it was deleted in the chat'),
  pendingOperation: pendingSchema,
  platformStatus: Joi.string().valid('sent', 'delivered', 'read').description('what the platform reported after the send (WhatsApp statuses by webhook)'),
  platformStatusAt: Joi.string().isoDate(),
  template: Joi.object({ name: Joi.string().required(), language: Joi.string().required(), components: Joi.array() }).label('MessageTemplateInfo'),
  direction: Joi.string().valid('out', 'in').required().description('`in`: a message the connection received (stored before it was announced)'),
  from: Joi.string().description('the sender of an incoming message'),
}).label('Message');

const messageList = Joi.object({ items: Joi.array().items(messageSchema).required() }).label('MessageBatchResult');
const messagePage = Joi.object({ items: Joi.array().items(messageSchema).required(), nextCursor: Joi.string() }).label('MessagePage');

const messageParams = Joi.object({ id: uuid.required().example(messageIdExample).description('message id') }).label('MessageIdParams');

const listQuery = Joi.object({
  connectionId: uuid.description('only messages of this connection'),
  status: Joi.string().valid('queued', 'sending', 'sent', 'failed', 'cancelled', 'received'),
  direction: Joi.string().valid('out', 'in').description('`in`: incoming messages only; `out`: only those sent through the service'),
  since: Joi.date().iso().description('only messages stored after this instant (ISO 8601)'),
  limit: Joi.number().integer().min(1).max(100).default(50),
  cursor: Joi.string().max(512).pattern(/^[A-Za-z0-9_-]+$/).description('nextCursor of the previous page'),
  // At least one letter or digit: a query of punctuation only has no word to look for.
  q: Joi.string().max(200).pattern(/[\p{L}\p{N}]/u).example('release -beta')
    .messages({ 'string.pattern.base': '"q" must contain a letter or a digit' })
    .description('full-text search of the texts: whole words, case-insensitive; "a phrase", -word to exclude, or'),
}).label('ListMessagesQuery');

const editSchema = Joi.object({
  text: textString.required().example('Release 1.4.1 is out').description('the new text (the caption, for a message with media)'),
}).label('EditMessage');

// ---------------------------------------------------------------------------------------------

const internals = {
  // Sending acts on the caller's behalf: it needs their consent to processing (consents.plugin.ts).
  send: { rateLimit: { group: 'send' as const }, consent: 'processing' as const },

  /**
   * A platform quota the connection's actor counts as spent (Connection.quotas: Instagram's 50 posts
   * in 24 h, Threads' 250, YouTube's daily units) refuses the message now, 429 with the seconds until
   * it frees, instead of parking it in the queue without a word. Only the node running the actor has
   * the count (a connection owned by another node has no `quotas` here): there the message is
   * accepted and its send waits for the window, as before.
   */
  checkQuotas(items: Array<{ conn: Connection; path: string }>): void {
    const spent = items.flatMap(({ conn, path }) => {
      const q = conn.quotas?.find((x) => x.used >= x.limit);
      return q ? [{ q, path }] : [];
    });
    if (spent.length === 0) return;
    const wait = Math.max(...spent.map(({ q }) => Math.max(1, Math.ceil((Date.parse(q.resetsAt) - Date.now()) / 1000))));
    const first = spent[0]!.q;
    throw new AppError('PLATFORM_QUOTA_EXCEEDED', `the platform quota ${first.name} is spent (${first.used} of ${first.limit}); it frees in ${wait} s`, {
      retryAfter: wait,
      details: spent.map(({ q, path }) => ({ path, message: `${q.name}: ${q.used} of ${q.limit} used until ${q.resetsAt}` })),
    });
  },

  fail(code: ErrorCode, message: string, details: ErrorDetail[]): never {
    throw new AppError(code, message, { details });
  },

  toInput(b: SendBody, path: (field: string) => string): MessageInput {
    const { caption, ...media } = b.media ?? {};
    if (caption !== undefined && b.text) internals.fail('VALIDATION_ERROR', 'the caption is `text` or `media.caption`, not both', [{ path: path('media.caption'), message: 'text is given too' }]);
    return {
      connectionId: b.connectionId, chat: b.chat, text: caption ?? b.text ?? '', silent: b.silent, priority: b.priority,
      ...(b.parseMode && { parseMode: b.parseMode }),
      ...(b.replyTo !== undefined && { replyTo: String(b.replyTo) }),
      ...(b.idempotencyKey !== undefined && { idempotencyKey: b.idempotencyKey }),
      ...(b.media && { media: media as MediaInput }),
      ...(b.items && { items: b.items }),
      ...(b.template && { template: b.template }),
    };
  },

  /**
   * What the connection's kind takes: the media type (PLATFORM_UNSUPPORTED), the caption's length,
   * the file (yours, not expired: NOT_FOUND; within the type's size: PLATFORM_UNSUPPORTED), a URL the
   * egress guard accepts as written (EGRESS_FORBIDDEN; its address is judged again when fetched).
   */
  async checkMedia(o: MessagesPluginOptions, owner: string, m: MessageInput, conn: Connection, at: (field: string) => string): Promise<void> {
    if (m.template && !o.capabilities?.(conn.platform, conn.kind)?.templates) {
      throw new AppError('PLATFORM_UNSUPPORTED', `${conn.platform} ${conn.kind} connections send no templates`, { details: [{ path: at('template'), message: 'not supported by this connection' }] });
    }
    const window = o.capabilities?.(conn.platform, conn.kind)?.serviceWindow;
    const peer = window && !m.template ? window.peer(m.chat) : undefined;
    if (window && peer && await outsideWindow(o.sql, conn.id, peer, window.hours)) {
      throw new AppError('OUTSIDE_SERVICE_WINDOW', `the recipient has not written in ${window.hours} hours: only a template can be sent`, { details: [{ path: at('template'), message: 'required outside the service window' }] });
    }
    const err = (code: ErrorCode, message: string, field: string, detail: string) => new AppError(code, message, { details: [{ path: at(field), message: detail }] });
    const caps = o.capabilities?.(conn.platform, conn.kind)?.media;
    if (m.items) return internals.checkItems(o, owner, m, m.items, conn, caps, err);
    const media = m.media;
    if (!media) return;
    const limit = caps?.types[media.type];
    if (!caps || !limit) {
      const takes = caps ? Object.keys(caps.types).join(', ') : 'no media';
      throw err('PLATFORM_UNSUPPORTED', `${conn.platform} ${conn.kind} connections cannot send ${media.type} media (they take ${takes})`, 'media.type', 'not supported by this connection');
    }
    if (m.text.length > caps.captionMaxLength) {
      throw err('VALIDATION_ERROR', 'caption too long', 'text', `a caption of ${conn.platform} is at most ${caps.captionMaxLength} characters`);
    }
    if (media.uploadId) await internals.checkUpload(o, owner, media.uploadId, media.type, limit.maxBytes, conn, err, 'media.uploadId', '; send it as a document');
    if (media.url) {
      if (!o.egress) throw err('EGRESS_FORBIDDEN', 'this service fetches no media URLs', 'media.url', 'not fetched');
      try {
        o.egress.check(media.url);
      } catch (e) {
        if (e instanceof AppError) throw err(e.code, e.message, 'media.url', e.message);
        throw e;
      }
    }
  },

  /** A carousel: the kind takes carousels of this many files of these types, each yours and within its type's size. */
  async checkItems(o: MessagesPluginOptions, owner: string, m: MessageInput, items: MediaInput[], conn: Connection,
    caps: SendCapabilities['media'], err: (code: ErrorCode, message: string, field: string, detail: string) => AppError): Promise<void> {
    const c = caps?.carousel;
    if (!caps || !c) throw err('PLATFORM_UNSUPPORTED', `${conn.platform} ${conn.kind} connections post one file at a time, not carousels`, 'items', 'not supported by this connection');
    if (items.length < c.minItems || items.length > c.maxItems) throw err('VALIDATION_ERROR', 'carousel size', 'items', `${c.minItems} to ${c.maxItems} files`);
    if (m.text.length > caps.captionMaxLength) throw err('VALIDATION_ERROR', 'caption too long', 'text', `a caption of ${conn.platform} is at most ${caps.captionMaxLength} characters`);
    for (const [k, x] of items.entries()) {
      const limit = caps.types[x.type];
      if (!limit || !c.types.includes(x.type)) throw err('PLATFORM_UNSUPPORTED', `a ${conn.platform} carousel holds ${c.types.join(' and ')} files, not ${x.type}`, `items.${k}.type`, 'not supported in a carousel');
      await internals.checkUpload(o, owner, x.uploadId, x.type, limit.maxBytes, conn, err, `items.${k}.uploadId`);
    }
  },

  /** The caller's stored file, not expired (NOT_FOUND), and within the type's size (PLATFORM_UNSUPPORTED). */
  async checkUpload(o: MessagesPluginOptions, owner: string, uploadId: string | undefined, type: string, maxBytes: number, conn: Connection,
    err: (code: ErrorCode, message: string, field: string, detail: string) => AppError, field: string, hint = ''): Promise<void> {
    const upload = uploadId ? await getUpload(o.sql, owner, uploadId) : undefined;
    if (!upload || upload.expires_at.getTime() <= Date.now()) throw err('NOT_FOUND', 'upload not found', field, 'no such upload (or it expired)');
    if (Number(upload.size) > maxBytes) {
      throw err('PLATFORM_UNSUPPORTED', `${conn.platform} takes ${type} files up to ${Math.floor(maxBytes / 1024 / 1024)} MB${hint}`, field, 'too large for this media type');
    }
  },

  policy(o: MessagesPluginOptions): OperationPolicy {
    return (platform, kind) => {
      const caps = o.capabilities?.(platform, kind);
      return {
        edit: !!caps?.operations?.edit, delete: !!caps?.operations?.delete, resendSafe: caps?.resendSafe ?? false,
        ...(caps?.media ? { captionMaxLength: caps.media.captionMaxLength } : {}),
      };
    };
  },

  /** Messages as answered: with the pending edit or delete of each. */
  async view(sql: postgres.Sql, rows: MessageRow[]) {
    const pending = await pendingOperations(sql, rows.filter((r) => r.status === 'sent' || r.status === 'sending' || r.status === 'queued').map((r) => r.id));
    return rows.map((r) => toApiMessage(r, pending.get(r.id)));
  },

  /**
   * Accepted messages as answered. A message this request inserted cannot have an edit or delete
   * pending yet (an operation names a message by its id, which nobody had before the insert
   * committed), so only replays are looked up: one statement less per POST (issue 18).
   */
  async acceptedView(sql: postgres.Sql, results: AcceptResult[]) {
    const replays = results.filter((r) => r.replay).map((r) => r.message);
    const viewed = new Map((replays.length === 0 ? [] : await internals.view(sql, replays)).map((v) => [v.id, v]));
    return results.map((r) => viewed.get(r.message.id) ?? toApiMessage(r.message));
  },

  /** An edit or delete accepted: its message (as it is now) announced and answered 202. */
  async operated(o: MessagesPluginOptions, r: OperationRequest) {
    if (r.operation) o.delivery.notify();
    const [view] = await internals.view(o.sql, [r.message]); // its event was stored with the request (src/store/operations.ts)
    return view!;
  },

  /**
   * Checks what the store cannot see and accepts all or none. `path(i, field)` names a field of the
   * i-th message in error details (`connectionId` for one message, `messages.3.connectionId` in a batch).
   * A message whose idempotency key is already stored skips the checks: its replay answers the first
   * result even if the connection has left `active` or the chat was removed since.
   */
  async accept(o: MessagesPluginOptions, owner: string, inputs: MessageInput[], path: (i: number, field: string) => string): Promise<AcceptResult[]> {
    const seen = await usedIdempotencyKeys(o.sql, owner, inputs.flatMap((m) => (m.idempotencyKey === undefined ? [] : [m.idempotencyKey])));
    const fresh = inputs.map((m, i) => ({ m, i })).filter(({ m }) => m.idempotencyKey === undefined || !seen.has(m.idempotencyKey));

    // The live status comes from the supervisor (the row's status is persisted with a debounce).
    const ids = [...new Set(fresh.map(({ m }) => m.connectionId))];
    const conns = new Map(await Promise.all(ids.map(async (id) => [id, await internals.connectionOf(o.connections, owner, id)] as const)));
    const missing = fresh.filter(({ m }) => conns.get(m.connectionId) === undefined);
    if (missing.length > 0) internals.fail('NOT_FOUND', 'connection not found', missing.map(({ i }) => ({ path: path(i, 'connectionId'), message: 'not found' })));
    const inactive = fresh.filter(({ m }) => conns.get(m.connectionId)!.status !== 'active');
    if (inactive.length > 0) {
      const first = conns.get(inactive[0]!.m.connectionId)!.status;
      internals.fail('CONNECTION_NOT_ACTIVE', `connection is ${first}, not active`,
        inactive.map(({ m, i }) => ({ path: path(i, 'connectionId'), message: `connection is ${conns.get(m.connectionId)!.status}` })));
    }
    internals.checkQuotas(fresh.map(({ m, i }) => ({ conn: conns.get(m.connectionId)!, path: path(i, 'connectionId') })));
    for (const { m, i } of fresh) await internals.checkMedia(o, owner, m, conns.get(m.connectionId)!, (field) => path(i, field));

    // A chat id names a chat of one connection (another connection may not even see that chat), so
    // it is looked up owner- and connection-scoped; a batch names few distinct chats.
    const byRef = fresh.filter(({ m }) => uuidRe.test(m.chat));
    // One statement for all of them: at 100,000/min a statement per distinct chat was ~1,600/s.
    const pairs = [...new Set(byRef.map(({ m }) => `${m.connectionId} ${m.chat.toLowerCase()}`))];
    const chats = await getChats(o.sql, owner, pairs.map((pair) => {
      const [connectionId, chatId] = pair.split(' ') as [string, string];
      return { connectionId, chatId };
    }));
    const unknown: ErrorDetail[] = [];
    for (const { m, i } of byRef) {
      const chat = chats.get(`${m.connectionId} ${m.chat.toLowerCase()}`);
      if (chat) m.platformChatId = chat.platform_chat_id;
      else unknown.push({ path: path(i, 'chat'), message: 'no such chat on this connection' });
    }
    if (unknown.length > 0) internals.fail('NOT_FOUND', 'chat not found', unknown);

    const results = await acceptMessages(o.sql, owner, inputs, {
      actor: owner, requireActive: false, announce: o.statusEvents !== 'outcomes', ...(o.quotas && { maxQueued: o.quotas.queuedMessagesPerOwner }),
    });
    if (results.some((r) => !r.replay)) o.delivery.notify();
    return results;
  },

  async connectionOf(connections: ConnectionService, owner: string, id: string): Promise<Connection | undefined> {
    try {
      return await connections.get(owner, id);
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  },
};

/** /v1/messages: send one or a batch (durably queued, idempotent), read one, list. */
export const messagesPlugin: Plugin<MessagesPluginOptions> = {
  name: 'integration-messages',
  dependencies: ['integration-auth', 'integration-rate-limit'],
  register(server, options) {
    const { sql } = options;
    const tags = ['api', 'messages'];

    server.route<{ Payload: SendBody; Headers: { 'idempotency-key'?: string } }>({
      method: 'POST', path: '/v1/messages',
      options: {
        tags, auth: authStrategy, description: 'Send a message',
        notes: '202: the message is stored and will be sent exactly once as far as the chat can tell, or end `failed` with an error code; '
          + 'follow it with GET /v1/messages/{id} or the `message.status` live event. The connection must be yours and `active`. '
          + 'With `Idempotency-Key`, the same key and body again answer 200 with the first message (header `Idempotent-Replayed: true`), '
          + 'even if the connection is no longer active; keys are per caller and shared with batch `idempotencyKey`s. '
          + 'Text is stored and answered verbatim (JSON-escaped only). Rate group `send` (100/min). '
          + 'A caller holds at most QUOTA_QUEUED_MESSAGES_PER_OWNER (default 10,000) messages not yet sent (`queued` or `sending`): '
          + 'beyond it 403 QUOTA_EXCEEDED and nothing is stored; a message still `queued` MESSAGE_QUEUE_TTL_HOURS (default 72) after it '
          + 'was accepted ends `failed` with MESSAGE_EXPIRED.',
        validate: { payload: sendSchema, headers: sendHeaders },
        ...documented(
          { 202: { schema: messageSchema, description: 'Accepted and queued' }, 200: { schema: messageSchema, description: 'Replay of an idempotent request: the first message' } },
          {
            400: 'VALIDATION_ERROR', 403: 'QUOTA_EXCEEDED: too many messages not yet sent; CONSENT_REQUIRED: no consent to processing', 404: 'NOT_FOUND: the connection (or chat id) is not yours',
            409: 'CONNECTION_NOT_ACTIVE; IDEMPOTENCY_CONFLICT: the key was used with another body', 413: 'PAYLOAD_TOO_LARGE',
            429: 'RATE_LIMITED (Retry-After); PLATFORM_QUOTA_EXCEEDED: the connection\'s platform quota is spent (Retry-After)', 503: 'DEPENDENCY_UNAVAILABLE',
          },
          internals.send,
        ),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const key = request.headers['idempotency-key'];
        const input = internals.toInput({ ...request.payload, ...(key !== undefined && { idempotencyKey: key }) }, (field) => field);
        let results: AcceptResult[];
        try {
          results = await internals.accept(options, sub, [input], (_i, field) => field);
        } catch (err) {
          // The store names batch positions; for one message the key came from the header.
          if (err instanceof AppError && err.code === 'IDEMPOTENCY_CONFLICT') {
            internals.fail('IDEMPOTENCY_CONFLICT', err.message, [{ path: 'headers.idempotency-key', message: 'reused with another body' }]);
          }
          throw err;
        }
        const result = results[0]!;
        const [view] = await internals.acceptedView(sql, [result]);
        const res = h.response(view).header('location', `/v1/messages/${result.message.id}`);
        return result.replay ? res.code(200).header('idempotent-replayed', 'true') : res.code(202);
      },
    });

    server.route<{ Payload: { messages: SendBody[] } }>({
      method: 'POST', path: '/v1/messages/batch',
      options: {
        tags, auth: authStrategy, description: 'Send up to 500 messages, all or none',
        notes: 'One invalid message refuses the whole batch (400, `details` name the index as `messages.<i>.<field>`); '
          + 'one connection not yours (404) or not `active` (409 CONNECTION_NOT_ACTIVE) stores nothing either. '
          + '`items` are in request order. A message whose `idempotencyKey` is already stored answers its first message; '
          + 'when every message of the batch was such a replay the answer is 200 instead of 202. '
          + 'The 1 MiB body limit applies (413). Counts once against rate group `send`. The queued-messages quota counts the '
          + 'whole batch: when its new messages do not all fit, 403 QUOTA_EXCEEDED and none is stored.',
        validate: { payload: batchSchema },
        ...documented(
          { 202: { schema: messageList, description: 'All accepted and queued' }, 200: { schema: messageList, description: 'Every message was an idempotent replay' } },
          {
            400: 'VALIDATION_ERROR (details name messages.<i>)', 403: 'QUOTA_EXCEEDED: the batch does not fit the queued-messages quota; CONSENT_REQUIRED', 404: 'NOT_FOUND: a connection (or chat id) is not yours',
            409: 'CONNECTION_NOT_ACTIVE; IDEMPOTENCY_CONFLICT', 413: 'PAYLOAD_TOO_LARGE',
            429: 'RATE_LIMITED (Retry-After); PLATFORM_QUOTA_EXCEEDED: a connection\'s platform quota is spent (Retry-After)', 503: 'DEPENDENCY_UNAVAILABLE',
          },
          internals.send,
        ),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const inputs = request.payload.messages.map((m, i) => internals.toInput(m, (field) => `messages.${i}.${field}`));
        const results = await internals.accept(options, sub, inputs, (i, field) => `messages.${i}.${field}`);
        return h.response({ items: await internals.acceptedView(sql, results) }).code(results.every((r) => r.replay) ? 200 : 202);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'GET', path: '/v1/messages/{id}',
      options: {
        tags, auth: authStrategy, description: 'One message', validate: { params: messageParams, ...notFoundOnBadParams },
        ...documented({ 200: { schema: messageSchema, description: 'The message' } }, { 404: 'NOT_FOUND' }),
      },
      handler: async (request) => {
        const row = await getMessage(sql, callerIn(request).sub, request.params.id);
        if (!row) throw new AppError('NOT_FOUND', 'not found');
        return (await internals.view(sql, [row]))[0];
      },
    });

    server.route<{ Query: ListQuery }>({
      method: 'GET', path: '/v1/messages',
      options: {
        tags, auth: authStrategy, description: 'List or search own messages, newest first',
        notes: '`nextCursor` is present while older pages follow. `q` searches the texts (words as written, no stemming: '
          + '`release` does not find `released`) and combines with `connectionId` and `status`; the order stays newest first. '
          + 'Texts blanked after a withdrawn message-retention consent are never found.',
        validate: { query: listQuery },
        ...documented({ 200: { schema: messagePage, description: 'A page of messages' } }, { 400: 'VALIDATION_ERROR (also a cursor that is not ours)' }),
      },
      handler: async (request) => {
        const q = request.query;
        const page = await listMessages(sql, callerIn(request).sub, {
          limit: q.limit, ...(q.connectionId && { connectionId: q.connectionId }), ...(q.status && { status: q.status }), ...(q.cursor && { cursor: q.cursor }),
          ...(q.q !== undefined && { q: q.q }), ...(q.direction && { direction: q.direction }), ...(q.since && { since: q.since }),
        });
        const items = await internals.view(sql, page.items);
        return page.nextCursor ? { items, nextCursor: page.nextCursor } : { items };
      },
    });

    server.route<{ Params: { id: string }; Payload: { text: string } }>({
      method: 'PATCH', path: '/v1/messages/{id}',
      options: {
        tags, auth: authStrategy, description: 'Edit a message\'s text (its caption, with media)',
        notes: 'A message still `queued` and never tried gets the new text before it is sent (no edit reaches the chat). '
          + 'Otherwise the edit is queued in the outbox and made in the chat once the message is sent, exactly once, after any earlier '
          + 'edit or delete of the same message; the answer shows it as `pendingOperation`, and the `message.status` event announces the '
          + 'new text with `editedAt` (or the failure, in `pendingOperation.error`). The same text the message will have anyway: '
          + '422 MESSAGE_NOT_MODIFIED. Platforms refuse some edits (Telegram: a message too old, or not the connection\'s): the edit '
          + 'fails with their code and the message keeps its text. Rate group `send`.',
        validate: { params: messageParams, payload: editSchema, ...notFoundOnBadParams },
        ...documented({ 202: { schema: messageSchema, description: 'The edit is stored (or made, while queued)' } }, {
          400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 409: 'INVALID_STATE: the message failed, was cancelled or deleted',
          422: 'MESSAGE_NOT_MODIFIED; PLATFORM_UNSUPPORTED: the connection cannot edit', 403: 'QUOTA_EXCEEDED',
        }, internals.send),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const r = await requestEdit(sql, sub, request.params.id, request.payload.text, {
          actor: sub, policy: internals.policy(options), ...(options.quotas && { maxQueued: options.quotas.queuedMessagesPerOwner }),
        });
        return h.response(await internals.operated(options, r)).code(202);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'DELETE', path: '/v1/messages/{id}',
      options: {
        tags, auth: authStrategy, description: 'Cancel a queued message, or delete a sent one in the chat',
        notes: 'A message still `queued` that cannot be in the chat yet ends `cancelled` at once and is never sent. Otherwise the delete '
          + 'is queued in the outbox and made in the chat once the message is sent (status stays `sent`; `deletedAt` is set when done). '
          + 'Deleting again answers the same 202. A `failed` message is not in the chat: 409 INVALID_STATE. Telegram refuses some deletes '
          + '(bots: messages older than 48 h in groups; no rights): the delete fails with its code. Rate group `send`.',
        validate: { params: messageParams, ...notFoundOnBadParams },
        ...documented({ 202: { schema: messageSchema, description: 'Cancelled, or the delete is stored' } }, {
          404: 'NOT_FOUND', 409: 'INVALID_STATE: the message failed', 422: 'PLATFORM_UNSUPPORTED: the connection cannot delete', 403: 'QUOTA_EXCEEDED',
        }, internals.send),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const r = await requestDelete(sql, sub, request.params.id, {
          actor: sub, policy: internals.policy(options), ...(options.quotas && { maxQueued: options.quotas.queuedMessagesPerOwner }),
        });
        return h.response(await internals.operated(options, r)).code(202);
      },
    });
  },
};
