import type { Plugin } from '@hapi/hapi';
import type postgres from 'postgres';
import { deletePersonalData, exportPersonalData } from '../store/personal-data.ts';
import type { ConnectionService } from '../supervisor/types.ts';
import { callerIn, documented, exportSchema } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface MePluginOptions { sql: postgres.Sql; connections: ConnectionService }

/** GET /v1/me/export and DELETE /v1/me: the caller's personal data (API.md, Audit and personal data). */
export const mePlugin: Plugin<MePluginOptions> = {
  name: 'integration-me',
  dependencies: ['integration-auth'],
  register(server, { sql, connections }) {
    server.route({
      method: 'GET', path: '/v1/me/export',
      options: {
        tags: ['api', 'personal data'], auth: authStrategy, description: 'Everything stored about the caller',
        notes: 'Connections, chats, messages and audit entries of the caller as one JSON document; secrets '
          + '(sessions, tokens, 2FA data, machine snapshots) are never included.',
        ...documented({ 200: { schema: exportSchema, description: 'The export' } }, {}),
      },
      handler: async (request, h) => {
        const data = await exportPersonalData(sql, callerIn(request).sub);
        return h.response(data).header('cache-control', 'no-store')
          .header('content-disposition', `attachment; filename="personal-data-${data.exportedAt.slice(0, 10)}.json"`);
      },
    });

    server.route({
      method: 'DELETE', path: '/v1/me',
      options: {
        tags: ['api', 'personal data'], auth: authStrategy, description: 'Delete everything of the caller',
        notes: 'Logs every connection out at the platform and stops it, then deletes every connection, secret, chat, '
          + 'message and audit entry of the caller. Repeating it is harmless (204 again).',
        ...documented({ 204: { description: 'Deleted' } }, { 503: 'TG_UNAVAILABLE; DEPENDENCY_UNAVAILABLE: nothing or part removed, repeat the call' }),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const loggedOut = await connections.removeAll(sub);
        const deleted = await deletePersonalData(sql, sub);
        // Not audited: the caller's audit trail is part of what was deleted. The log keeps the fact.
        request.app.log.info('personal data deleted', { user: { id: sub }, loggedOut, deleted });
        return h.response().code(204);
      },
    });
  },
};
