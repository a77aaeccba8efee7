import { createRequire } from 'node:module';
import Boom from '@hapi/boom';
import Hapi from '@hapi/hapi';
import type { Server, ServerRegisterPluginObject } from '@hapi/hapi';
import type { Logger } from 'winston';
import { logger as defaultLogger } from '../observability/logger.ts';
import type { LogSubjects } from '../observability/subjects.ts';
import { authPlugin, type AuthOptions } from './auth.plugin.ts';
import { docsPlugin } from './docs.plugin.ts';
import { errorsPlugin } from './errors.plugin.ts';
import { headersPlugin } from './headers.plugin.ts';
import { healthPlugin, type ReadinessCheck } from './health.plugin.ts';
import { inputPlugin } from './input.plugin.ts';
import { loadShedPlugin, type LoadShedOptions } from './load-shed.plugin.ts';
import { limitListener, listenerDefaults, type ListenerLimits } from './listener.ts';
import { metricsPlugin } from './metrics.plugin.ts';
import { rateLimitPlugin, type RateLimitOptions } from './rate-limit.plugin.ts';
import { requestLogPlugin } from './request-log.plugin.ts';

export { authenticateToken, authStrategy, callerOf, type Caller } from './auth.plugin.ts';
export { errorResponses, type ErrorEnvelope } from './errors.plugin.ts';
export type { RateLimitGroup, RateLimits } from './rate-limit.plugin.ts';

export interface ServerOptions {
  port: number;
  host?: string;
  auth: AuthOptions;
  /** Browser origins allowed by CORS (the web console); empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Readiness checks by name, run by `/health/ready`. */
  checks: Record<string, ReadinessCheck>;
  rateLimit: RateLimitOptions;
  /** Slow clients and the connection cap (docs/operations.md). */
  listener?: ListenerLimits;
  /** Load shedding (503 OVERLOADED); absent: off. */
  loadShed?: LoadShedOptions;
  /** PUBLIC_URL: the server URL in /openapi.json; without it a relative `/`. */
  publicUrl?: string;
  logger?: Logger;
  /** How log lines name callers (keyed hashes with erasable salts); in-memory hashes when absent. */
  subjects?: LogSubjects;
}

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

// API.md: bodies over 1 MiB answer 413.
const maxBodyBytes = 1024 * 1024;
// A socket idle this long while a request is being handled (a client that stopped reading its answer) is
// closed. The arrival of a request is bounded separately and tighter (listener.ts, REQUEST_TIMEOUT_MS).
const socketIdleMs = 120_000;

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
    // Hapi gzips answers from 1 KiB by default; below a few KiB that saves a few hundred bytes for a
    // zlib stream each (zlib was 7 % of the daemon's main thread at 100,000/min in issue 18's profile).
    compression: { minBytes: 4096 },
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
      // Hapi's own body deadline: it matters when the body completes late (then a 408); one that never
      // completes is cut by the listener's requestTimeout, which carries the same value (listener.ts).
      payload: { maxBytes: maxBodyBytes, allow: ['application/json'], timeout: opts.listener?.requestTimeoutMs ?? listenerDefaults.requestTimeoutMs },
      timeout: { socket: socketIdleMs },
      // X-Content-Type-Options: nosniff, X-Frame-Options: DENY and Referrer-Policy on every answer.
      // No HSTS here: TLS ends at the ingress, which owns it (docs/security.md).
      security: { hsts: false, xframe: 'deny', xss: 'disabled', noOpen: false, noSniff: true, referrer: 'no-referrer' },
    },
  });
  limitListener(server, opts.listener);

  const logger = opts.logger ?? defaultLogger;
  await registerInTurns(server, [
    { plugin: requestLogPlugin, options: { logger, ...(opts.subjects && { subjects: opts.subjects }) } },
    { plugin: errorsPlugin },
    { plugin: headersPlugin },
    // Before the rate limits: a request refused for load is not counted against its caller.
    { plugin: loadShedPlugin, options: opts.loadShed ?? { thresholdMs: 0 } },
    { plugin: authPlugin, options: opts.auth },
    { plugin: rateLimitPlugin, options: opts.rateLimit },
    { plugin: inputPlugin },
    { plugin: healthPlugin, options: { checks: opts.checks } },
    { plugin: metricsPlugin },
    { plugin: docsPlugin, options: { version, ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}) } },
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
