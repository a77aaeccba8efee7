// /docs and /openapi.json: the page runs under a strict CSP and loads our description only (checked
// in Debian's Chromium: it renders, violates nothing, and ignores ?url=); the description's server
// URL is PUBLIC_URL or `/`, never the request's Host or X-Forwarded-Host.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { shellServer } from './shell-server.ts';

const chromiumPath = '/usr/bin/chromium';

const headers = suite('docs: headers and the description');
let srv: Awaited<ReturnType<typeof shellServer>>;
headers.before(async () => {
  srv = await shellServer();
  await srv.server.initialize();
});
headers.after(() => srv.server.stop());

headers('/docs: a CSP allowing our own scripts only, no framing, nosniff; the page has no inline script', async () => {
  const res = await srv.server.inject('/docs');
  assert.is(res.statusCode, 200);
  const csp = String(res.headers['content-security-policy']);
  for (const d of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) {
    assert.ok(csp.split('; ').includes(d), `CSP lacks ${d}: ${csp}`);
  }
  assert.not.match(csp, /unsafe-eval|\*|script-src[^;]*unsafe-inline/);
  assert.is(res.headers['x-content-type-options'], 'nosniff');
  assert.is(res.headers['x-frame-options'], 'DENY');
  const scripts = [...res.payload.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.ok(scripts.length > 0);
  for (const [, attrs, body] of scripts) {
    assert.match(attrs!, /src="\//);
    assert.is(body!.trim(), '');
  }
});

headers('/docs?url=… is the same page; its script names /openapi.json and reads nothing from the address', async () => {
  const plain = await srv.server.inject('/docs');
  const withUrl = await srv.server.inject('/docs?url=https://evil.example/spec.json');
  assert.is(withUrl.payload, plain.payload);
  const init = await srv.server.inject('/docs/init.js');
  assert.is(init.statusCode, 200);
  assert.match(String(init.headers['content-type']), /^text\/javascript/);
  assert.match(init.payload, /url: "\/openapi\.json"/);
  assert.not.match(init.payload, /location|search|hash/);
  assert.match(init.payload, /queryConfigEnabled: false/);
});

headers('/openapi.json: the server URL is `/`, whatever Host or X-Forwarded-Host say', async () => {
  const res = await srv.server.inject({
    url: '/openapi.json', headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
  });
  assert.is(res.statusCode, 200);
  assert.equal(JSON.parse(res.payload).servers, [{ url: '/' }]);
  assert.not.ok(res.payload.includes('evil.example'));
  assert.is(res.headers['x-content-type-options'], 'nosniff');
});

headers('/openapi.json with PUBLIC_URL: that URL', async () => {
  const pub = await shellServer({ publicUrl: 'https://integrations.example.com' });
  await pub.server.initialize();
  const res = await pub.server.inject({ url: '/openapi.json', headers: { 'x-forwarded-host': 'evil.example' } });
  await pub.server.stop();
  assert.equal(JSON.parse(res.payload).servers, [{ url: 'https://integrations.example.com' }]);
});
headers.run();

const browser = suite('docs: in Chromium');
browser('/docs renders the API under its CSP without violations, and ?url= loads nothing else', async () => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
  const s = await shellServer();
  await s.server.start();
  const base = `http://127.0.0.1:${(s.server.listener.address() as AddressInfo).port}`;
  // A spec elsewhere that the page must never fetch.
  let foreignHits = 0;
  const foreign: Server = createServer((_req, res) => {
    foreignHits++;
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' }).end('{"openapi":"3.0.0","info":{"title":"FORGED","version":"1"},"paths":{}}');
  });
  await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
  const forged = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/spec.json`;
  const profile = await mkdtemp(join(tmpdir(), 'docs-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    const violations: string[] = [];
    const errors: string[] = [];
    page.on('console', (m) => /Content.Security.Policy/i.test(m.text()) && violations.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/docs?url=${encodeURIComponent(forged)}`);
    await page.locator('.opblock-summary-path', { hasText: '/health/live' }).first().waitFor();
    await page.locator('.info .title', { hasText: 'Integration Service' }).waitFor();
    assert.not.ok(await page.getByText('FORGED').count(), 'the forged spec was shown');
    assert.is(foreignHits, 0, 'the page fetched the ?url= spec');
    assert.equal(violations, []);
    assert.equal(errors, []);
  } finally {
    await context.close();
    await new Promise((r) => foreign.close(r));
    await s.server.stop();
    await rm(profile, { recursive: true, force: true });
  }
});
browser.run();

const altDefs = suite('x-alt-definitions');
altDefs('a union\'s branches move to components.schemas; a taken name with another schema gets Alt', async () => {
  const { moveAltDefinitions } = await import('../../src/api/docs.plugin.ts');
  const doc = {
    components: { schemas: { kind: { type: 'string', enum: ['user'] } } },
    paths: { '/x': { post: { requestBody: { content: { 'application/json': { schema: { anyOf: [{ $ref: '#/x-alt-definitions/A' }, { $ref: '#/x-alt-definitions/kind' }] } } } } } } },
    'x-alt-definitions': { A: { type: 'object' }, kind: { type: 'string', enum: ['bot'] } },
  };
  moveAltDefinitions(doc);
  assert.not.ok('x-alt-definitions' in doc);
  assert.equal(doc.components.schemas, { kind: { type: 'string', enum: ['user'] }, A: { type: 'object' }, kindAlt: { type: 'string', enum: ['bot'] } });
  assert.equal(doc.paths['/x'].post.requestBody.content['application/json'].schema.anyOf, [{ $ref: '#/components/schemas/A' }, { $ref: '#/components/schemas/kindAlt' }]);
});
altDefs.run();
