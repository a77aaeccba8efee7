// The webhooks page in a real browser against the real daemon: add an endpoint (its secret shown once,
// never again by the API), send the test event — which a receiver here verifies with the
// `standardwebhooks` package using the secret the page showed — and see it in the delivery log; the
// page in Russian; rotating the secret, disabling, enabling and deleting from the page; no serious
// axe-core violations.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, type ConsoleWorld, describeViolations, openConsole, seriousViolations, startConsoleWorld, stopConsoleWorld } from '../helpers/console-browser.ts';

interface Hit { body: string; headers: Record<string, string> }
interface World extends ConsoleWorld { user: string; receiver: Server; port: number; hits: Hit[] }
const test = suite<World>('console webhooks page');

test.before(async (w) => {
  w.hits = [];
  w.receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      w.hits.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers as Record<string, string> });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => w.receiver.listen(0, '127.0.0.1', r));
  w.port = (w.receiver.address() as AddressInfo).port;
  Object.assign(w, await startConsoleWorld({ EGRESS_ALLOW_HOSTS: `127.0.0.1:${w.port}` }));
  w.user = w.token(`wh-${randomBytes(4).toString('hex')}`);
});
test.after(async (w) => {
  await stopConsoleWorld(w);
  w.receiver?.closeAllConnections();
  await new Promise((r) => w.receiver?.close(r));
});

test('add an endpoint: the secret is shown once; the test event arrives signed with it and shows in the log', async (w) => {
  await openConsole(w, w.user);
  await w.page.locator('a[data-view="webhooks"]').click();
  const page = w.page.locator('[data-page="webhooks"]');
  await page.locator('.empty').waitFor();
  const url = `http://127.0.0.1:${w.port}/in`;
  await page.locator('input[name="url"]').fill(url);
  await page.locator('button[type="submit"]').click();
  const secret = (await page.locator('[data-secret]').textContent())!;
  assert.match(secret, /^whsec_/);
  const row = page.locator('tr[data-webhook-id]');
  await row.waitFor();
  assert.match((await row.textContent())!, /127\.0\.0\.1/);
  const id = (await row.getAttribute('data-webhook-id'))!;
  const read = await api<Record<string, unknown>>(w, w.user, 'GET', `/v1/webhooks/${id}`);
  assert.is(read.json.secret, undefined, 'the API never shows the secret again');
  // Another caller sees nothing of it.
  const other = await api<{ items: unknown[] }>(w, w.token(`wh-other-${randomBytes(4).toString('hex')}`), 'GET', '/v1/webhooks');
  assert.equal(other.json.items, []);

  await row.locator('button[data-action="test"]').click();
  await page.locator('.notice').filter({ hasText: url }).waitFor();
  for (let i = 0; i < 200 && w.hits.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.is(w.hits.length, 1);
  const payload = new Webhook(secret).verify(w.hits[0]!.body, w.hits[0]!.headers) as { type: string };
  assert.is(payload.type, 'webhook.test');
  // The log: reopened until the delivery is recorded as succeeded.
  for (let i = 0; i < 100; i++) {
    await row.locator('button[data-action="deliveries"]').click();
    await page.locator('.webhook-deliveries tbody tr').first().waitFor();
    if (await page.locator('.webhook-deliveries tr[data-status="succeeded"]').count() === 1) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const delivered = page.locator('.webhook-deliveries tr[data-status="succeeded"]');
  assert.is(await delivered.count(), 1);
  assert.match((await delivered.textContent())!, /webhook\.test/);
  const found = await seriousViolations(w.page);
  assert.equal(found.length, 0, describeViolations(found));
});

test('the page in Russian; a refused URL shows its error, nothing added', async (w) => {
  await w.page.evaluate(`localStorage.setItem('integration-console.lang', 'ru')`);
  await openConsole(w, w.user);
  await w.page.locator('a[data-view="webhooks"]').click();
  const page = w.page.locator('[data-page="webhooks"]');
  await page.locator('h2', { hasText: 'Вебхуки' }).waitFor();
  await page.locator('input[name="url"]').fill('https://10.0.0.1/hook');
  await page.locator('button[type="submit"]').click();
  await page.locator('.form-error').filter({ hasText: /\S/ }).waitFor();
  assert.is(await page.locator('tr[data-webhook-id]').count(), 1);
  await w.page.evaluate(`localStorage.setItem('integration-console.lang', 'en')`);
});

test('rotate the secret (asked first; the new one shown once, the test event signed with both), disable, enable, delete', async (w) => {
  await openConsole(w, w.user);
  await w.page.locator('a[data-view="webhooks"]').click();
  const page = w.page.locator('[data-page="webhooks"]');
  const row = page.locator('tr[data-webhook-id]');
  await row.waitFor();
  const id = (await row.getAttribute('data-webhook-id'))!;
  // Cancelled: nothing rotates.
  await row.locator('button[data-action="rotate"]').click();
  await w.page.locator('dialog.confirm button', { hasText: 'Cancel' }).click();
  assert.is(await page.locator('[data-secret]').count(), 0);
  await row.locator('button[data-action="rotate"]').click();
  await w.page.locator('dialog.confirm button.btn--danger').click();
  const secret = (await page.locator('[data-secret]').textContent())!;
  assert.match(secret, /^whsec_/);
  w.hits.length = 0;
  await row.locator('button[data-action="test"]').click();
  for (let i = 0; i < 200 && w.hits.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.is(w.hits.length, 1);
  const hit = w.hits[0]!;
  assert.is((new Webhook(secret).verify(hit.body, hit.headers) as { type: string }).type, 'webhook.test');
  assert.is(hit.headers['webhook-signature']!.split(' ').length, 2, 'old and new secret both sign for 24 h');

  await row.locator('button[data-action="disable"]').click();
  await row.locator('button[data-action="enable"]').waitFor();
  assert.is((await api<{ enabled: boolean }>(w, w.user, 'GET', `/v1/webhooks/${id}`)).json.enabled, false);
  await row.locator('button[data-action="enable"]').click();
  await row.locator('button[data-action="disable"]').waitFor();
  assert.is((await api<{ enabled: boolean }>(w, w.user, 'GET', `/v1/webhooks/${id}`)).json.enabled, true);

  await row.locator('button[data-action="delete"]').click();
  await w.page.locator('dialog.confirm button.btn--danger').click();
  await page.locator('.empty').waitFor();
  assert.is((await api(w, w.user, 'GET', `/v1/webhooks/${id}`)).status, 404);
  const found = await seriousViolations(w.page);
  assert.equal(found.length, 0, describeViolations(found));
});

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
