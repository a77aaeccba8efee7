import type { Plugin } from '@hapi/hapi';
import type postgres from 'postgres';
import { AppError } from '../errors.ts';
import { recordAudit } from '../store/audit.ts';
import type { ConnectionService } from '../supervisor/types.ts';
import { actorDetail, actorList, actorParams, callerIn, documented, noBody, notFoundOnBadParams, restartAnswer } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface AdminPluginOptions { sql: postgres.Sql; connections: ConnectionService }

/**
 * /admin/actors: the live supervisor tree for operators. The admin scope is enforced by the auth
 * plugin for every /admin path (403 FORBIDDEN); these routes are not owner-scoped.
 */
export const adminPlugin: Plugin<AdminPluginOptions> = {
  name: 'integration-admin',
  dependencies: ['integration-auth'],
  register(server, { sql, connections }) {
    const tags = ['api', 'admin'];
    const forbidden = { 403: 'FORBIDDEN: needs the admin scope' };
    const listDoc = documented({ 200: { schema: actorList, description: 'The actor tree' } }, forbidden);

    server.route({
      method: 'GET', path: '/admin/actors',
      options: {
        tags, auth: authStrategy, description: 'Every actor of the supervisor, with totals per state',
        ...listDoc,
        // The schema documents the answer; validating it per call is off: at 10,000 actors Joi took
        // ~140 ms of the ~200 ms each call held the event loop (bench:accounts). The admin tests
        // check real answers against actorList instead.
        response: { ...listDoc.response, sample: 0 },
      },
      handler: () => connections.actors(),
    });

    server.route<{ Params: { id: string } }>({
      method: 'GET', path: '/admin/actors/{id}',
      options: {
        tags, auth: authStrategy, description: 'One actor: snapshot, context without secrets, last 50 transitions',
        validate: { params: actorParams, ...notFoundOnBadParams },
        ...documented({ 200: { schema: actorDetail, description: 'The actor' } }, { ...forbidden, 404: 'NOT_FOUND' }),
      },
      handler: (request) => {
        const actor = connections.actor(request.params.id);
        if (!actor) throw new AppError('NOT_FOUND', 'no such actor');
        return actor;
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'POST', path: '/admin/actors/{id}/restart',
      options: {
        tags, auth: authStrategy, description: 'Restart one actor',
        notes: 'Stops the actor and starts it again from its persisted state (202); audited in the owner\'s trail.',
        validate: { params: actorParams, payload: noBody, ...notFoundOnBadParams },
        ...documented({ 202: { schema: restartAnswer, description: 'Restarting' } }, { ...forbidden, 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND' }),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const id = request.params.id;
        const owner = connections.actor(id)?.owner;
        if (!owner || !(await connections.restart(id))) throw new AppError('NOT_FOUND', 'no such actor');
        // The owner sees in their own trail that an operator restarted their connection.
        await recordAudit(sql, { owner, actor: sub, action: 'actor.restarted', target: id, details: { by: 'admin' } });
        return h.response({ id, restarting: true }).code(202);
      },
    });
  },
};
