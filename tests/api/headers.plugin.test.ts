import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { bearer, shellServer } from './shell-server.ts';

const srv = await shellServer({ rateLimit: { connect: 10, send: 100, status: 2 } });
srv.server.route([
  { method: 'GET', path: '/v1/things/{id}', handler: (r) => { if (r.params.id === 'x') throw new AppError('NOT_FOUND', 'not found'); return { id: r.params.id }; } },
  { method: 'GET', path: '/public/thing', options: { auth: false }, handler: () => ({ public: true }) },
]);
await srv.server.initialize();

const get = (url: string, headers: Record<string, string> = {}) => srv.server.inject({ url, headers });

test('every answer of an authenticated route is no-store (data, 401, 404, 429), with nosniff and a CSP that runs nothing', async () => {
  const alice = bearer(srv.token(`alice-${Date.now()}`));
  const answers = [await get('/v1/things/1', alice), await get('/v1/things/1'), await get('/v1/things/x', alice), await get('/v1/things/1', alice)];
  assert.equal(answers.map((r) => r.statusCode), [200, 401, 404, 429]);
  for (const res of answers) {
    assert.is(res.headers['cache-control'], 'no-store', `${res.statusCode}`);
    assert.is(res.headers['x-content-type-options'], 'nosniff', `${res.statusCode}`);
    assert.is(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
    assert.is(res.headers['x-frame-options'], 'DENY');
  }
});

test('public routes and unknown paths: nosniff too; their caching is left as it was (no-cache)', async () => {
  for (const url of ['/public/thing', '/health/live', '/no/such/path', '/openapi.json']) {
    const res = await get(url);
    assert.is(res.headers['x-content-type-options'], 'nosniff', url);
    assert.is(res.headers['cache-control'], 'no-cache', url);
  }
});

test.after(() => srv.server.stop());
test.run();
