import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import { AppError, type ErrorCode, type ErrorDetail } from '../errors.ts';
import { getChats } from '../store/chats.ts';
import {
  acceptMessages, getMessage, listMessages, toApiMessage, usedIdempotencyKeys, type AcceptResult, type MessageInput, type MessageStatus, type Priority,
} from '../store/messages.ts';
import type { ConnectionService } from '../supervisor/types.ts';
import { callerIn, documented, notFoundOnBadParams, uuid } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface MessagesPluginOptions {
  sql: postgres.Sql;
  connections: ConnectionService;
  /** The delivery facade (src/delivery/delivery.ts): woken after new rows commit. */
  delivery: { notify(): void };
}

interface SendBody {
  connectionId: string; chat: string; text: string; parseMode?: 'html' | 'markdown'; silent: boolean;
  replyTo?: number | string; priority: Priority; idempotencyKey?: string;
}
interface ListQuery { connectionId?: string; status?: MessageStatus; limit: number; cursor?: string }

// ---------------------------------------------------------------------------------------------
// Schemas (OpenAPI labels and examples)

const uuidExample = '0b8f2f8e-6a4f-4c33-9a57-3b9f2d1c7e10';
const messageIdExample = '5d2c7a8e-1f3b-4c9d-8e7f-6a5b4c3d2e1f';
const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// @name (Telegram usernames are 5..32 chars, 4 for old ones), a numeric id (Bot API style -100…),
// or one of our chat ids (POST /v1/connections/{id}/chats), resolved to its platform id here.
const chatRefRe = /^(?:@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d{1,20}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
// Telegram refuses longer texts (MESSAGE_TOO_LONG) and whitespace-only ones (MESSAGE_EMPTY).
const maxText = 4096;
// Telegram message ids are positive int32.
const maxMessageId = 2_147_483_647;
// No control characters: Postgres text cannot hold NUL (the insert would fail as a 500), and a key
// is an identifier, not content.
const idempotencyKey = Joi.string().min(1).max(200).pattern(/^[^\u0000-\u001f\u007f]+$/);

const sendKeys = {
  // Lowercased: the store matches connection ids as Postgres prints them.
  connectionId: uuid.lowercase().required().example(uuidExample).description('one of your connections; it must be `active`'),
  chat: Joi.string().max(64).required()
    .custom((v: string, helpers) => (chatRefRe.test(v) ? v : helpers.error('string.chatRef')))
    .messages({ 'string.chatRef': '"chat" must be @name, a numeric chat id or one of your chat ids' })
    .example('@my_channel').description('@name | -1001234567890 | a chat id from /v1/connections/{id}/chats (of the same connection)'),
  text: Joi.string().min(1).max(maxText).required()
    // Postgres text cannot hold NUL; other control characters are the sender's business.
    .custom((v: string, helpers) => (v.includes('\u0000') ? helpers.error('string.nul') : /\S/.test(v) ? v : helpers.error('string.blank')))
    .messages({ 'string.blank': '"text" must contain a visible character', 'string.nul': '"text" must not contain NUL characters' })
    .example('Release 1.4 is out').description('1..4096 characters, sent verbatim (markup only with parseMode)'),
  parseMode: Joi.string().valid('html', 'markdown').description('how Telegram reads markup in text; plain text when absent'),
  silent: Joi.boolean().default(false).description('deliver without a notification sound'),
  replyTo: Joi.alternatives().try(
    Joi.number().integer().min(1).max(maxMessageId),
    Joi.string().pattern(/^[1-9]\d{0,9}$/),
  ).description('platform message id to reply to').example(42),
  priority: Joi.string().valid('high', 'normal', 'low').default('normal').description('high is sent before normal before low'),
};

const sendSchema = Joi.object(sendKeys).label('SendMessage')
  .example({ connectionId: uuidExample, chat: '@my_channel', text: 'Release 1.4 is out', priority: 'normal' });

const batchItem = Joi.object({
  ...sendKeys,
  idempotencyKey: idempotencyKey.description('like the Idempotency-Key header, per message').example('release-1.4-channel'),
}).label('BatchMessage');

const batchSchema = Joi.object({
  // 500 per request (API.md); the 1 MiB body limit still applies, so 500 long texts need two requests.
  messages: Joi.array().items(batchItem).min(1).max(500).required(),
}).label('SendMessageBatch').example({ messages: [{ connectionId: uuidExample, chat: '@my_channel', text: 'Hello', idempotencyKey: 'hello-1' }] });

const sendHeaders = Joi.object({
  'idempotency-key': idempotencyKey.example('release-1.4-channel')
    .description('same key and body again → 200 with the first message; same key, other body → 409 IDEMPOTENCY_CONFLICT'),
}).unknown(true).label('SendMessageHeaders');

const messageSchema = Joi.object({
  id: Joi.string().required().example(messageIdExample),
  connectionId: Joi.string().required().example(uuidExample),
  chat: Joi.string().required().example('@my_channel').description('as given'),
  text: Joi.string().required().example('Release 1.4 is out'),
  priority: Joi.string().valid('high', 'normal', 'low').required(),
  status: Joi.string().valid('queued', 'sending', 'sent', 'failed').required().example('queued'),
  attempts: Joi.number().integer().min(0).required().example(0),
  platformMessageId: Joi.string().example('1187'),
  error: Joi.object({ code: Joi.string().required(), message: Joi.string().required(), retryAt: Joi.string().isoDate() })
    .label('MessageError').description('why it failed, or why it waits (retryAt)'),
  createdAt: Joi.string().isoDate().required().example('2026-11-28T05:00:00.000Z'),
  sentAt: Joi.string().isoDate().example('2026-11-28T05:00:00.412Z'),
}).label('Message');

const messageList = Joi.object({ items: Joi.array().items(messageSchema).required() }).label('MessageBatchResult');
const messagePage = Joi.object({ items: Joi.array().items(messageSchema).required(), nextCursor: Joi.string() }).label('MessagePage');

const messageParams = Joi.object({ id: uuid.required().example(messageIdExample).description('message id') }).label('MessageIdParams');

const listQuery = Joi.object({
  connectionId: uuid.description('only messages of this connection'),
  status: Joi.string().valid('queued', 'sending', 'sent', 'failed'),
  limit: Joi.number().integer().min(1).max(100).default(50),
  cursor: Joi.string().max(512).pattern(/^[A-Za-z0-9_-]+$/).description('nextCursor of the previous page'),
}).label('ListMessagesQuery');

// ---------------------------------------------------------------------------------------------

const internals = {
  send: { rateLimit: { group: 'send' as const } },

  fail(code: ErrorCode, message: string, details: ErrorDetail[]): never {
    throw new AppError(code, message, { details });
  },

  toInput(b: SendBody): MessageInput {
    return {
      connectionId: b.connectionId, chat: b.chat, text: b.text, silent: b.silent, priority: b.priority,
      ...(b.parseMode && { parseMode: b.parseMode }),
      ...(b.replyTo !== undefined && { replyTo: String(b.replyTo) }),
      ...(b.idempotencyKey !== undefined && { idempotencyKey: b.idempotencyKey }),
    };
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
    const status = new Map(await Promise.all(ids.map(async (id) => [id, await internals.statusOf(o.connections, owner, id)] as const)));
    const missing = fresh.filter(({ m }) => status.get(m.connectionId) === undefined);
    if (missing.length > 0) internals.fail('NOT_FOUND', 'connection not found', missing.map(({ i }) => ({ path: path(i, 'connectionId'), message: 'not found' })));
    const inactive = fresh.filter(({ m }) => status.get(m.connectionId) !== 'active');
    if (inactive.length > 0) {
      const first = status.get(inactive[0]!.m.connectionId);
      internals.fail('CONNECTION_NOT_ACTIVE', `connection is ${first}, not active`,
        inactive.map(({ m, i }) => ({ path: path(i, 'connectionId'), message: `connection is ${status.get(m.connectionId)}` })));
    }

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

    const results = await acceptMessages(o.sql, owner, inputs, { actor: owner, requireActive: false });
    if (results.some((r) => !r.replay)) o.delivery.notify();
    return results;
  },

  async statusOf(connections: ConnectionService, owner: string, id: string): Promise<string | undefined> {
    try {
      return (await connections.get(owner, id)).status;
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
          + 'Text is stored and answered verbatim (JSON-escaped only). Rate group `send` (100/min).',
        validate: { payload: sendSchema, headers: sendHeaders },
        ...documented(
          { 202: { schema: messageSchema, description: 'Accepted and queued' }, 200: { schema: messageSchema, description: 'Replay of an idempotent request: the first message' } },
          {
            400: 'VALIDATION_ERROR', 404: 'NOT_FOUND: the connection (or chat id) is not yours',
            409: 'CONNECTION_NOT_ACTIVE; IDEMPOTENCY_CONFLICT: the key was used with another body', 413: 'PAYLOAD_TOO_LARGE',
            503: 'DEPENDENCY_UNAVAILABLE',
          },
          internals.send,
        ),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const key = request.headers['idempotency-key'];
        const input = internals.toInput({ ...request.payload, ...(key !== undefined && { idempotencyKey: key }) });
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
        const res = h.response(toApiMessage(result.message)).header('location', `/v1/messages/${result.message.id}`);
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
          + 'The 1 MiB body limit applies (413). Counts once against rate group `send`.',
        validate: { payload: batchSchema },
        ...documented(
          { 202: { schema: messageList, description: 'All accepted and queued' }, 200: { schema: messageList, description: 'Every message was an idempotent replay' } },
          {
            400: 'VALIDATION_ERROR (details name messages.<i>)', 404: 'NOT_FOUND: a connection (or chat id) is not yours',
            409: 'CONNECTION_NOT_ACTIVE; IDEMPOTENCY_CONFLICT', 413: 'PAYLOAD_TOO_LARGE', 503: 'DEPENDENCY_UNAVAILABLE',
          },
          internals.send,
        ),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const results = await internals.accept(options, sub, request.payload.messages.map(internals.toInput), (i, field) => `messages.${i}.${field}`);
        return h.response({ items: results.map((r) => toApiMessage(r.message)) }).code(results.every((r) => r.replay) ? 200 : 202);
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
        return toApiMessage(row);
      },
    });

    server.route<{ Query: ListQuery }>({
      method: 'GET', path: '/v1/messages',
      options: {
        tags, auth: authStrategy, description: 'List own messages, newest first',
        notes: '`nextCursor` is present while older pages follow.',
        validate: { query: listQuery },
        ...documented({ 200: { schema: messagePage, description: 'A page of messages' } }, { 400: 'VALIDATION_ERROR (also a cursor that is not ours)' }),
      },
      handler: async (request) => {
        const q = request.query;
        const page = await listMessages(sql, callerIn(request).sub, {
          limit: q.limit, ...(q.connectionId && { connectionId: q.connectionId }), ...(q.status && { status: q.status }), ...(q.cursor && { cursor: q.cursor }),
        });
        const items = page.items.map(toApiMessage);
        return page.nextCursor ? { items, nextCursor: page.nextCursor } : { items };
      },
    });
  },
};
