import Joi from 'joi';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { authStrategy, errorResponses } from '../../src/api/server.ts';
import { bearer, shellServer } from './shell-server.ts';

const srv = await shellServer({ corsOrigins: ['https://console.example'] });
// What a resource plugin does: register routes on the shell, tagged 'api' to be documented.
await srv.server.register({
  name: 'resource-under-test',
  register(server) {
    server.route({
      method: 'POST', path: '/v1/widgets',
      options: {
        tags: ['api'], description: 'Create a widget', auth: authStrategy,
        validate: { payload: Joi.object({ name: Joi.string().required() }).label('WidgetInput') },
        response: { status: { 201: Joi.object({ id: Joi.string() }).label('Widget'), ...errorResponses(400, 401, 429) } },
      },
      handler: (_r, h) => h.response({ id: 'w1' }).code(201),
    });
  },
});
await srv.server.initialize();
const { server } = srv;

test('CORS preflight from an allowed origin gets the allow headers', async () => {
  const res = await server.inject({
    method: 'OPTIONS', url: '/v1/widgets',
    headers: { origin: 'https://console.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' },
  });
  assert.is(res.statusCode, 200);
  assert.is(res.headers['access-control-allow-origin'], 'https://console.example');
  assert.match(String(res.headers['access-control-allow-headers']), /idempotency-key/i);
});

test('CORS preflight from another origin gets no allow header', async () => {
  const res = await server.inject({
    method: 'OPTIONS', url: '/v1/widgets',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  assert.is(res.headers['access-control-allow-origin'], undefined);
});

test('a real request from the allowed origin exposes request id and rate-limit headers', async () => {
  const res = await server.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://console.example' } });
  assert.is(res.headers['access-control-allow-origin'], 'https://console.example');
  assert.match(String(res.headers['access-control-expose-headers']), /x-request-id.*ratelimit-remaining/i);
});

test('/openapi.json is OpenAPI 3 and lists the service and resource routes', async () => {
  const res = await server.inject('/openapi.json');
  assert.is(res.statusCode, 200);
  const doc = JSON.parse(res.payload);
  assert.match(doc.openapi, /^3\.0/);
  for (const path of ['/v1/widgets', '/health/live', '/health/ready', '/metrics']) assert.ok(doc.paths[path], `${path} documented`);
  assert.ok(doc.components.securitySchemes.jwt, 'bearer scheme declared');
  assert.equal(doc.security, [{ jwt: [] }]);
  assert.equal(doc.paths['/health/ready'].get.security, [], 'probes need no token');
  assert.is(doc.paths['/v1/widgets'].post.security, undefined, 'resource routes inherit the bearer requirement');
  assert.ok(JSON.stringify(doc.components.schemas).includes('WidgetInput'));
  const responses = doc.paths['/v1/widgets'].post.responses;
  assert.equal(Object.keys(responses).sort(), ['201', '400', '401', '429']);
  assert.ok(JSON.stringify(responses['429']).includes('Error'), 'failures documented with the envelope');
  assert.ok(doc.components.schemas.ErrorCode.enum.includes('RATE_LIMITED'));
});

test('/docs serves the browsable page without auth', async () => {
  const res = await server.inject('/docs');
  assert.is(res.statusCode, 200);
  assert.match(res.payload, /swagger/i);
});

test('/metrics serves Prometheus text without auth', async () => {
  const res = await server.inject('/metrics');
  assert.is(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  assert.match(res.payload, /# TYPE http_request_duration_seconds histogram/);
});

test('resource routes are authenticated by default; their errors keep the envelope', async () => {
  const res = await server.inject({ method: 'POST', url: '/v1/widgets', payload: { name: 'x' } });
  assert.is(res.statusCode, 401);
  const bad = await server.inject({ method: 'POST', url: '/v1/widgets', payload: { name: 1 }, headers: bearer(srv.token()) });
  assert.is(bad.statusCode, 400);
  assert.is(JSON.parse(bad.payload).error.code, 'VALIDATION_ERROR');
  const ok = await server.inject({ method: 'POST', url: '/v1/widgets', payload: { name: 'x' }, headers: bearer(srv.token()) });
  assert.is(ok.statusCode, 201);
});

test.after(() => server.stop());
test.run();
