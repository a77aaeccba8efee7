import Boom from '@hapi/boom';
import type { Plugin } from '@hapi/hapi';
import Joi, { type ValidationErrorItem } from 'joi';
import { isAppError, knownErrorCodes, type ErrorCode, type ErrorDetail } from '../errors.ts';
import { logger } from '../observability/logger.ts';
import { redactName, redactText } from '../observability/redact.ts';

/** The body of every failure (API.md, Conventions). */
export interface ErrorEnvelope {
  error: { code: ErrorCode; message: string; retryAfter?: number; details?: ErrorDetail[] };
}

// Built when the first route asks for it: by then the platforms have registered their codes.
const errorSchema = () => Joi.object({
  error: Joi.object({
    code: Joi.string().valid(...knownErrorCodes()).required().example('VALIDATION_ERROR').label('ErrorCode'),
    message: Joi.string().required().example('request validation failed'),
    retryAfter: Joi.number().integer().min(0).description('seconds; also sent as Retry-After').example(17),
    details: Joi.array().items(Joi.object({ path: Joi.string(), message: Joi.string(), type: Joi.string() }).label('ErrorDetail')),
  }).label('ErrorBody'),
}).label('Error');

/**
 * For a route's `response.status`, so OpenAPI documents its failures with the envelope:
 * `response: { status: { 201: Connection, ...errorResponses(400, 404, 409) } }`. Errors are
 * answered by onPreResponse and never validated against these.
 */
export const errorResponses = (...statuses: number[]): Record<number, Joi.ObjectSchema> => {
  const schema = errorSchema();
  return Object.fromEntries(statuses.map((s) => [s, schema]));
};

interface Mapped { status: number; body: ErrorEnvelope; headers: Record<string, string>; internal: boolean }

// Hapi's own refusals by status. 405 never comes from Hapi (it answers 404 for a wrong method) but
// a handler could raise it; API.md has no method code, so it reads as "no such resource".
const byStatus: Record<number, [ErrorCode, string]> = {
  400: ['VALIDATION_ERROR', 'invalid request'],
  403: ['FORBIDDEN', 'insufficient scope'],
  404: ['NOT_FOUND', 'not found'],
  405: ['NOT_FOUND', 'not found'],
  408: ['REQUEST_TIMEOUT', 'the request did not arrive in time; send it again'],
  409: ['INVALID_STATE', 'conflict'],
  413: ['PAYLOAD_TOO_LARGE', 'request body is larger than 1 MiB'],
  415: ['UNSUPPORTED_MEDIA_TYPE', 'unsupported content type: send application/json'],
  429: ['RATE_LIMITED', 'too many requests'],
  503: ['DEPENDENCY_UNAVAILABLE', 'a dependency is unavailable, retry later'],
};

const envelope = (code: ErrorCode, message: string, extra: { retryAfter?: number; details?: ErrorDetail[] } = {}): ErrorEnvelope => ({
  error: {
    code,
    message: redactText(message),
    ...(extra.retryAfter !== undefined ? { retryAfter: extra.retryAfter } : {}),
    ...(extra.details?.length ? { details: extra.details } : {}),
  },
});

// Joi repeats the offending value in pattern messages ('"token" with value "123:abc" fails to match…'):
// that value may be a secret or a phone number, so those messages are rewritten without it. Key names
// are the caller's too: a body key of 1 MiB came back whole in `path` and `message`, so each name is
// redacted and cut at 64 characters, and an answer lists at most 20 problems.
const maxKeyName = 64;
const maxDetails = 20;
const keyName = (key: unknown): string => redactName(String(key), maxKeyName);

const detailOf = (item: ValidationErrorItem, source?: string): ErrorDetail => {
  const label = String(item.context?.label ?? item.path.join('.'));
  const message = item.type.startsWith('string.pattern') ? `"${keyName(label)}" has an invalid format`
    // Joi quotes the label in every message; a long one is swapped for its short form before redaction.
    : redactText(label.length > maxKeyName ? item.message.split(label).join(keyName(label)) : item.message);
  return {
    path: [source === 'payload' ? undefined : source, ...item.path.map(keyName)].filter((p) => p !== undefined && p !== '').join('.'),
    message,
    type: item.type,
  };
};

