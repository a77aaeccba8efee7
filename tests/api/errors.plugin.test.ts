import Boom from '@hapi/boom';
import Joi from 'joi';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import '../../src/platforms/telegram/codes.ts'; // Telegram's codes, registered as the daemon does at start
import { bearer, shellServer } from './shell-server.ts';

const srv = await shellServer();
const { server } = srv;
const body = Joi.object({ phone: Joi.string().pattern(/^\+\d{8,15}$/).required(), note: Joi.string().max(5) });
server.route([
  { method: 'POST', path: '/v1/things', options: { validate: { payload: body } }, handler: (r, h) => h.response(r.payload as object).code(201) },
  { method: 'GET', path: '/v1/things', options: { validate: { query: Joi.object({ limit: Joi.number().integer().max(100) }) } }, handler: () => ({ items: [] }) },
  { method: 'GET', path: '/v1/app-error', handler: () => { throw new AppError('TG_API_429', 'Telegram asks to wait', { retryAfter: 17 }); } },
  { method: 'GET', path: '/v1/invalid-state', handler: () => { throw new AppError('INVALID_STATE', 'connection is not awaiting a code'); } },
  { method: 'GET', path: '/v1/crash', handler: () => { throw new Error('db said: password=hunter2 for postgres://svc:hunter2@db/x'); } },
  { method: 'GET', path: '/v1/boom-503', handler: () => { throw Boom.serverUnavailable('redis is down', { secret: 's' }); } },
  { method: 'POST', path: '/v1/empty', handler: (_r, h) => h.response().code(202) },
]);
await server.initialize();
const call = (method: string, url: string, extra: { payload?: unknown; headers?: Record<string, string> } = {}) =>
  server.inject({ method, url, headers: { ...bearer(srv.token()), ...extra.headers }, ...(extra.payload !== undefined && { payload: extra.payload as object }) });
const errorOf = (res: { result?: unknown }) => (res.result as { error: Record<string, unknown> }).error;

test('unknown route → 404 NOT_FOUND in the envelope', async () => {
  const res = await call('GET', '/v1/nothing-here');
  assert.is(res.statusCode, 404);
  assert.equal(res.result, { error: { code: 'NOT_FOUND', message: 'not found' } });
});

test('wrong method on a known path → 404 NOT_FOUND (Hapi has no 405)', async () => {
  const res = await call('DELETE', '/v1/things');
  assert.is(res.statusCode, 404);
  assert.is(errorOf(res).code, 'NOT_FOUND');
});

test('body over 1 MiB → 413 PAYLOAD_TOO_LARGE', async () => {
  const res = await call('POST', '/v1/things', { payload: { phone: '+447700900123', note: 'x'.repeat(1024 * 1024 + 10) } });
  assert.is(res.statusCode, 413);
  assert.is(errorOf(res).code, 'PAYLOAD_TOO_LARGE');
});

test('a body just under 1 MiB is read (and then validated)', async () => {
  const res = await call('POST', '/v1/things', { payload: { phone: '+447700900123', note: 'x'.repeat(1024 * 1024 - 100) } });
  assert.is(res.statusCode, 400);
  assert.equal((errorOf(res).details as any[]).map((d) => d.path), ['note']);
});

test('non-JSON content type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
  const res = await call('POST', '/v1/things', { payload: '<a/>', headers: { 'content-type': 'application/xml' } });
  assert.is(res.statusCode, 415);
  assert.is(errorOf(res).code, 'UNSUPPORTED_MEDIA_TYPE');
});

test('bad JSON → 400 VALIDATION_ERROR', async () => {
  const res = await call('POST', '/v1/things', { payload: '{"phone": ', headers: { 'content-type': 'application/json' } });
  assert.is(res.statusCode, 400);
  assert.equal(res.result, { error: { code: 'VALIDATION_ERROR', message: 'request body is not valid JSON' } });
});

test('unknown and invalid fields → 400 with one detail per field, values not echoed', async () => {
  const res = await call('POST', '/v1/things', { payload: { phone: '+44 secret-ish 123', extra: 1, note: 'too long' } });
  assert.is(res.statusCode, 400);
  const err = errorOf(res);
  assert.is(err.code, 'VALIDATION_ERROR');
  const details = err.details as Array<{ path: string; type: string; message: string }>;
  assert.equal(details.map((d) => [d.path, d.type]).sort(), [['extra', 'object.unknown'], ['note', 'string.max'], ['phone', 'string.pattern.base']]);
  assert.not.ok(JSON.stringify(res.result).includes('secret-ish'));
});

test('long key names come back redacted and cut at 64 characters, in path and message; at most 20 details', async () => {
  // Up to 128 characters reach validation (longer ones are refused before it, see input.plugin).
  for (const key of ['a.'.repeat(64), 'eyJ-'.repeat(32), `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln${'x'.repeat(80)}`]) {
    const res = await call('POST', '/v1/things', { payload: { phone: '+447700900123', [key]: 1 } });
    assert.is(res.statusCode, 400);
    const [detail] = errorOf(res).details as Array<{ path: string; message: string }>;
    assert.ok(detail!.path === `${key.slice(0, 64)}…` || detail!.path === '[REDACTED]', detail!.path);
    assert.is(detail!.message, `"${detail!.path}" is not allowed`);
    assert.not.ok(JSON.stringify(res.result).includes('c2ln'));
  }
  const many = await call('POST', '/v1/things', { payload: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i])) });
  assert.is((errorOf(many).details as unknown[]).length, 20);
});

test('query problems name the query field', async () => {
  const res = await call('GET', '/v1/things?limit=500&bogus=1');
  assert.is(res.statusCode, 400);
  assert.equal((errorOf(res).details as any[]).map((d) => d.path).sort(), ['query.bogus', 'query.limit']);
});

test('a valid body passes untouched; an empty POST without content type is fine', async () => {
  const ok = await call('POST', '/v1/things', { payload: { phone: '+447700900123' } });
  assert.is(ok.statusCode, 201);
  assert.equal(ok.result, { phone: '+447700900123' });
  const empty = await call('POST', '/v1/empty');
  assert.is(empty.statusCode, 202);
});

test('thrown AppError keeps its code and status; retryAfter sets Retry-After', async () => {
  const res = await call('GET', '/v1/app-error');
  assert.is(res.statusCode, 429);
  assert.equal(res.result, { error: { code: 'TG_API_429', message: 'Telegram asks to wait', retryAfter: 17 } });
  assert.is(res.headers['retry-after'], '17');
  const conflict = await call('GET', '/v1/invalid-state');
  assert.is(conflict.statusCode, 409);
  assert.is(errorOf(conflict).code, 'INVALID_STATE');
});

test('a plain Error → 500 INTERNAL, generic message; the real one is logged, redacted', async () => {
  const res = await call('GET', '/v1/crash');
  assert.is(res.statusCode, 500);
  assert.equal(res.result, { error: { code: 'INTERNAL', message: 'internal error' } });
  const logged = srv.entries().find((e) => e.message === 'request failed');
  assert.ok(logged, 'the failure is logged');
  assert.match(logged!.error.message, /db said/);
  assert.is(logged!.http.request.id, res.headers['x-request-id']);
  assert.not.ok(srv.lines.join('\n').includes('hunter2'));
});

test('Boom 503 → DEPENDENCY_UNAVAILABLE without the Boom data', async () => {
  const res = await call('GET', '/v1/boom-503');
  assert.is(res.statusCode, 503);
  assert.equal(res.result, { error: { code: 'DEPENDENCY_UNAVAILABLE', message: 'a dependency is unavailable, retry later' } });
});

test.after(() => server.stop());
test.run();
