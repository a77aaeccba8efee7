// The console in a real browser (Debian's Chromium through playwright-core) against the real daemon
// (startApp) and the Telegram test DC (startEmulator): phone + code + 2FA login, QR login finished
// through the emulator while the page watches, bot and chat added, a message followed to `sent`, a
// server-side status change arriving over the WebSocket, error codes shown, and an XSS chat title
// rendered as text. Screenshots land in test-artifacts/console/ (gitignored).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isValidPhoneNumber } from 'libphonenumber-js/max';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { buildConsole } from '../../src/console/build.ts';
import { startEmulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const chromiumPath = '/usr/bin/chromium';
const artifacts = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const xssTitle = '<img src=x onerror=window.__xss=1>';
// Random UK mobiles (valid in libphonenumber's full metadata). +999… passes the console's E.164 check
// but no country uses the code: the API refuses it as malformed, the server-side error.
const mobile = (prefix: string): string => {
  for (;;) {
    const n = `${prefix}${String(Math.floor(Math.random() * 1e6)).padStart(6, '0')}`;
    if (isValidPhoneNumber(n)) return n;
  }
};
const phone = mobile('+447911');
const qrPhone = mobile('+447912');
const unknownCountry = '+9991234567';
const password = 'correct horse battery staple';

interface World {
  emu: Awaited<ReturnType<typeof startEmulator>>;
  app: Awaited<ReturnType<typeof startApp>>;
  db: TestDatabase;
  dataDir: string;
  context: BrowserContext;
  page: Page;
  token: string;
  pageErrors: string[];
  cspViolations: string[];
  foreignRequests: string[];
  socketUrls: string[];
}

const test = suite<World>('console in the browser');

const control = async <T>(w: World, method: string, path: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${w.emu.control}${path}`, {
    method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`emulator ${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json().catch(() => ({}))) as T;
};

// The detail panel of the selected connection; its badge carries the API status word.
const detailStatus = (page: Page, status: string) => page.locator(`.detail .detail-head .badge[data-status="${status}"]`).waitFor();
const selectedId = async (page: Page) => (await page.locator('.conn-row[aria-current="true"]').getAttribute('data-connection-id'))!;

test.before(async (w) => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
  await buildConsole();
  await mkdir(artifacts, { recursive: true });
  w.emu = await startEmulator();
  w.db = await createTestDatabase();
  w.dataDir = await mkdtemp(join(tmpdir(), 'console-e2e-'));
  const secret = randomBytes(32).toString('base64url');
  const config = loadConfig({
    // Emulator, client and daemon share this event loop: its lag measures the harness, not the service.
    OVERLOAD_LAG_MS: '0',
    HOST: '127.0.0.1', DATA_DIR: w.dataDir, DATABASE_URL: w.db.url, JWT_SECRET: secret, LOG_LEVEL: 'warn',
    TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'e2e', TELEGRAM_DC: w.emu.mtproto, TELEGRAM_SERVER_KEYS: w.emu.serverKeys,
    TELEGRAM_BOT_API_URL: w.emu.botApi, BACKOFF_BASE_MS: '200', BACKOFF_CAP_MS: '2000',
  });
  w.app = await startApp({ ...config, port: 0 });
  w.token = mintToken({ secret, sub: `console-e2e-${randomBytes(4).toString('hex')}` });

  w.context = await chromium.launchPersistentContext(await mkdtemp(join(w.dataDir, 'chromium-')), {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  w.page = w.context.pages()[0] ?? (await w.context.newPage());
  w.page.setDefaultTimeout(20_000);
  w.pageErrors = [];
  w.cspViolations = [];
  w.foreignRequests = [];
  w.socketUrls = [];
  w.page.on('websocket', (ws) => w.socketUrls.push(ws.url()));
  const origin = new URL(w.app.url).origin;
  w.page.on('pageerror', (e) => w.pageErrors.push(e.message));
  w.page.on('console', (m) => /Content.Security.Policy/i.test(m.text()) && w.cspViolations.push(m.text()));
  w.page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:') && !u.startsWith(origin.replace('http', 'ws'))) w.foreignRequests.push(u);
  });
});

