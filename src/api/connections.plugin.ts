import type { Plugin } from '@hapi/hapi';
import type postgres from 'postgres';
import QRCode from 'qrcode';
import type { ConnectionService, CreateConnection } from '../connections/types.ts';
import { AppError } from '../errors.ts';
import type { Platforms } from '../platforms/registry.ts';
import { createdAtText, type ListFilter } from '../store/connections.ts';
import {
  callerIn, codeSchema, keysetCursor, connectionPage, connectionSchema, documented, idParams,
  listConnectionsQuery, noBody, notFoundOnBadParams, passwordSchema, qrSchema, recoveryCodeSchema, recoverySchema, withPlatformErrors,
} from './schemas.ts';
import { authStrategy } from './server.ts';

export interface ConnectionsPluginOptions { sql: postgres.Sql; connections: ConnectionService; platforms: Platforms }

interface IdParams { id: string }
interface ListQuery { status?: ListFilter['status']; platform?: string; kind?: string; limit: number; cursor?: string }

const internals = {
  connect: { rateLimit: { group: 'connect' as const } },
  // Acting on the caller's behalf needs their consent to processing (consents.plugin.ts).
  onBehalf: { rateLimit: { group: 'connect' as const }, consent: 'processing' as const },
  manage: { rateLimit: { group: 'manage' as const } },

  // Weighs the three answers the QR route can give by the Accept header's q-values; anything else
  // (missing header, */*, text/html) gets JSON.
  qrFormat(accept: string | undefined): 'json' | 'png' | 'svg' {
    const offered = { 'application/json': 'json', 'image/png': 'png', 'image/svg+xml': 'svg' } as const;
    let best: { format: 'json' | 'png' | 'svg'; q: number } = { format: 'json', q: 0 };
    for (const part of (accept ?? '').split(',')) {
      const [type, ...params] = part.trim().toLowerCase().split(';');
      const mime = type?.trim() ?? '';
      if (!Object.hasOwn(offered, mime)) continue; // not "constructor" and friends either
      const format = offered[mime as keyof typeof offered];
      const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const q = qParam ? Number(qParam.slice(2)) : 1;
      if (Number.isFinite(q) && q > best.q) best = { format, q };
    }
    return best.format;
  },
};

