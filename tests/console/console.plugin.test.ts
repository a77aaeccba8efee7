import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Boom from '@hapi/boom';
import Hapi from '@hapi/hapi';
import Inert from '@hapi/inert';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { consolePlugin } from '../../src/api/console.plugin.ts';
import { buildConsole } from '../../src/console/build.ts';

const dir = await mkdtemp(join(tmpdir(), 'console-plugin-'));
const root = await buildConsole({ outdir: join(dir, 'dist') });

// A server shaped like the real one where it matters: a default auth strategy that refuses
// everything (the console must stay reachable without a token) and Inert already registered.
const server = Hapi.server();
server.auth.scheme('refuse', () => ({ authenticate: () => { throw Boom.unauthorized('no'); } }));
server.auth.strategy('refuse', 'refuse');
server.auth.default('refuse');
await server.register(Inert);
await server.register({ plugin: consolePlugin, options: { root } });

const expectSecurityHeaders = (headers: Record<string, unknown>) => {
  const csp = String(headers['content-security-policy']);
  for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
    "connect-src 'self';", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) {
    assert.ok(csp.includes(directive), `CSP lacks ${directive}: ${csp}`);
  }
  // A bare scheme source (ws:, wss:, https:) or a wildcard would let the page talk to any host.
  assert.not.match(csp, /unsafe-inline|unsafe-eval|\*|\s(ws|wss|http|https):/);
  assert.is(headers['x-content-type-options'], 'nosniff');
  assert.is(headers['referrer-policy'], 'no-referrer');
};

test('GET / serves the console page with the security headers, without a token', async () => {
  const res = await server.inject('/');
  assert.is(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/html/);
  assert.match(res.payload, /<div id="app"><\/div>/);
  expectSecurityHeaders(res.headers);
  assert.is(res.headers['set-cookie'], undefined);
});

test('the page has no inline script or style, and every asset it names is served with its type', async () => {
  const page = (await server.inject('/')).payload;
  assert.not.match(page, /<script(?![^>]*\bsrc=)[^>]*>/, 'inline <script>');
  assert.not.match(page, /<style|\sstyle=|\son\w+=/i, 'inline style or handler');
  const assets = [...page.matchAll(/(?:src|href)="(console\/[^"]+)"/g)].map((m) => m[1]!);
  assert.equal(assets.sort(), ['console/app.js', 'console/styles.css']);
  const types: Record<string, RegExp> = { 'console/app.js': /javascript/, 'console/styles.css': /^text\/css/ };
  for (const asset of assets) {
    const res = await server.inject(`/${asset}`);
    assert.is(res.statusCode, 200, asset);
    assert.match(String(res.headers['content-type']), types[asset]!);
    assert.is(res.payload, await readFile(join(root, asset.replace('console/', '')), 'utf8'));
    expectSecurityHeaders(res.headers);
  }
});

test('an unknown asset is a 404 that still carries the headers; no listing, no escape from the root', async () => {
  const missing = await server.inject('/console/nope.js');
  assert.is(missing.statusCode, 404);
  expectSecurityHeaders(missing.headers);
  const folder = await server.inject('/console/');
  assert.ok([403, 404].includes(folder.statusCode), `folder answered ${folder.statusCode}`);
  assert.not.match(folder.payload, /app\.js|styles\.css/);
  for (const escape of ['/console/..%2F..%2Fpackage.json', '/console/../../package.json', '/console/%2e%2e/%2e%2e/package.json']) {
    const res = await server.inject(escape);
    assert.ok([403, 404].includes(res.statusCode), `${escape} answered ${res.statusCode}`);
    assert.not.match(res.payload, /integration-service/);
  }
});

test('an unbuilt console answers 503 with the command that builds it', async () => {
  const bare = Hapi.server();
  await bare.register({ plugin: consolePlugin, options: { root: join(dir, 'missing') } });
  const res = await bare.inject('/');
  assert.is(res.statusCode, 503);
  assert.match(res.payload, /npm run build:console/);
  expectSecurityHeaders(res.headers);
});

test.after(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

test.run();
