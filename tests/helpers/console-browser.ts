// A real daemon (startApp on a private database), the Telegram emulator and Debian's Chromium through
// playwright-core: what every console browser test starts from. The page records script errors, CSP
// violations and requests to other origins so that a test can assert there were none.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import * as assert from 'uvu/assert';
import { startApp } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { buildConsole } from '../../src/console/build.ts';
import { startEmulator } from '../emulator/index.ts';
import type { PlatformName } from '../emulator/platforms/types.ts';
import { freePort } from './private-services.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export const chromiumPath = '/usr/bin/chromium';
export const artifactsDir = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));

export interface ConsoleWorld {
  emu: Awaited<ReturnType<typeof startEmulator>>;
  app: Awaited<ReturnType<typeof startApp>>;
  db: TestDatabase;
  dataDir: string;
  secret: string;
  context: BrowserContext;
  page: Page;
  /** A token for `sub`; `admin` adds the admin scope. */
  token(sub: string, admin?: boolean): string;
  pageErrors: string[];
  cspViolations: string[];
  foreignRequests: string[];
}

/**
 * `platforms`: the emulator serves these too and the daemon is configured for them (app credentials,
 * API and OAuth addresses), on a known port named by PUBLIC_URL: the platforms redirect the browser
 * to its OAuth callback.
 */
export const startConsoleWorld = async (env: Record<string, string> = {}, locale = 'en-US', platforms: PlatformName[] = []): Promise<ConsoleWorld> => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
  await buildConsole();
  await mkdir(artifactsDir, { recursive: true });
  const emu = await startEmulator({ platforms });
  const port = platforms.length > 0 ? await freePort() : 0;
  const platformEnv = platforms.length > 0 ? { ...platformConfig(emu), PUBLIC_URL: `http://127.0.0.1:${port}` } : {};
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'console-e2e-'));
  const secret = randomBytes(32).toString('base64url');
  const config = loadConfig({
    HOST: '127.0.0.1', DATA_DIR: dataDir, DATABASE_URL: db.url, JWT_SECRET: secret, LOG_LEVEL: 'warn',
    TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'e2e', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys,
    TELEGRAM_BOT_API_URL: emu.botApi, BACKOFF_BASE_MS: '200', BACKOFF_CAP_MS: '2000',
    // Load shedding off (60 s): on a shared 2-core machine the loop lags past 1 s and the page would
    // show OVERLOADED instead of the answer a test waits for.
    OVERLOAD_LAG_MS: '60000', ...platformEnv, ...env,
  });
  const app = await startApp({ ...config, port });
  const context = await chromium.launchPersistentContext(await mkdtemp(join(dataDir, 'chromium-')), {
    executablePath: chromiumPath,
    headless: true,
    locale,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  const w: ConsoleWorld = {
    emu, app, db, dataDir, secret, context, page,
    token: (sub, admin = false) => mintToken({ secret, sub, scopes: admin ? ['admin'] : [] }),
    pageErrors: [], cspViolations: [], foreignRequests: [],
  };
  const origin = new URL(app.url).origin;
  page.on('pageerror', (e) => w.pageErrors.push(e.message));
  page.on('console', (m) => /Content.Security.Policy/i.test(m.text()) && w.cspViolations.push(m.text()));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:') && !u.startsWith(origin.replace('http', 'ws'))) w.foreignRequests.push(u);
  });
  return w;
};

/** The daemon's variables for every platform the emulator serves besides Telegram. */
const platformConfig = (emu: Awaited<ReturnType<typeof startEmulator>>): Record<string, string> => {
  const urls = (name: PlatformName) => emu.platforms.get(name)?.urls;
  const { meta, google, tiktok } = emu.apps;
  const ig = urls('instagram'), th = urls('threads'), wa = urls('whatsapp'), yt = urls('youtube'), tt = urls('tiktok');
  return {
    ...(ig || th || wa ? { META_APP_ID: meta.appId, META_APP_SECRET: meta.appSecret, META_VERIFY_TOKEN: meta.verifyToken } : {}),
    ...(ig ? { INSTAGRAM_API_URL: ig.api!, INSTAGRAM_OAUTH_URL: ig.oauth! } : {}),
    ...(th ? { THREADS_API_URL: th.api!, THREADS_OAUTH_URL: th.oauth! } : {}),
    ...(wa ? { META_GRAPH_URL: wa.api! } : {}),
    ...(yt ? { GOOGLE_CLIENT_ID: google.clientId, GOOGLE_CLIENT_SECRET: google.clientSecret, GOOGLE_OAUTH_URL: yt.oauth!, YOUTUBE_API_URL: yt.api!, YOUTUBE_UPLOAD_URL: yt.upload! } : {}),
    ...(tt ? { TIKTOK_CLIENT_KEY: tiktok.clientKey, TIKTOK_CLIENT_SECRET: tiktok.clientSecret, TIKTOK_OAUTH_URL: tt.oauth!, TIKTOK_API_URL: tt.api! } : {}),
  };
};