/** /v1/connections: create and log in (phone, code, 2FA, QR, bot token), list, read, reconnect, delete. */
export const connectionsPlugin: Plugin<ConnectionsPluginOptions> = {
  name: 'integration-connections',
  dependencies: ['integration-auth', 'integration-rate-limit'],
  register(server, { sql, connections, platforms }) {
    const tags = ['api', 'connections'];
    const byId = { params: idParams, ...notFoundOnBadParams };
    const errors = withPlatformErrors(platforms);

    server.route<{ Payload: CreateConnection }>({
      method: 'POST', path: '/v1/connections',
      options: {
        tags, auth: authStrategy,
        description: 'Connect an account: phone login, QR login, a bot token, …',
        notes: `Platforms: ${platforms.names.join(', ')}; the body is the platform's (\`platform\` defaults to ${platforms.names[0]}). `
          + 'A Telegram user connection starts `connecting` and moves to `awaiting-code` (phone) or `awaiting-qr` (QR). '
          + 'A bot token is checked with getMe first: 201 `active`, or 422 and nothing is stored. Rate group `connect` (10/min). '
          + 'A caller holds at most QUOTA_CONNECTIONS_PER_OWNER (default 100) connections, whatever their status: one more is '
          + '403 QUOTA_EXCEEDED and nothing is stored; delete one to make room.',
        validate: { payload: platforms.createSchema() },
        ...documented(
          { 201: { schema: connectionSchema, description: 'Created' } },
          errors('create', {
            400: 'VALIDATION_ERROR',
            403: 'QUOTA_EXCEEDED: the caller has its quota of connections; CONSENT_REQUIRED: no consent to processing (see PUT /v1/me/consents/{purpose})',
            409: 'INVALID_STATE: this account is already connected', 503: 'DEPENDENCY_UNAVAILABLE; MEMORY_BUDGET_EXCEEDED',
          }),
          internals.onBehalf,
        ),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const created = await connections.create(sub, request.payload);
        return h.response(created).code(201).header('location', `/v1/connections/${created.id}`);
      },
    });

    server.route<{ Query: ListQuery }>({
      method: 'GET', path: '/v1/connections',
      options: {
        tags, auth: authStrategy, description: 'List own connections',
        notes: 'Newest last; `nextCursor` is present while more pages follow.',
        validate: { query: listConnectionsQuery(platforms) },
        ...documented({ 200: { schema: connectionPage, description: 'A page of connections' } }, { 400: 'VALIDATION_ERROR (also a cursor that is not ours)' }),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const q = request.query;
        const cursor = q.cursor ? keysetCursor.decode(q.cursor) : undefined;
        const { items } = await connections.list(sub, {
          limit: q.limit + 1, // one more than asked says whether another page follows
          ...(q.status && { status: q.status }), ...(q.platform && { platform: q.platform }), ...(q.kind && { kind: q.kind }),
          ...(cursor && { cursor }),
        });
        if (items.length <= q.limit) return { items };
        const page = items.slice(0, q.limit);
        const last = page.at(-1)!;
        // The cursor carries created_at as Postgres text with microseconds: the API's ISO string has
        // milliseconds, which would repeat or skip rows created within the same millisecond.
        const exact = await createdAtText(sql, sub, last.id);
        return { items: page, nextCursor: keysetCursor.encode({ createdAt: exact ?? last.createdAt, id: last.id }) };
      },
    });

    server.route<{ Params: IdParams }>({
      method: 'GET', path: '/v1/connections/{id}',
      options: {
        tags, auth: authStrategy, description: 'One connection', validate: byId,
        ...documented({ 200: { schema: connectionSchema, description: 'The connection' } }, { 404: 'NOT_FOUND' }),
      },
      handler: (request) => connections.get(callerIn(request).sub, request.params.id),
    });

    server.route<{ Params: IdParams; Payload: { code: string } }>({
      method: 'POST', path: '/v1/connections/{id}/code',
      options: {
        tags, auth: authStrategy, description: 'Submit the login code',
        notes: 'Answers `active`, or `awaiting-2fa` when the account has a password. Rate group `connect`.',
        validate: { ...byId, payload: codeSchema },
        ...documented({ 200: { schema: connectionSchema, description: 'Logged in, or awaiting the 2FA password' } },
          errors('code', { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 409: 'INVALID_STATE: not awaiting a code' }),
          internals.connect),
      },
      handler: (request) => connections.submitCode(callerIn(request).sub, request.params.id, request.payload.code),
    });

    server.route<{ Params: IdParams }>({
      method: 'POST', path: '/v1/connections/{id}/code/resend',
      options: {
        tags, auth: authStrategy, description: 'Send the login code again, the next way Telegram offers',
        notes: 'auth.resendCode: answers the connection, still `awaiting-code`, with the new `login.codeType` (e.g. app → sms → call). '
          + 'The code sent before keeps working until the new one arrives. No body. Rate group `connect`.',
        validate: { ...byId, payload: noBody },
        ...documented({ 200: { schema: connectionSchema, description: 'Sent again; login.codeType says how' } },
          errors('code.resend', { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 409: 'INVALID_STATE: not awaiting a code' }),
          internals.connect),
      },
      handler: (request) => {
        if (!connections.resendCode) throw new AppError('NOT_FOUND', 'Not found');
        return connections.resendCode(callerIn(request).sub, request.params.id);
      },
    });

    server.route<{ Params: IdParams }>({
      method: 'POST', path: '/v1/connections/{id}/password/recovery',
      options: {
        tags, auth: authStrategy, description: 'Forgotten 2FA password: e-mail a recovery code',
        notes: 'auth.requestPasswordRecovery while `awaiting-2fa`: Telegram e-mails a code to the account\'s recovery address and '
          + 'answers its pattern. Then POST …/password/recovery/code. No body. Rate group `connect`.',
        validate: { ...byId, payload: noBody },
        ...documented({ 200: { schema: recoverySchema, description: 'Code e-mailed' } },
          errors('password.recovery', { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 409: 'INVALID_STATE: not awaiting the 2FA password' }),
          internals.connect),
      },
      handler: (request) => {
        if (!connections.requestPasswordRecovery) throw new AppError('NOT_FOUND', 'Not found');
        return connections.requestPasswordRecovery(callerIn(request).sub, request.params.id);
      },
    });

    server.route<{ Params: IdParams; Payload: { code: string; newPassword?: string } }>({
      method: 'POST', path: '/v1/connections/{id}/password/recovery/code',
      options: {
        tags, auth: authStrategy, description: 'Sign in with the e-mailed recovery code',
        notes: 'auth.recoverPassword: answers `active`. Without `newPassword` Telegram removes the 2FA password; with it, it is '
          + 'the new one (used once, never stored). Rate group `connect`.',
        validate: { ...byId, payload: recoveryCodeSchema },
        ...documented({ 200: { schema: connectionSchema, description: 'Logged in' } },
          errors('password.recovery', { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 409: 'INVALID_STATE: not awaiting the 2FA password' }),
          internals.connect),
      },
      handler: (request) => {
        if (!connections.recoverPassword) throw new AppError('NOT_FOUND', 'Not found');
        return connections.recoverPassword(callerIn(request).sub, request.params.id, request.payload.code, request.payload.newPassword);
      },
    });

    server.route<{ Params: IdParams; Payload: { password: string } }>({
      method: 'POST', path: '/v1/connections/{id}/password',
      options: {
        tags, auth: authStrategy, description: 'Submit the 2FA password', notes: 'Rate group `connect`.',
        validate: { ...byId, payload: passwordSchema },
        ...documented({ 200: { schema: connectionSchema, description: 'Logged in' } },
          errors('password', { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 409: 'INVALID_STATE: not awaiting the password' }),
          internals.connect),
      },
      handler: (request) => connections.submitPassword(callerIn(request).sub, request.params.id, request.payload.password),
    });

    server.route<{ Params: IdParams }>({
      method: 'GET', path: '/v1/connections/{id}/qr',
      options: {
        tags, auth: authStrategy, description: 'The QR login token',
        notes: 'JSON by default; `Accept: image/png` or `image/svg+xml` renders the QR code of `url`. Never cached: the token logs in.',
        validate: byId,
        // No response schema: the answer may be an image. The JSON shape is documented below.
        plugins: {
          'hapi-swagger': {
            produces: ['application/json', 'image/png', 'image/svg+xml'],
            responses: {
              200: { description: 'The login token URL and its expiry, or the QR image', schema: qrSchema },
              401: { description: 'UNAUTHORIZED' }, 404: { description: 'NOT_FOUND' },
              409: { description: 'INVALID_STATE: not awaiting a QR scan' }, 429: { description: 'RATE_LIMITED' },
            },
          },
        },
      },
      handler: async (request, h) => {
        const qr = await connections.qr(callerIn(request).sub, request.params.id);
        const format = internals.qrFormat(typeof request.headers.accept === 'string' ? request.headers.accept : undefined);
        const res = format === 'png'
          ? h.response(await QRCode.toBuffer(qr.url, { type: 'png', margin: 2, width: 256 })).type('image/png')
          : format === 'svg'
            ? h.response(await QRCode.toString(qr.url, { type: 'svg', margin: 2 })).type('image/svg+xml')
            : h.response({ url: qr.url, expiresAt: qr.expiresAt });
        return res.header('cache-control', 'no-store').header('vary', 'accept');
      },
    });

    server.route<{ Params: IdParams }>({
      method: 'POST', path: '/v1/connections/{id}/reconnect',
      options: {
        tags, auth: authStrategy, description: 'Reconnect now',
        notes: 'Leaves `error` or `stopped` and resets the breaker; the connection then moves on by itself (202). Rate group `connect`. '
          + 'Needs the consent to processing like creating a connection (403 CONSENT_REQUIRED).',
        // No body is expected; `{}` is tolerated so clients that always send JSON are not refused.
        validate: { ...byId, payload: noBody },
        ...documented({ 202: { schema: connectionSchema, description: 'Accepted' } },
          { 400: 'VALIDATION_ERROR', 403: 'CONSENT_REQUIRED: no consent to processing', 404: 'NOT_FOUND', 409: 'INVALID_STATE', 503: 'CIRCUIT_OPEN; MEMORY_BUDGET_EXCEEDED' },
          internals.onBehalf),
      },
      handler: async (request, h) => h.response(await connections.reconnect(callerIn(request).sub, request.params.id)).code(202),
    });

    server.route<{ Params: IdParams }>({
      method: 'DELETE', path: '/v1/connections/{id}',
      options: {
        tags, auth: authStrategy, description: 'Delete a connection',
        notes: 'Logs the session out at the platform, stops the actor, deletes its secrets, chats and messages.',
        validate: byId,
        ...documented({ 204: { description: 'Deleted' } }, errors('delete', { 404: 'NOT_FOUND' }), internals.manage),
      },
      handler: async (request, h) => {
        await connections.remove(callerIn(request).sub, request.params.id);
        return h.response().code(204);
      },
    });
  },
};
