// Connections beyond Telegram in a real Chromium against the real daemon and the platform emulators
// (issue 19, console part): "Connect Instagram / Threads / YouTube / TikTok" create the connection,
// send the tab to the platform's consent page, and the platform's redirect through the daemon's own
// OAuth callback brings the browser back to that connection, active; a declined consent shows
// PLATFORM_AUTH_DENIED with "Authorize again", which works; the WhatsApp business-number form checks
// its fields and reports a refused token on the token field; the quotas the service counts are on the
// connection; the same in Russian.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api, artifactsDir, type ConsoleWorld, control, describeViolations, openConsole, seriousViolations, startConsoleWorld, stopConsoleWorld,
} from '../helpers/console-browser.ts';

interface World extends ConsoleWorld { user: string; origin: string }
const test = suite<World>('platform connections in the console');

const detailStatus = (page: Page, status: string) => page.locator(`.detail .detail-head .badge[data-status="${status}"]`).waitFor();
const detailId = (page: Page) => page.evaluate('document.querySelector(".conn-list [aria-current=true]")?.dataset.connectionId ?? null');
const pick = (page: Page, id: string) => page.locator(`.conn-list button[data-connection-id="${id}"]`).click();

test.before(async (w) => {
  Object.assign(w, await startConsoleWorld({ RATE_LIMIT_CONNECT: '1000' }, 'en-US', ['instagram', 'threads', 'whatsapp', 'youtube', 'tiktok']));
  w.user = w.token(`platforms-${randomBytes(4).toString('hex')}`);
  w.origin = new URL(w.app.url).origin;
  await openConsole(w, w.user);
});

let shot = 0;
test.after.each(async (w) => {
  await w.page?.screenshot({ path: join(artifactsDir, `platforms-${String(++shot).padStart(2, '0')}.png`), fullPage: true }).catch(() => undefined);
});

test.after(async (w) => {
  await stopConsoleWorld(w);
});

const chooseOAuth = async (w: World): Promise<void> => {
  await w.page.getByRole('radio', { name: 'Instagram, Threads, YouTube, TikTok' }).check();
};

// Clicks `button`, which sends the tab to the platform; the redirects end on the console's origin with
// ?connection=… (wiped by the page once read), signed in again from this tab's session.
const roundTrip = async (w: World, button: string): Promise<void> => {
  await Promise.all([
    w.page.waitForURL((u) => u.origin === w.origin && u.searchParams.has('connection'), { timeout: 20_000 }),
    w.page.getByRole('button', { name: button }).click(),
  ]);
  await w.page.locator('.live--open').waitFor();
};

