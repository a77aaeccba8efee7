import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registry } from '../../src/observability/metrics.ts';
import { bearer, shellServer } from './shell-server.ts';

const srv = await shellServer();
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
  const line = mine[1]!;
  assert.is(line.route, '/v1/connections/{id}');
  assert.is(line.http.request.method, 'GET');
  assert.is(line.http.response.status_code, 200);
  assert.is(line.user.id, 'bob');
  assert.type(line.durationMs, 'number');
  assert.is(line['log.level'], 'info');
  assert.ok(line['@timestamp'] && line['ecs.version'], 'ECS fields');
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