export const stopConsoleWorld = async (w: Partial<ConsoleWorld>): Promise<void> => {
  await w.context?.close();
  await w.app?.stop();
  await w.emu?.stop();
  await w.db?.drop();
  if (w.dataDir) await rm(w.dataDir, { recursive: true, force: true });
};

export const control = async <T>(w: ConsoleWorld, method: string, path: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${w.emu.control}${path}`, {
    method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`emulator ${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json().catch(() => ({}))) as T;
};

/** The daemon's API as the test (not the page) calls it. */
export const api = async <T>(w: ConsoleWorld, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T; headers: Headers }> => {
  const res = await fetch(`${w.app.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
};

/** A bot connection that is active, with one chat where it is admin: the quickest way to a working console. */
export const botWithChat = async (w: ConsoleWorld, token: string, title: string): Promise<{ connectionId: string; botId: string; chatId: string; platformChatId: string; username: string }> => {
  const bot = await control<{ botId: number | string; token: string }>(w, 'POST', '/bots', { username: `e2e_${randomBytes(3).toString('hex')}_bot` });
  const created = await api<{ id: string; status: string }>(w, token, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.ok(created.status < 300, `connect: ${created.status} ${JSON.stringify(created.json)}`);
  for (let i = 0; i < 200; i++) {
    const c = await api<{ status: string }>(w, token, 'GET', `/v1/connections/${created.json.id}`);
    if (c.json.status === 'active') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const username = `chat_${randomBytes(3).toString('hex')}`;
  await control(w, 'POST', '/chats', { type: 'supergroup', title, username, members: [{ id: Number(bot.botId), role: 'admin', rights: { postMessages: true } }] });
  const chat = await api<{ id: string; platformChatId: string }>(w, token, 'POST', `/v1/connections/${created.json.id}/chats`, { chat: `@${username}` });
  assert.ok(chat.status < 300, `add chat: ${chat.status} ${JSON.stringify(chat.json)}`);
  return { connectionId: created.json.id, botId: String(bot.botId), chatId: chat.json.id, platformChatId: chat.json.platformChatId, username };
};

/** Opens the console signed in with `token` (through #token=, which the app wipes from the URL). */
export const openConsole = async (w: ConsoleWorld, token: string): Promise<void> => {
  // From about:blank: a goto that only changes the hash would not load the page again.
  await w.page.goto('about:blank');
  await w.page.goto(`${w.app.url}/#token=${token}`);
  await w.page.locator('.live--open').waitFor();
};

const requireFromHere = createRequire(import.meta.url);
let axeSource: string | undefined;

export interface AxeViolation { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }

/** axe-core (bundled from node_modules, nothing fetched) on the page as it is; serious and critical only. */
export const seriousViolations = async (page: Page): Promise<AxeViolation[]> => {
  axeSource ??= readFileSync(requireFromHere.resolve('axe-core/axe.min.js'), 'utf8');
  // evaluate() runs through the DevTools protocol, outside the page's CSP (script-src 'self'): the
  // page itself is tested with its real policy.
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(axeSource);
  const result = await page.evaluate(`window.axe.run(document, { resultTypes: ['violations'] })`) as { violations: AxeViolation[] };
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
};

export const describeViolations = (vs: AxeViolation[]): string =>
  vs.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target)).join(', ')}`).join('\n');

/**
 * Polls a page-side expression until it is truthy. Not page.waitForFunction: a string there is
 * compiled inside the page, which its CSP (no 'unsafe-eval') refuses; evaluate() runs it through the
 * DevTools protocol instead.
 */
export const waitUntil = async (page: Page, expression: string, timeoutMs = 20_000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate(expression)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};
