import { randomUUID } from 'node:crypto';
import type { Plugin } from '@hapi/hapi';
import type postgres from 'postgres';
import type { Quotas } from '../config.ts';
import { AppError } from '../errors.ts';
import { recordAudit } from '../store/audit.ts';
import { deleteChat, getChat, listChats, ownsConnection, toChat, updateChatCheck, upsertChat } from '../store/chats.ts';
import { transaction } from '../store/transaction.ts';
import type { ConnectionService } from '../connections/types.ts';
import type { Platforms } from '../platforms/registry.ts';
import {
  addChatSchema, callerIn, chatList, chatParams, chatQuery, chatSchema, documented, idParams, notFoundOnBadParams, withPlatformErrors,
} from './schemas.ts';
import { authStrategy } from './server.ts';

interface IdParams { id: string }
interface ChatParams { id: string; chatId: string }

export interface ChatsPluginOptions {
  sql: postgres.Sql;
  connections: ConnectionService;
  platforms: Platforms;
  /** QUOTA_CHATS_PER_CONNECTION; the store's default when absent */
  quotas?: Pick<Quotas, 'chatsPerConnection'>;
}

const internals = {
  // Adding a chat resolves it at the platform; removing one is a change: both count in `manage`.
  manage: { rateLimit: { group: 'manage' as const } },
  notFound: () => new AppError('NOT_FOUND', 'not found'),

  // The connection can be deleted between the platform check and the insert; the foreign key then
  // refuses the row, which for the caller is simply a connection that no longer exists.
  async orNotFound<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw internals.notFound();
      throw err;
    }
  },
};

/** /v1/connections/{id}/chats: chats a connection posts into, checked for membership and rights. */
export const chatsPlugin: Plugin<ChatsPluginOptions> = {
  name: 'integration-chats',
  dependencies: ['integration-auth'],
  register(server, { sql, connections, platforms, quotas }) {
    const tags = ['api', 'chats'];
    const errors = withPlatformErrors(platforms);

    server.route<{ Params: IdParams; Payload: { chat: string; requireAdmin: boolean } }>({
      method: 'POST', path: '/v1/connections/{id}/chats',
      options: {
        tags, auth: authStrategy, description: 'Add a chat (channel, group, supergroup) to a connection',
        notes: 'Resolves the chat through the connection and checks membership and rights before storing it. '
          + 'Links t.me/name are stored as @name. Adding a chat that is already there refreshes it and answers 200. '
          + 'A connection holds at most QUOTA_CHATS_PER_CONNECTION (default 500) chats: one more is 403 QUOTA_EXCEEDED, nothing stored.',
        validate: { params: idParams, payload: addChatSchema, ...notFoundOnBadParams },
        ...documented(
          { 201: { schema: chatSchema, description: 'Added' }, 200: { schema: chatSchema, description: 'Already added; refreshed' } },
          errors('chat.add', { 400: 'VALIDATION_ERROR', 403: 'QUOTA_EXCEEDED: the connection has its quota of chats', 404: 'NOT_FOUND' }),
          internals.manage,
        ),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const connectionId = request.params.id;
        const { requireAdmin } = request.payload;
        const chat = await connections.chatRef(sub, connectionId, request.payload.chat);
        const check = await connections.checkChat(sub, connectionId, chat, { requireAdmin });
        const { row, created } = await internals.orNotFound(transaction(sql, async (tx) => {
          // The id is chosen first so the audit entry can name it; a re-add keeps the stored id.
          const [existing] = await tx<{ id: string }[]>`
            select id from chats where owner = ${sub} and connection_id = ${connectionId} and platform_chat_id = ${check.platformChatId}`;
          const target = existing?.id ?? randomUUID();
          await recordAudit(tx, {
            owner: sub, actor: sub, action: existing ? 'chat.refreshed' : 'chat.added', target,
            details: { connectionId, platformChatId: check.platformChatId, type: check.type, isAdmin: check.isAdmin, canSend: check.canSend },
          });
          return upsertChat(tx, sub, connectionId, check, target, quotas?.chatsPerConnection);
        }));
        return h.response(toChat(row)).code(created ? 201 : 200);
      },
    });

    server.route<{ Params: IdParams }>({
      method: 'GET', path: '/v1/connections/{id}/chats',
      options: {
        tags, auth: authStrategy, description: 'Chats of a connection', validate: { params: idParams, ...notFoundOnBadParams },
        ...documented({ 200: { schema: chatList, description: 'All chats of the connection' } }, { 404: 'NOT_FOUND' }),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const rows = await transaction(sql, async (tx) => {
          if (!(await ownsConnection(tx, sub, request.params.id))) throw internals.notFound();
          return listChats(tx, sub, request.params.id);
        }, 'repeatable read');
        return { items: rows.map(toChat) };
      },
    });

    server.route<{ Params: ChatParams; Query: { refresh: boolean } }>({
      method: 'GET', path: '/v1/connections/{id}/chats/{chatId}',
      options: {
        tags, auth: authStrategy, description: 'One chat',
        notes: '`refresh=true` re-checks membership and rights through the connection and stores the result; '
          + 'when the check fails (left the chat, chat gone) the error is answered and the stored row is kept.',
        validate: { params: chatParams, query: chatQuery, ...notFoundOnBadParams },
        ...documented({ 200: { schema: chatSchema, description: 'The chat' } },
          errors('chat.refresh', { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND' })),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const { id, chatId } = request.params;
        const row = await getChat(sql, sub, id, chatId);
        if (!row) throw internals.notFound();
        if (!request.query.refresh) return toChat(row);
        const check = await connections.checkChat(sub, id, row.platform_chat_id);
        const updated = await updateChatCheck(sql, sub, id, chatId, check);
        if (!updated) throw internals.notFound();
        return toChat(updated);
      },
    });

    server.route<{ Params: ChatParams }>({
      method: 'DELETE', path: '/v1/connections/{id}/chats/{chatId}',
      options: {
        tags, auth: authStrategy, description: 'Remove a chat', validate: { params: chatParams, ...notFoundOnBadParams },
        ...documented({ 204: { description: 'Removed' } }, { 404: 'NOT_FOUND' }, internals.manage),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const { id, chatId } = request.params;
        await transaction(sql, async (tx) => {
          await recordAudit(tx, { owner: sub, actor: sub, action: 'chat.removed', target: chatId, details: { connectionId: id } });
          // Nothing deleted: the audit entry above rolls back with this error.
          if (!(await deleteChat(tx, sub, id, chatId))) throw internals.notFound();
        });
        return h.response().code(204);
      },
    });
  },
};
