import { randomUUID } from 'node:crypto';
import Boom from '@hapi/boom';
import type { Plugin, Request, ResponseObject } from '@hapi/hapi';
import type { Logger } from 'winston';
import { metrics } from '../observability/metrics.ts';
import { memorySubjects, type LogSubjects } from '../observability/subjects.ts';

declare module '@hapi/hapi' {
  interface RequestApplicationState {
    /** Accepted from `X-Request-Id` or generated; echoed in the answer and put in every log line. */
    requestId: string;
    /** Logger whose every line carries `http.request.id` (and `user.hash` once authenticated); use it inside handlers. */
    log: Logger;
    startedAt: bigint;
    /** The caller's log pseudonym (src/observability/subjects.ts), set after authentication. */
    subject?: string;
  }
  interface PluginProperties {
    'integration-request-log': { subjects: LogSubjects };
  }
  interface PluginSpecificConfiguration {
    /** `{ level: 'debug' }` keeps probes and scrapes (every 10-15 s) out of the info stream. */
    requestLog?: { level?: string };
  }
}

export interface RequestLogOptions {
  logger: Logger;
  /** Log pseudonyms of callers; without it, hashes kept in memory (they change at every start). */
  subjects?: LogSubjects;
}

// Letters, digits and `._:-`, at most 128: room for UUIDs and W3C trace ids, nothing a log parser or
// header splitter could trip on.
const saneRequestId = /^[\w.:-]{1,128}$/;

/** Sets a header on an answer whether it is still a Boom error or already a response. */
export function setHeader(response: Request['response'], name: string, value: string): void {
  if (!response) return;
  if (Boom.isBoom(response)) response.output.headers[name] = value;
  else (response as ResponseObject).header(name, value);
}

export const requestLogPlugin: Plugin<RequestLogOptions> = {
  name: 'integration-request-log',
  register(server, { logger, subjects = memorySubjects() }) {
    server.expose('subjects', subjects);

    server.ext('onRequest', (request, h) => {
      const given = request.headers['x-request-id'];
      const id = typeof given === 'string' && saneRequestId.test(given) ? given : randomUUID();
      request.app.requestId = id;
      request.app.startedAt = process.hrtime.bigint();
      request.app.log = logger.child({ http: { request: { id } } });
      return h.continue;
    });

    // Lines name the caller by pseudonym only (never the sub). When the salt cannot be read (the
    // database is down) the lines name nobody rather than failing the request over a log field.
    server.ext('onPostAuth', async (request, h) => {
      const sub = request.auth.credentials?.user?.sub;
      if (typeof sub !== 'string') return h.continue;
      const subject = await subjects.hashOf(sub).catch(() => undefined);
      if (subject) {
        request.app.subject = subject;
        request.app.log = request.app.log.child({ user: { hash: subject } });
      }
      return h.continue;
    });

    server.ext('onPreResponse', (request, h) => {
      setHeader(request.response, 'x-request-id', request.app.requestId);
      return h.continue;
    });

    // After the answer is written: one line and one histogram sample per request.
    server.events.on('response', (request) => {
      const durationNs = process.hrtime.bigint() - (request.app.startedAt ?? process.hrtime.bigint());
      const method = request.method.toUpperCase();
      // The route template ('/v1/connections/{id}'), never the raw path: bounded label values.
      const route = request.route.path;
      const status = request.raw.res.statusCode;
      metrics.httpDuration.observe({ method, route, status: String(status) }, Number(durationNs) / 1e9);
      const level = request.route.settings.plugins?.requestLog?.level ?? (status >= 500 ? 'warn' : 'info');
      logger.log(level, `${method} ${route} ${status}`, {
        http: { request: { id: request.app.requestId, method }, response: { status_code: status } },
        route,
        event: { duration: Number(durationNs) },
        durationMs: Math.round(Number(durationNs) / 1e4) / 100,
        user: request.app.subject ? { hash: request.app.subject } : undefined,
        client: { address: request.info.remoteAddress },
      });
    });
  },
};
