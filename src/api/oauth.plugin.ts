import Joi from 'joi';
import type { Plugin } from '@hapi/hapi';
import type { ConnectionService } from '../connections/types.ts';
import { AppError } from '../errors.ts';
import type { Platforms } from '../platforms/registry.ts';
import { callerIn, connectionSchema, documented, idParams, notFoundOnBadParams } from './schemas.ts';
import { authStrategy } from './server.ts';

// OAuth platforms (API.md "OAuth platforms"): the callback the platform redirects the browser to (no
// bearer token: the single-use state is the proof) and re-authorization of a connection whose grant
// died (PLATFORM_AUTH_REVOKED) or whose URL expired.

export interface OAuthPluginOptions { connections: ConnectionService; platforms: Platforms }

// Codes and states are opaque to us; the bounds keep junk out of the database and logs
// (Google codes ~73 chars, TikTok ~200; our states are 43).
const callbackQuery = Joi.object({
  code: Joi.string().max(2048),
  state: Joi.string().max(256),
  error: Joi.string().max(256),
  error_description: Joi.string().max(2048).allow(''),
  // Instagram and Threads add the reason to a denial (error=access_denied&error_reason=user_denied).
  error_reason: Joi.string().max(256).allow(''),
  scope: Joi.string().max(4096).allow(''),
  scopes: Joi.string().max(4096).allow(''),
  authuser: Joi.string().max(16),
  prompt: Joi.string().max(64),
  hd: Joi.string().max(256),
}).label('OAuthCallbackQuery');

export const oauthPlugin: Plugin<OAuthPluginOptions> = {
  name: 'integration-oauth',
  dependencies: ['integration-auth', 'integration-rate-limit'],
  register(server, { connections, platforms }) {
    server.route<{ Params: { platform: string }; Query: { code?: string; state?: string; error?: string } }>({
      method: 'GET', path: '/v1/oauth/{platform}/callback',
      options: {
        tags: ['api', 'connections'], auth: false,
        description: 'OAuth callback (the platform redirects the browser here)',
        notes: 'Exchanges the code, stores the tokens encrypted and redirects (302) to the connection\'s `redirectUri` (or the console) '
          + 'with `?connection=<id>&status=active`; a denied consent redirects with `status=error&code=PLATFORM_AUTH_DENIED`. '
          + 'An unknown, used or expired `state` answers 400 OAUTH_STATE_INVALID and changes nothing.',
        validate: {
          params: Joi.object({ platform: Joi.string().valid(...platforms.names).required() }),
          query: callbackQuery,
        },
        plugins: { 'hapi-swagger': { responses: { 302: { description: 'To the redirectUri' }, 400: { description: 'OAUTH_STATE_INVALID; VALIDATION_ERROR' }, 404: { description: 'NOT_FOUND: the platform has no OAuth login' } } } },
      },
      handler: async (request, h) => {
        if (!connections.authorizationCallback) throw new AppError('NOT_FOUND', 'OAuth is not available here');
        const to = await connections.authorizationCallback(request.params.platform, request.query);
        return h.redirect(to).code(302);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'POST', path: '/v1/connections/{id}/reauthorize',
      options: {
        tags: ['api', 'connections'], auth: authStrategy,
        description: 'A new authorize URL for an OAuth connection',
        notes: 'For a connection in `error` (PLATFORM_AUTH_REVOKED, PLATFORM_AUTH_DENIED) or `awaiting-authorization`: answers it '
          + '`awaiting-authorization` with a new `login.authorizeUrl`; older URLs stop working. Rate group `connect`.',
        validate: { params: idParams, ...notFoundOnBadParams },
        ...documented({ 200: { schema: connectionSchema, description: 'Awaiting authorization' } }, { 404: 'NOT_FOUND', 409: 'INVALID_STATE' },
          { rateLimit: { group: 'connect' }, consent: 'processing' }),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        if (!connections.reauthorize) throw new AppError('NOT_FOUND', 'No such connection');
        return connections.reauthorize(sub, request.params.id);
      },
    });
  },
};