const unauthorized = (err: Boom.Boom, presented: boolean): Mapped => {
  // @hapi/jwt says why (bad signature, wrong issuer…); clients learn only "expired" or "invalid".
  // A token no key can verify (alg none, unknown alg) also ends in Hapi's 'Missing authentication',
  // so "missing" is decided by whether an Authorization header came at all.
  const missing = !presented;
  const message = missing ? 'authentication required' : /expired/i.test(err.message) ? 'token expired' : 'invalid token';
  return {
    status: 401,
    body: envelope('UNAUTHORIZED', message),
    headers: { 'www-authenticate': missing ? 'Bearer' : 'Bearer error="invalid_token"' },
    internal: false,
  };
};

/** Maps anything a request can fail with to status, envelope and headers. */
function mapError(err: unknown, request?: { headers: Record<string, unknown> }): Mapped {
  // @hapi/jwt wraps a key provider's failure as Boom 500 with the causes in `data`; a JWKS outage
  // is then our DEPENDENCY_UNAVAILABLE instead of an opaque 500.
  const inner = Boom.isBoom(err) && Array.isArray(err.data) ? err.data.find(isAppError) : undefined;
  const source = inner ?? err;
  if (isAppError(source)) {
    const headers: Record<string, string> = source.retryAfter !== undefined ? { 'retry-after': String(Math.ceil(source.retryAfter)) } : {};
    const internal = source.status >= 500;
    const message = source.code === 'INTERNAL' ? 'internal error' : source.message;
    return { status: source.status, body: envelope(source.code, message, source), headers, internal };
  }
  if (!Boom.isBoom(err) || err.output.statusCode >= 500 && err.output.statusCode !== 503) {
    return { status: 500, body: envelope('INTERNAL', 'internal error'), headers: {}, internal: true };
  }
  const status = err.output.statusCode;
  if (status === 401) return unauthorized(err, /^bearer\s/i.test(String(request?.headers.authorization ?? '')));
  const joi = (err as unknown as { details?: ValidationErrorItem[] }).details;
  if (status === 400 && Array.isArray(joi)) {
    const src = (err.output.payload as { validation?: { source?: string } }).validation?.source;
    return { status, body: envelope('VALIDATION_ERROR', 'request validation failed', { details: joi.slice(0, maxDetails).map((d) => detailOf(d, src)) }), headers: {}, internal: false };
  }
  if (status === 400 && /JSON/.test(err.message)) {
    return { status, body: envelope('VALIDATION_ERROR', 'request body is not valid JSON'), headers: {}, internal: false };
  }
  const [code, fallback] = byStatus[status] ?? ['VALIDATION_ERROR', 'invalid request'];
  // Hapi's own 4xx messages are fixed sentences; a handler's Boom message was written for the client.
  const message = byStatus[status] && status !== 400 && status !== 409 && status !== 429 ? fallback : err.message || fallback;
  const given = Object.entries(err.output.headers).find(([k]) => k.toLowerCase() === 'retry-after')?.[1];
  const retryAfter = given !== undefined ? Number(given) : undefined;
  return { status, body: envelope(code, message, retryAfter !== undefined && Number.isFinite(retryAfter) ? { retryAfter } : {}), headers: {}, internal: false };
}

/** Turns every failure into the API.md envelope; the real cause of a 5xx goes to the log, redacted. */
export const errorsPlugin: Plugin<void> = {
  name: 'integration-errors',
  dependencies: 'integration-request-log',
  register(server) {
    server.ext('onPreResponse', (request, h) => {
      const res = request.response;
      if (!Boom.isBoom(res)) return h.continue;
      const mapped = mapError(res, request);
      // request.app.log is set on onRequest; the base logger covers anything failing before it.
      if (mapped.internal) (request.app.log ?? logger).error('request failed', { err: res, route: request.route.path });
      const out = h.response(mapped.body).code(mapped.status);
      // Headers other extensions put on the error (request id, rate limits, Allow) survive; ours win.
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.output.headers)) if (v !== undefined) headers[k.toLowerCase()] = String(v);
      for (const [k, v] of Object.entries({ ...headers, ...mapped.headers })) out.header(k, v);
      return out;
    });
  },
};