// The state after every step, for whoever reads a failure (and the screenshots the brief asks for).
let step = 0;
test.after.each(async (w) => {
  await w.page?.screenshot({ path: join(artifacts, `step-${String(++step).padStart(2, '0')}.png`), fullPage: true }).catch(() => undefined);
});

test.after(async (w) => {
  await w.context?.close();
  await w.app?.stop();
  await w.emu?.stop();
  await w.db?.drop();
  if (w.dataDir) await rm(w.dataDir, { recursive: true, force: true });
});

test('a refused #token= is wiped from the URL and sends back to sign-in; a pasted token opens the live socket', async (w) => {
  const forged = mintToken({ secret: randomBytes(32).toString('base64url'), sub: 'someone-else' });
  await w.page.goto(`${w.app.url}/#token=${forged}`);
  await w.page.locator('.field-error', { hasText: 'UNAUTHORIZED' }).waitFor();
  assert.not.match(w.page.url(), /token/);
  await w.page.getByLabel('Access token (JWT)').fill(w.token);
  await w.page.getByRole('button', { name: 'Sign in' }).click();
  await w.page.locator('.live--open').waitFor();
  // The token goes in the handshake's Sec-WebSocket-Protocol header, never in the URL (logged by proxies).
  assert.ok(w.socketUrls.length > 0);
  assert.ok(w.socketUrls.every((u) => u.endsWith('/v1/events') && !u.includes(w.token)), w.socketUrls.join(' '));
  assert.is(await w.page.evaluate('sessionStorage.length'), 1);
  assert.is(await w.page.evaluate('localStorage.length'), 0);
  assert.equal(await w.context.cookies(), []);
});

