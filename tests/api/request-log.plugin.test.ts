import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registry } from '../../src/observability/metrics.ts';
import { LogSubjects, subjectHash } from '../../src/observability/subjects.ts';
import { bearer, shellServer } from './shell-server.ts';

// Salts and key as the daemon keeps them (in Postgres, the key from the keyring), here in a map.
const key = randomBytes(32);
const salts = new Map<string, Buffer>();
const subjects = new LogSubjects(key, {
  saltOf: async (sub) => salts.get(sub) ?? salts.set(sub, randomBytes(16)).get(sub)!,
  deleteSalt: async (sub) => salts.delete(sub),
});
const srv = await shellServer({ subjects });
srv.server.route({
  method: 'GET', path: '/v1/connections/{id}',
  handler: (request) => {
    request.app.log.info('handler ran', { phone: '+447700900123' });
    return { id: request.params.id };
  },
});
await srv.server.initialize();

test('a sane X-Request-Id is echoed and lands in every log line of the request', async () => {
  const res = await srv.server.inject({ url: '/v1/connections/c-1', headers: { ...bearer(srv.token('bob')), 'x-request-id': 'trace-42.a:b' } });
  assert.is(res.statusCode, 200);
  assert.is(res.headers['x-request-id'], 'trace-42.a:b');
  const mine = srv.entries().filter((e) => e.http?.request?.id === 'trace-42.a:b');
  assert.equal(mine.map((e) => e.message), ['handler ran', 'GET /v1/connections/{id} 200']);
  assert.is(mine[0]!.phone, '+44******0123');
  // Both lines name the caller by HMAC(key, salt ‖ sub), the handler's too; never by the sub.
  const hash = subjectHash(key, salts.get('bob')!, 'bob');
  assert.match(hash, /^[0-9a-f]{32}$/);
  assert.equal(mine.map((e) => e.user), [{ hash }, { hash }]);
  const line = mine[1]!;
  assert.is(line.route, '/v1/connections/{id}');
  assert.is(line.http.request.method, 'GET');
  assert.is(line.http.response.status_code, 200);
  assert.type(line.durationMs, 'number');
  assert.is(line['log.level'], 'info');
  assert.ok(line['@timestamp'] && line['ecs.version'], 'ECS fields');
});

test('a caller is named by a keyed hash that changes with the salt, never by sub; lines before authentication name nobody', async () => {
  const sub = `sub-${randomBytes(6).toString('hex')}`;
  const first = await srv.server.inject({ url: '/v1/connections/c-4', headers: bearer(srv.token(sub)) });
  const before = subjectHash(key, salts.get(sub)!, sub);
  await subjects.erase(sub);
  assert.not.ok(salts.has(sub), 'the salt is gone');
  const second = await srv.server.inject({ url: '/v1/connections/c-4', headers: bearer(srv.token(sub)) });
  const hashes = [first, second].map((res) => srv.entries().find((e) => e.http?.request?.id === res.headers['x-request-id'] && e.route)!.user.hash);
  assert.is(hashes[0], before);
  assert.is(hashes[1], subjectHash(key, salts.get(sub)!, sub), 'a new salt after the erasure');
  assert.is.not(hashes[1], before, 'the lines after an erasure cannot be tied to those before');
  assert.not.ok(srv.lines.some((l) => l.includes(sub)), 'the sub is in no line');
  const anonymous = await srv.server.inject({ url: '/v1/connections/c-5' });
  assert.is(srv.entries().find((e) => e.http?.request?.id === anonymous.headers['x-request-id'])!.user, undefined);
});

test('an insane X-Request-Id is replaced by a generated one', async () => {
  const res = await srv.server.inject({ url: '/v1/connections/c-2', headers: { ...bearer(srv.token()), 'x-request-id': 'a b\u0001<script>' } });
  assert.match(res.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
  const tooLong = await srv.server.inject({ url: '/v1/connections/c-2', headers: { ...bearer(srv.token()), 'x-request-id': 'x'.repeat(129) } });
  assert.is((tooLong.headers['x-request-id'] as string).length, 36);
});

test('a generated id is also on error answers', async () => {
  const res = await srv.server.inject({ url: '/v1/connections/c-3' });
  assert.is(res.statusCode, 401);
  assert.match(res.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
  assert.ok(srv.entries().some((e) => e.http?.request?.id === res.headers['x-request-id'] && e.http.response.status_code === 401));
});

test('http_request_duration_seconds uses the route template, never the raw path', async () => {
  await srv.server.inject({ url: '/v1/connections/raw-id-should-not-appear', headers: bearer(srv.token()) });
  const text = await registry.metrics();
  assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/v1\/connections\/\{id\}",status="200"\} \d+/);
  assert.not.ok(text.includes('raw-id-should-not-appear'));
});

test.after(() => srv.server.stop());
test.run();
