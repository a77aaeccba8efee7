// The classification of Graph API failures (Graph "Handling Errors", WhatsApp Cloud API "Error codes")
// into the adapter's categories, with the platform's code kept in the message and no token anywhere.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GraphApiError, GraphClient, type GraphFailure } from '../../../src/platforms/meta/graph.ts';
import { whatsappError } from '../../../src/platforms/whatsapp/codes.ts';

const test = suite('meta graph errors');
const fail = (f: Partial<GraphFailure>) => new GraphApiError({ status: 400, code: 100, message: 'x', ...f });
const verdict = (f: Partial<GraphFailure>, phase: 'connect' | 'send' | 'read' = 'send') => {
  const e = whatsappError(fail(f), phase);
  return [e.code, e.category, e.retryAfter, e.scope];
};

test('WhatsApp codes → categories', () => {
  assert.equal(verdict({ status: 429, code: 130429 }), ['PLATFORM_RATE_LIMITED', 'rate-limited-until', 1, 'connection']);
  assert.equal(verdict({ code: 131056 }), ['PLATFORM_RATE_LIMITED', 'rate-limited-until', 6, 'request']);
  assert.equal(verdict({ code: 131048 }), ['PLATFORM_RATE_LIMITED', 'rate-limited-until', 60, 'connection']);
  assert.equal(verdict({ code: 131047 }), ['OUTSIDE_SERVICE_WINDOW', 'rejected', undefined, 'request']);
  assert.equal(verdict({ code: 131000, status: 500 }), ['PLATFORM_UNAVAILABLE', 'retry', undefined, 'request']);
  assert.equal(verdict({ code: 131031 }), ['PLATFORM_REJECTED', 'fatal', undefined, 'request']);
  assert.equal(verdict({ code: 132001, status: 404 }), ['PLATFORM_REJECTED', 'rejected', undefined, 'request']);
  assert.equal(verdict({ code: 131026 }), ['PLATFORM_REJECTED', 'rejected', undefined, 'request']);
});

test('Graph-wide codes → categories', () => {
  assert.equal(verdict({ status: 401, code: 190 }), ['PLATFORM_AUTH_REVOKED', 'reauthorize', undefined, 'request']);
  assert.equal(verdict({ status: 401, code: 190 }, 'connect'), ['PLATFORM_AUTH_REVOKED', 'reauthorize', undefined, 'request']);
  assert.equal(verdict({ code: 200 }, 'connect'), ['PLATFORM_AUTH_INVALID', 'fatal', undefined, 'request']);
  for (const code of [4, 17, 32, 613, 80007]) assert.equal(verdict({ code }), ['PLATFORM_RATE_LIMITED', 'rate-limited-until', 60, 'connection'], String(code));
  assert.equal(verdict({ status: 500, code: 2 }), ['PLATFORM_UNAVAILABLE', 'retry', undefined, 'request']);
  assert.equal(verdict({ status: 400, code: 999, transient: true }), ['PLATFORM_UNAVAILABLE', 'retry', undefined, 'request']);
  assert.equal(verdict({ status: 502, code: 0 }), ['PLATFORM_UNAVAILABLE', 'retry', undefined, 'request']);
  assert.equal(verdict({ status: 400, code: 100 }), ['PLATFORM_REJECTED', 'rejected', undefined, 'request']);
});

test('no answer: refused → retry on the connection; lost during a send → outcome unknown, elsewhere retry', () => {
  assert.equal(verdict({ status: 0, code: 0, network: 'refused' }), ['PLATFORM_UNAVAILABLE', 'retry', undefined, 'connection']);
  assert.equal(verdict({ status: 0, code: 0, network: 'lost' }, 'send'), ['OUTCOME_UNKNOWN', 'outcome-unknown', undefined, 'request']);
  assert.equal(verdict({ status: 0, code: 0, network: 'lost' }, 'read'), ['PLATFORM_UNAVAILABLE', 'retry', undefined, 'connection']);
});

test('the platform code is kept in the message; statuses follow the shared codes', () => {
  const e = whatsappError(fail({ code: 131047, message: '(#131047) Re-engagement message' }), 'send');
  assert.match(e.message, /Graph code 131047/);
  assert.is(e.status, 422);
  assert.is(whatsappError(fail({ status: 429, code: 130429 }), 'send').status, 429);
  assert.is(whatsappError(fail({ status: 401, code: 190 }), 'send').status, 401);
});

test('the client: the token goes in the Authorization header, never in the URL or an error', async () => {
  const token = 'EAAGsecret-token-value-123';
  const seen: Array<{ url: string; auth: string | undefined }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization });
    res.writeHead(req.url?.includes('bad') ? 400 : 200, { 'content-type': 'application/json' });
    res.end(req.url?.includes('bad') ? JSON.stringify({ error: { message: 'Invalid', type: 'OAuthException', code: 100, error_subcode: 33 } }) : '{"id":"1"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const graph = new GraphClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, version: 'v23.0' });
  try {
    assert.equal(await graph.call('GET', '/1', token, undefined, { fields: 'id' }), { id: '1' });
    const err = await graph.call('GET', '/bad', token).catch((e: unknown) => e);
    assert.instance(err, GraphApiError);
    assert.equal([(err as GraphApiError).failure.code, (err as GraphApiError).failure.subcode], [100, 33]);
    assert.not.ok(JSON.stringify({ m: (err as Error).message, f: (err as GraphApiError).failure }).includes(token));
    assert.equal(seen.map((s) => [s.url.split('?')[0], s.auth]), [['/v23.0/1', `Bearer ${token}`], ['/v23.0/bad', `Bearer ${token}`]]);
    assert.ok(seen.every((s) => !s.url.includes(token)));
  } finally {
    await new Promise((r) => server.close(r));
  }
  // A port nothing listens on (opened, then closed): the request never left.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const refused = await new GraphClient({ baseUrl: `http://127.0.0.1:${port}` }).call('GET', '/1', token).catch((e: unknown) => e);
  assert.is((refused as GraphApiError).failure.network, 'refused');
});

test.run();
