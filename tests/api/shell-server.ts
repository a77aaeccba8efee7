// Builds the API shell for tests: a fresh server with a capturing logger and token helpers.
import { Writable } from 'node:stream';
import Jwt from '@hapi/jwt';
import winston from 'winston';
import { createServer, type ServerOptions } from '../../src/api/server.ts';
import { logFormat } from '../../src/observability/logger.ts';

export const secret = 'test-secret-0123456789-abcdefghijklmnop';

/** A logger with the production format whose lines land in `lines` (parsed JSON in `entries()`). */
export function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const logger = winston.createLogger({ level: 'debug', format: logFormat, transports: [new winston.transports.Stream({ stream })] });
  return { logger, lines, entries: () => lines.map((l) => JSON.parse(l) as Record<string, any>) };
}

/** Signs any payload (no defaults added except `iat`; pass `exp` yourself). */
export const sign = (payload: Record<string, unknown>, key: string = secret, algorithm: 'HS256' | 'RS256' | 'ES256' = 'HS256', header?: object) =>
  Jwt.token.generate(payload, { key, algorithm }, header ? { header } : {});

export const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function shellServer(over: Partial<ServerOptions> = {}) {
  const capture = captureLogger();
  const server = await createServer({
    port: 0, host: '127.0.0.1', auth: { secret }, corsOrigins: [], checks: {},
    rateLimit: { connect: 10, send: 100, status: 1000 }, logger: capture.logger, ...over,
  });
  const token = (sub = 'alice', claims: Record<string, unknown> = {}) => sign({ sub, exp: inSeconds(300), ...claims });
  return { server, token, ...capture };
}