test('Connect Instagram: consent at the platform, back on the connection, active; quotas shown after a post', async (w) => {
  const p = w.page;
  const acc = await control<{ accountId: string }>(w, 'POST', '/instagram/accounts', { username: 'console_ig' });
  await control(w, 'POST', '/instagram/consent', { account: acc.accountId });
  await chooseOAuth(w);
  await roundTrip(w, 'Connect Instagram');
  await detailStatus(p, 'active');
  assert.is(new URL(p.url()).search, '', 'the callback\'s ?connection=…&status=… is wiped from the address bar');
  assert.match((await p.locator('.detail .facts').textContent())!, /Instagram account/);
  assert.match((await p.locator('.detail h2').textContent())!, /console_ig/);
  const list = await api<{ items: { id: string; platform: string; status: string }[] }>(w, w.user, 'GET', '/v1/connections?platform=instagram');
  assert.equal(list.json.items.map((c) => [c.platform, c.status]), [['instagram', 'active']]);
  const id = list.json.items[0]!.id;

  // A post counts against the 50 a day; the connection view shows used of limit.
  const sent = await api<{ id: string }>(w, w.user, 'POST', '/v1/messages', { connectionId: id, chat: '@console_ig', text: 'from the console test' });
  assert.ok(sent.status === 422 || sent.status === 202, JSON.stringify(sent.json));
  for (let i = 0; i < 100; i++) {
    const c = await api<{ quotas?: unknown[] }>(w, w.user, 'GET', `/v1/connections/${id}`);
    if (c.json.quotas?.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await p.reload();
  await p.locator('.live--open').waitFor();
  await pick(p, id);
  const row = p.locator('.detail [data-quotas] tr[data-quota="instagram.posts.24h"]');
  await row.waitFor();
  assert.match((await row.textContent())!, /Instagram posts in 24 hours.*of 50/);
});

test('Connect Threads, declined at the platform → PLATFORM_AUTH_DENIED on the connection; Authorize again → active', async (w) => {
  const p = w.page;
  const acc = await control<{ accountId: string }>(w, 'POST', '/threads/accounts', { username: 'console_th' });
  await control(w, 'POST', '/threads/consent', { deny: true });
  await chooseOAuth(w);
  await roundTrip(w, 'Connect Threads');
  await detailStatus(p, 'error');
  await p.locator('.detail .conn-error[data-error-code="PLATFORM_AUTH_DENIED"]').waitFor();
  await p.locator('.toast', { hasText: 'PLATFORM_AUTH_DENIED' }).first().waitFor();
  const deniedId = await detailId(p);
  assert.ok(deniedId, 'the connection is selected after the return');

  await control(w, 'POST', '/threads/consent', { account: acc.accountId });
  await roundTrip(w, 'Authorize again');
  await detailStatus(p, 'active');
  assert.is(await detailId(p), deniedId, 'the same connection, authorized');
  assert.match((await p.locator('.detail h2').textContent())!, /console_th/);
});

test('Connect YouTube and Connect TikTok: each comes back active', async (w) => {
  const p = w.page;
  for (const [platform, label, username] of [['youtube', 'YouTube', 'console_yt'], ['tiktok', 'TikTok', 'console_tt']] as const) {
    const acc = await control<{ accountId: string }>(w, 'POST', `/${platform}/accounts`, { username });
    await control(w, 'POST', `/${platform}/consent`, { account: acc.accountId });
    await chooseOAuth(w);
    await roundTrip(w, `Connect ${label}`);
    await detailStatus(p, 'active');
    assert.match((await p.locator('.detail .facts').textContent())!, new RegExp(`${label} account`));
  }
});

test('an OAuth connection still awaiting consent offers the consent page again', async (w) => {
  const p = w.page;
  const created = await api<{ id: string; status: string }>(w, w.user, 'POST', '/v1/connections', { platform: 'instagram', kind: 'account' });
  assert.is(created.json.status, 'awaiting-authorization');
  await p.reload();
  await p.locator('.live--open').waitFor();
  await pick(p, created.json.id);
  await p.locator('.detail [data-step="authorize"]').waitFor();
  assert.match((await p.locator('.detail [data-step="authorize"]').textContent())!, /Waiting for your consent at Instagram/);
  const acc = await control<{ accountId: string }>(w, 'POST', '/instagram/accounts', { username: 'console_ig_late' });
  await control(w, 'POST', '/instagram/consent', { account: acc.accountId });
  await roundTrip(w, 'Open the Instagram consent page');
  await detailStatus(p, 'active');
  assert.is(await detailId(p), created.json.id);
});

test('WhatsApp number form: checks fields, a refused token on the token field, then the number connects', async (w) => {
  const p = w.page;
  const n = await control<{ phoneNumberId: string; wabaId: string; accessToken: string; displayPhoneNumber: string }>(w, 'POST', '/whatsapp/numbers', {});
  await p.getByRole('radio', { name: 'WhatsApp number' }).check();
  const form = p.locator('form[data-form="whatsapp"]');
  await form.getByRole('button', { name: 'Add number' }).click();
  assert.match((await form.locator('.field-error').first().textContent())!, /Enter the number ID/);
  await p.getByLabel('Number ID (from WhatsApp Manager)').fill('12ab');
  await p.getByLabel('Access token').fill(n.accessToken);
  await form.getByRole('button', { name: 'Add number' }).click();
  assert.match((await form.locator('.field-error').first().textContent())!, /digits only/);

  await p.getByLabel('Number ID (from WhatsApp Manager)').fill(n.phoneNumberId);
  await p.getByLabel('Access token').fill(`${n.accessToken}x`);
  await form.getByRole('button', { name: 'Add number' }).click();
  await form.locator('.field-error', { hasText: 'PLATFORM_AUTH_INVALID' }).waitFor();

  await p.getByLabel('Access token').fill(n.accessToken);
  await p.getByLabel('WhatsApp Business Account ID (optional)').fill(n.wabaId);
  await form.getByRole('button', { name: 'Add number' }).click();
  await p.locator('.detail .facts', { hasText: 'WhatsApp business number' }).waitFor();
  await detailStatus(p, 'active');
  const html = await p.content();
  assert.not.ok(html.includes(n.accessToken), 'the token is not left on the page');
});

test('in Russian: the buttons, the WhatsApp form and the quotas read in Russian; no serious axe violations', async (w) => {
  const p = w.page;
  await p.evaluate('localStorage.setItem("integration-console.lang", "ru")');
  await p.reload();
  await p.locator('.live--open').waitFor();
  await p.getByRole('radio', { name: 'Instagram, Threads, YouTube, TikTok' }).check();
  await p.getByRole('button', { name: 'Подключить Instagram' }).waitFor();
  await p.getByRole('radio', { name: 'Номер WhatsApp' }).check();
  await p.getByLabel('ID номера (из WhatsApp Manager)').waitFor();
  const ig = await api<{ items: { id: string }[] }>(w, w.user, 'GET', '/v1/connections?platform=instagram&status=active');
  await pick(p, ig.json.items.at(-1)!.id);
  await p.locator('.detail [data-quotas] caption', { hasText: 'Квоты платформы' }).waitFor();
  assert.match((await p.locator('.detail .facts').textContent())!, /Аккаунт Instagram/);
  const vs = await seriousViolations(p);
  assert.is(vs.length, 0, describeViolations(vs));
  await p.evaluate('localStorage.setItem("integration-console.lang", "en")');
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
});

test.run();
