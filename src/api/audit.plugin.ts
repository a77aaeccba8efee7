import type { Plugin } from '@hapi/hapi';
import type postgres from 'postgres';
import { listAudit, toAuditView, type AuditRow } from '../store/audit.ts';
import type { ConnectionService } from '../connections/types.ts';
import { adminAuditPage, adminAuditQuery, auditCursor, auditPage, auditQuery, callerIn, documented } from './schemas.ts';
import { authStrategy } from './server.ts';

/** `connections` is accepted (unused) so every resource plugin can be registered with the same options. */
export interface AuditPluginOptions { sql: postgres.Sql; connections?: ConnectionService }

interface AuditQuery { limit: number; cursor?: string; owner?: string }

const internals = {
  // Newest first; one row more than asked says whether an older page exists.
  async page(sql: postgres.Sql, q: AuditQuery, owner: string | undefined) {
    const rows = await listAudit(sql, {
      limit: q.limit + 1,
      ...(owner !== undefined && { owner }),
      ...(q.cursor && { before: auditCursor.decode(q.cursor) }),
    });
    const items = rows.slice(0, q.limit);
    return { items, nextCursor: rows.length > q.limit ? auditCursor.encode(items.at(-1)!.id) : undefined };
  },
  withCursor: <T>(items: T[], nextCursor: string | undefined) => (nextCursor ? { items, nextCursor } : { items }),
};

/** GET /v1/audit (the caller's own trail) and GET /admin/audit (everyone's; admin scope). */
export const auditPlugin: Plugin<AuditPluginOptions> = {
  name: 'integration-audit',
  dependencies: ['integration-auth'],
  register(server, { sql }) {
    server.route<{ Query: AuditQuery }>({
      method: 'GET', path: '/v1/audit',
      options: {
        tags: ['api', 'audit'], auth: authStrategy, description: 'Own audit trail, newest first',
        notes: 'Connect, login steps, bots and chats added or removed, messages accepted, deletions. Kept RETENTION_DAYS (default 30).',
        validate: { query: auditQuery },
        ...documented({ 200: { schema: auditPage, description: 'A page of audit entries' } }, { 400: 'VALIDATION_ERROR (also a cursor that is not ours)' }),
      },
      handler: async (request) => {
        const { items, nextCursor } = await internals.page(sql, request.query, callerIn(request).sub);
        return internals.withCursor(items.map(toAuditView), nextCursor);
      },
    });

    server.route<{ Query: AuditQuery }>({
      method: 'GET', path: '/admin/audit',
      options: {
        tags: ['api', 'admin'], auth: authStrategy, description: 'Audit trail of every caller (admin scope)',
        validate: { query: adminAuditQuery },
        ...documented({ 200: { schema: adminAuditPage, description: 'A page of audit entries' } },
          { 400: 'VALIDATION_ERROR', 403: 'FORBIDDEN: needs the admin scope' }),
      },
      handler: async (request) => {
        const q = request.query;
        const { items, nextCursor } = await internals.page(sql, q, q.owner);
        return internals.withCursor(items.map((r: AuditRow) => ({ ...toAuditView(r), owner: r.owner })), nextCursor);
      },
    });
  },
};
