import { createRequire } from 'node:module';
import Boom from '@hapi/boom';
import Hapi from '@hapi/hapi';
import type { Server, ServerRegisterPluginObject } from '@hapi/hapi';
import type { Logger } from 'winston';
import { logger as defaultLogger } from '../observability/logger.ts';
import { authPlugin, type AuthOptions } from './auth.plugin.ts';
import { docsPlugin } from './docs.plugin.ts';
import { errorsPlugin } from './errors.plugin.ts';
import { healthPlugin, type ReadinessCheck } from './health.plugin.ts';
import { metricsPlugin } from './metrics.plugin.ts';
import { rateLimitPlugin, type RateLimitOptions } from './rate-limit.plugin.ts';
import { requestLogPlugin } from './request-log.plugin.ts';

export { authenticateToken, authStrategy, callerOf, type Caller } from './auth.plugin.ts';
export { errorResponses, type ErrorEnvelope } from './errors.plugin.ts';
export type { RateLimitGroup } from './rate-limit.plugin.ts';

export interface ServerOptions {
  port: number;
  host?: string;
  auth: AuthOptions;
  /** Browser origins allowed by CORS (the web console); empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Readiness checks by name, run by `/health/ready`. */
  checks: Record<string, ReadinessCheck>;
  rateLimit: RateLimitOptions;
  logger?: Logger;
}

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

// API.md: bodies over 1 MiB answer 413.
const maxBodyBytes = 1024 * 1024;

/**
 * Joi conventions every route inherits: all problems at once (one `details` entry per field) and
 * unknown fields refused (Joi's default; never `stripUnknown`), so `{ "phon": … }` is a 400
 * VALIDATION_ERROR instead of a silently ignored typo. The failing Joi error is passed on untouched
 * so the error envelope can list the fields.
 */
export const validation = {
  options: { abortEarly: false, stripUnknown: false, convert: true },
  failAction: (_request: unknown, _h: unknown, err?: Error) => {
    throw err;
  },
} as const;

/** Builds the control plane (not started): shell plugins registered, resource plugins added by the caller. */
export async function createServer(opts: ServerOptions): Promise<Hapi.Server> {
  const server = Hapi.server({
    port: opts.port,
    host: opts.host ?? '0.0.0.0',
    // Hapi prints 500s with their stacks to stderr by default; errors go through the redacting logger instead.
    debug: false,
    router: { stripTrailingSlash: true },
    routes: {
      cors: opts.corsOrigins.length > 0 && {
        origin: opts.corsOrigins,
        additionalHeaders: ['x-request-id', 'idempotency-key'],
        additionalExposedHeaders: ['x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
      },
      validate: validation,
      // Route `response.status` schemas for 4xx/5xx (see errorResponses) document the envelope, but
      // Hapi validates an error's Boom payload against them before onPreResponse turns it into that
      // envelope; errors pass through, a wrong success answer still fails as 500.
      response: {
        emptyStatusCode: 204,
        failAction: (request, h, err) => {
          if (Boom.isBoom(request.response)) return h.continue;
          throw err;
        },
      },
      payload: { maxBytes: maxBodyBytes, allow: ['application/json'] },
    },
  });

  const logger = opts.logger ?? defaultLogger;
  await registerInTurns(server, [
    { plugin: requestLogPlugin, options: { logger } },
    { plugin: errorsPlugin },
    { plugin: authPlugin, options: opts.auth },
    { plugin: rateLimitPlugin, options: opts.rateLimit },
    { plugin: healthPlugin, options: { checks: opts.checks } },
    { plugin: metricsPlugin },
    { plugin: docsPlugin, options: { version } },
  ]);
  return server;
}

/**
 * Registers plugins one event-loop turn apart. Building routes is synchronous (Hapi validates each
 * route's config; hapi-swagger loads handlebars): registered back to back they held the loop ~90 ms
 * at start-up, while the supervisor's reconnects were already in flight (bench:accounts).
 */
export async function registerInTurns(server: Server, plugins: Array<ServerRegisterPluginObject<any>>): Promise<void> {
  for (const p of plugins) {
    await server.register(p);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