test('phone login: phone → code → 2FA password, with client-side and server-side errors inline', async (w) => {
  await control(w, 'POST', '/users', { phone, firstName: 'Alice', username: `alice_${randomBytes(3).toString('hex')}`, password });
  const p = w.page;
  await p.getByLabel('Phone number').fill('07700 900123');
  await p.getByRole('button', { name: 'Send code' }).click();
  await p.locator('[data-form="phone"] .field-error', { hasText: 'Start with +' }).waitFor();
  await p.getByLabel('Phone number').fill(unknownCountry);
  await p.getByRole('button', { name: 'Send code' }).click();
  await p.locator('[data-form="phone"] .field-error', { hasText: 'TG_PHONE_INVALID' }).waitFor();
  await p.getByLabel('Phone number').fill(phone);
  await p.getByRole('button', { name: 'Send code' }).click();
  await p.locator('[data-step="code"]').waitFor();
  const { code } = await control<{ code: string }>(w, 'GET', `/users/${encodeURIComponent(phone)}/code`);
  await p.getByLabel('Login code').fill(code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await p.locator('[data-step="password"]').waitFor();
  await p.getByLabel('Two-step verification password').fill('wrong password');
  await p.getByRole('button', { name: 'Unlock' }).click();
  await p.locator('[data-step="password"] .field-error', { hasText: 'TG_PASSWORD_INVALID' }).waitFor();
  await p.getByLabel('Two-step verification password').fill(password);
  await p.getByRole('button', { name: 'Unlock' }).click();
  await detailStatus(p, 'active');
  // The phone is shown masked (API.md), never in full.
  const text = await p.locator('.detail-head').textContent();
  assert.not.ok(text?.includes(phone), 'full phone number on screen');
  assert.match(text ?? '', /\+\d{2}\*{6}\d{4}/);
});

test('QR login finishes by itself when the emulator accepts the token while the page watches', async (w) => {
  await control(w, 'POST', '/users', { phone: qrPhone, firstName: 'Bob' });
  const p = w.page;
  await p.evaluate('window.__sameDocument = true');
  await p.getByRole('radio', { name: 'QR code' }).check();
  await p.getByRole('button', { name: 'Show QR code' }).click();
  const img = p.locator('img.qr[src^="blob:"]');
  await img.waitFor();
  // An SVG QR has no intrinsic size (naturalWidth 0): check that it decoded and is laid out.
  const width = await img.evaluate((el: unknown) => {
    const image = el as { decode(): Promise<void>; getBoundingClientRect(): { width: number } };
    return image.decode().then(() => image.getBoundingClientRect().width);
  });
  assert.ok(width >= 100, `QR image is ${width} px wide`);
  const url = (await img.getAttribute('data-qr-url'))!;
  const token = new URL(url.replace(/^tg:\/\//, 'https://')).searchParams.get('token');
  assert.ok(token, `no token in ${url}`);
  await p.locator('.live--open').waitFor(); // the change below must come through the socket, not polling
  await control(w, 'POST', '/qr/accept', { token, phone: qrPhone });
  await detailStatus(p, 'active');
  assert.ok(await p.evaluate('window.__sameDocument'), 'the page reloaded');
});

test('a bot token is checked: an unknown one shows its error code, a real one adds the bot', async (w) => {
  const p = w.page;
  await p.getByRole('radio', { name: 'Bot' }).check();
  await p.getByLabel('Bot token').fill('123456:not-a-real-token');
  await p.getByRole('button', { name: 'Add bot' }).click();
  await p.locator('[data-form="bot"] .field-error', { hasText: 'TG_BOT_TOKEN_INVALID' }).waitFor();
  const bot = await control<{ botId: number | string; token: string }>(w, 'POST', '/bots', { username: `e2e_${randomBytes(3).toString('hex')}_bot` });
  await p.getByLabel('Bot token').fill(bot.token);
  await p.getByRole('button', { name: 'Add bot' }).click();
  await detailStatus(p, 'active');
  const html = await p.content();
  assert.not.ok(html.includes(bot.token), 'bot token left in the page');
  (w as World & { botId?: string }).botId = String(bot.botId);
});

test('a chat whose title is an XSS payload is added and shown as text; a message to it turns sent live', async (w) => {
  const p = w.page;
  const botId = (w as World & { botId?: string }).botId!;
  const username = `xss_${randomBytes(3).toString('hex')}`;
  await control(w, 'POST', '/chats', { type: 'channel', title: xssTitle, username, members: [{ id: Number(botId), role: 'admin', rights: { postMessages: true } }] });
  await p.getByLabel('Chat', { exact: true }).first().fill(`@${username}`);
  await p.getByRole('button', { name: 'Add chat' }).click();
  const title = p.locator('.chat-title').first();
  await title.waitFor();
  assert.is(await title.textContent(), xssTitle);
  assert.is(await p.locator('.chat-title img, .toast img, option img').count(), 0);
  assert.is(await p.evaluate('window.__xss'), undefined);

  const text = `hello from the console ${randomBytes(3).toString('hex')}`;
  await p.locator('[data-form="send"] select[name="priority"]').selectOption('high');
  await p.getByLabel('Text').fill(text);
  await p.getByRole('button', { name: 'Send', exact: true }).click();
  const row = p.locator('.msg', { hasText: text });
  await row.waitFor();
  await p.locator('.msg[data-status="sent"]', { hasText: text }).waitFor();
  assert.match((await row.locator('.msg-chat').textContent()) ?? '', xssTitle);
  const delivered = await control<{ text: string }[]>(w, 'GET', '/messages');
  assert.ok(delivered.some((m) => m.text === text), 'the emulator did not receive the message');
  assert.is(await p.evaluate('window.__xss'), undefined);
  await p.evaluate('window.scrollTo(0, 0)');
  await p.screenshot({ path: join(artifacts, 'console-1280x800.png'), fullPage: false });
});

test('an incoming message for the bot pops up as a toast, its text as text', async (w) => {
  const p = w.page;
  const botId = Number((w as World & { botId?: string }).botId);
  const { userId } = await control<{ userId: number }>(w, 'POST', '/users', { phone: mobile('+447913'), firstName: 'Carol' });
  const text = `<b>incoming</b> ${randomBytes(3).toString('hex')}`;
  await control(w, 'POST', '/updates', { to: botId, fromUserId: userId, text });
  await p.locator('.toast', { hasText: text }).waitFor();
  assert.is(await p.locator('.toast b').count(), 0);
});

test('requireAdmin refuses a chat where the bot is only a member; re-check and remove (with confirm) work', async (w) => {
  const p = w.page;
  const botId = (w as World & { botId?: string }).botId!;
  const username = `members_${randomBytes(3).toString('hex')}`;
  await control(w, 'POST', '/chats', { type: 'supergroup', title: 'Members only', username, members: [{ id: Number(botId), role: 'member' }] });
  const chatInput = p.getByLabel('Chat', { exact: true }).first();
  await chatInput.fill(`t.me/${username}`);
  await p.getByLabel('Require admin rights').check();
  await p.getByRole('button', { name: 'Add chat' }).click();
  await p.locator('[data-form="add-chat"] .field-error', { hasText: 'TG_NOT_ADMIN' }).waitFor();
  assert.is(await p.locator('.chat', { hasText: 'Members only' }).count(), 0);
  await p.getByLabel('Require admin rights').uncheck();
  await p.getByRole('button', { name: 'Add chat' }).click();
  const row = p.locator('.chat', { hasText: 'Members only' });
  await row.waitFor();
  assert.match((await row.textContent()) ?? '', /✗ admin/);
  await row.getByRole('button', { name: /Re-check/ }).click();
  await p.locator('.toast', { hasText: 'Rights re-checked: Members only' }).waitFor();
  await row.getByRole('button', { name: /Remove/ }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Remove chat' }).click();
  await row.waitFor({ state: 'detached' });
  await p.locator('.chat', { hasText: xssTitle }).waitFor(); // the other chat stays
});

test('a session revoked at Telegram shows up as an error with its code, without a reload', async (w) => {
  const p = w.page;
  const row = p.locator('.conn-row', { hasText: 'Alice' });
  const id = await row.getAttribute('data-connection-id');
  assert.ok(id);
  await control(w, 'POST', '/faults', { type: 'revoke-session', target: phone });
  // Untargeted: the emulator's drop with a phone target misses the daemon's socket (seen 05:45,
  // reported); revoking only Alice's key keeps the other accounts fine after they reconnect.
  await control(w, 'POST', '/faults', { type: 'drop-connections' });
  await p.locator(`.conn-row[data-connection-id="${id}"] .badge[data-status="error"]`).waitFor({ timeout: 30_000 });
  await row.click();
  assert.is(await selectedId(p), id);
  const line = await p.locator('.detail .conn-error').textContent();
  assert.match(line ?? '', /^TG_SESSION_EXPIRED — /);
  await p.getByRole('button', { name: 'Reconnect' }).waitFor();
});

test('narrow screens (390×844, 360×740): one column, nothing wider than the viewport', async (w) => {
  const p = w.page;
  for (const [width, height] of [[360, 740], [390, 844]] as const) {
    await p.setViewportSize({ width, height });
    const overflow = await p.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `at ${width} px the page is ${overflow} px wider than the viewport`);
  }
  await p.evaluate('window.scrollTo(0, 0)');
  await p.screenshot({ path: join(artifacts, 'console-390x844.png'), fullPage: false });
  await p.screenshot({ path: join(artifacts, 'console-390x844-full.png'), fullPage: true });
});

test('deleting a connection asks first, and Cancel keeps it', async (w) => {
  const p = w.page;
  await p.setViewportSize({ width: 1280, height: 800 });
  const row = p.locator('.conn-row', { hasText: 'Alice' });
  await row.click();
  await p.getByRole('button', { name: 'Delete connection' }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.is(await row.count(), 1);
  await p.getByRole('button', { name: 'Delete connection' }).click();
  await p.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });
  await p.locator('.toast', { hasText: 'Alice deleted' }).waitFor();
});

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
