// Black-box through HTTP: the whole daemon (startApp on real Postgres) against the emulator over
// real sockets. Logs are captured and searched for every secret the test handled.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { startApp, type App } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { logger } from '../../src/observability/logger.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/stack.ts';

interface World { emu: Emulator; db: TestDatabase; app: App; config: Config; secret: string; lines: string[]; answers: string[]; secrets: string[] }
const test = suite<World>('black box', { lines: [], answers: [], secrets: [] } as unknown as World);

let n = 0;
// Valid numbers for libphonenumber's full metadata (US 201-555-01xx is a real format).
const phone = () => `+1201555${String(1000 + (process.pid % 50) * 100 + n++).slice(-4)}`;

test.before(async (w) => {
  w.emu = await startEmulator({ codeTtlMs: 3000 });
  w.db = await createTestDatabase();
  w.secret = randomBytes(32).toString('base64url');
  w.secrets.push(w.secret);
  w.config = {
    ...loadConfig({
      // Emulator, client and daemon share this event loop: its lag measures the harness, not the service.
      OVERLOAD_LAG_MS: '0',
      DATABASE_URL: w.db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'blackbox-')), JWT_SECRET: w.secret, HOST: '127.0.0.1',
      LOG_LEVEL: 'debug', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'blackbox-api-hash', TELEGRAM_DC: w.emu.mtproto,
      TELEGRAM_SERVER_KEYS: w.emu.serverKeys, TELEGRAM_BOT_API_URL: w.emu.botApi, RATE_LIMIT_CONNECT: '1000',
      BACKOFF_BASE_MS: '100', BACKOFF_CAP_MS: '1000',
    }),
    port: 0,
  };
  logger.add(new winston.transports.Stream({
    level: 'debug',
    stream: new Writable({ write(chunk, _e, done) { w.lines.push(String(chunk)); done(); } }),
  }));
  w.app = await startApp(w.config);
});

test.after(async (w) => {
  await w.app.stop();
  await w.emu.stop();
  await w.db.drop();
});

const tokenFor = (w: World, sub: string) => {
  const t = mintToken({ secret: w.secret, sub });
  w.secrets.push(t);
  return t;
};

async function call(w: World, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(w.app.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  w.answers.push(text);
  return { status: res.status, body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as any, headers: res.headers };
}

async function account(w: World, token: string, opts: { password?: string; username?: string } = {}) {
  const p = phone();
  const { userId } = await w.emu.createUser({ phone: p, firstName: 'Black', ...(opts.username ? { username: opts.username } : {}), ...(opts.password ? { password: opts.password } : {}) });
  const created = await call(w, token, 'POST', '/v1/connections', { platform: 'telegram', kind: 'user', phone: p });
  assert.is(created.status, 201, JSON.stringify(created.body));
  return { id: created.body.id as string, phone: p, userId, created };
}

test('phone → code → active; another caller gets 404', async (w) => {
  const alice = tokenFor(w, 'alice');
  const a = await account(w, alice);
  assert.is(a.created.body.status, 'awaiting-code');
  const code = w.emu.lastCode(a.phone)!.code;
  w.secrets.push(`"${code}"`);
  const done = await call(w, alice, 'POST', `/v1/connections/${a.id}/code`, { code });
  assert.is(done.status, 200);
  assert.is(done.body.status, 'active');
  assert.ok(done.headers.get('ratelimit-limit'));
  const mallory = tokenFor(w, 'mallory');
  assert.is((await call(w, mallory, 'GET', `/v1/connections/${a.id}`)).status, 404);
  assert.is((await call(w, mallory, 'GET', '/v1/connections')).body.items.length, 0);
  assert.is((await call(w, alice, 'GET', '/v1/connections')).body.items.length >= 1, true);
});

test('wrong code → 422 TG_CODE_INVALID; expired code → 422 TG_CODE_EXPIRED; code when active → 409', async (w) => {
  const t = tokenFor(w, 'bob');
  const a = await account(w, t);
  const wrong = await call(w, t, 'POST', `/v1/connections/${a.id}/code`, { code: '99999' });
  assert.is(wrong.status, 422);
  assert.is(wrong.body.error.code, 'TG_CODE_INVALID');
  const code = w.emu.lastCode(a.phone)!.code;
  await new Promise((r) => setTimeout(r, 3200)); // the emulator's code TTL is 3 s here (Telegram: minutes)
  const expired = await call(w, t, 'POST', `/v1/connections/${a.id}/code`, { code });
  assert.is(expired.status, 422);
  assert.is(expired.body.error.code, 'TG_CODE_EXPIRED');
  const b = await account(w, t);
  assert.is((await call(w, t, 'POST', `/v1/connections/${b.id}/code`, { code: w.emu.lastCode(b.phone)!.code })).body.status, 'active');
  const again = await call(w, t, 'POST', `/v1/connections/${b.id}/code`, { code: '12345' });
  assert.is(again.status, 409);
  assert.is(again.body.error.code, 'INVALID_STATE');
});

test('phone → code → 2FA: wrong password 422, right password active; password never echoed', async (w) => {
  const t = tokenFor(w, 'carol');
  const password = `pw-${randomBytes(6).toString('hex')}`;
  w.secrets.push(password);
  const a = await account(w, t, { password });
  const two = await call(w, t, 'POST', `/v1/connections/${a.id}/code`, { code: w.emu.lastCode(a.phone)!.code });
  assert.is(two.body.status, 'awaiting-2fa');
  const bad = await call(w, t, 'POST', `/v1/connections/${a.id}/password`, { password: 'wrong-password' });
  assert.is(bad.status, 422);
  assert.is(bad.body.error.code, 'TG_PASSWORD_INVALID');
  const ok = await call(w, t, 'POST', `/v1/connections/${a.id}/password`, { password });
  assert.is(ok.body.status, 'active');
});

test('QR → accept → active, PNG image on request; QR with 2FA; still active after a daemon restart', async (w) => {
  const t = tokenFor(w, 'dora');
  const p = phone();
  await w.emu.createUser({ phone: p, firstName: 'Qr' });
  const c = await call(w, t, 'POST', '/v1/connections', { platform: 'telegram', kind: 'user', method: 'qr' });
  assert.is(c.status, 201);
  assert.is(c.body.status, 'awaiting-qr');
  assert.match(c.body.login.qr.url, /^tg:\/\/login\?token=/);
  const png = await fetch(`${w.app.url}/v1/connections/${c.body.id}/qr`, { headers: { authorization: `Bearer ${t}`, accept: 'image/png' } });
  assert.is(png.headers.get('content-type'), 'image/png');
  assert.equal([...new Uint8Array(await png.arrayBuffer()).slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  const qr = await call(w, t, 'GET', `/v1/connections/${c.body.id}/qr`);
  w.emu.acceptQr(qr.body.url.split('token=')[1], p);
  await until(async () => (await call(w, t, 'GET', `/v1/connections/${c.body.id}`)).body.status === 'active', 'QR active');

  const p2 = phone();
  await w.emu.createUser({ phone: p2, password: 'qr-2fa' });
  w.secrets.push('qr-2fa');
  const c2 = await call(w, t, 'POST', '/v1/connections', { platform: 'telegram', kind: 'user', method: 'qr' });
  w.emu.acceptQr(c2.body.login.qr.url.split('token=')[1], p2);
  await until(async () => (await call(w, t, 'GET', `/v1/connections/${c2.body.id}`)).body.status === 'awaiting-2fa', 'QR 2FA');
  assert.is((await call(w, t, 'POST', `/v1/connections/${c2.body.id}/password`, { password: 'qr-2fa' })).body.status, 'active');

  await w.app.stop();
  w.app = await startApp(w.config);
  await until(async () => (await call(w, t, 'GET', `/v1/connections/${c.body.id}`)).body.status === 'active', 'QR login active after restart');
  assert.is(w.emu.stats().duplicateAuthKeyUse, 0);
});

test('bot: good token → 201 active; bad token → 422; malformed token → 400', async (w) => {
  const t = tokenFor(w, 'erin');
  const bot = w.emu.createBot({ username: `bb${Date.now() % 1e6}_bot` });
  w.secrets.push(bot.token);
  const ok = await call(w, t, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(ok.status, 201);
  assert.is(ok.body.status, 'active');
  const bad = await call(w, t, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: '123456:unknown-token' });
  assert.is(bad.status, 422);
  assert.is(bad.body.error.code, 'TG_BOT_TOKEN_INVALID');
  assert.is((await call(w, t, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: 'not a token' })).status, 400);
});

test('chats: admin of a channel, member of a channel without send rights, not a member, requireAdmin', async (w) => {
  const t = tokenFor(w, 'fred');
  const uname = `fred${Date.now() % 1e6}`;
  const a = await account(w, t, { username: uname });
  await call(w, t, 'POST', `/v1/connections/${a.id}/code`, { code: w.emu.lastCode(a.phone)!.code });
  const stamp = Date.now() % 1e6;
  w.emu.createChat({ type: 'channel', title: 'Admin <b>here</b>', username: `adm${stamp}`, members: [{ id: a.userId, role: 'admin', rights: { postMessages: true } }] });
  w.emu.createChat({ type: 'channel', title: 'Reader', username: `rdr${stamp}`, members: [{ id: a.userId, role: 'member' }] });
  const other = await w.emu.createUser({ phone: phone() });
  w.emu.createChat({ type: 'channel', title: 'Elsewhere', username: `nom${stamp}`, members: [{ id: other.userId, role: 'creator' }] });

  const admin = await call(w, t, 'POST', `/v1/connections/${a.id}/chats`, { chat: `@adm${stamp}` });
  assert.is(admin.status, 201, JSON.stringify(admin.body));
  assert.is(admin.body.isAdmin, true);
  assert.is(admin.body.canSend, true);
  assert.is(admin.body.title, 'Admin <b>here</b>', 'markup comes back as data');
  const reader = await call(w, t, 'POST', `/v1/connections/${a.id}/chats`, { chat: `https://t.me/rdr${stamp}` });
  assert.is(reader.status, 201);
  assert.is(reader.body.isAdmin, false);
  assert.is(reader.body.canSend, false);
  const notAdmin = await call(w, t, 'POST', `/v1/connections/${a.id}/chats`, { chat: `@rdr${stamp}`, requireAdmin: true });
  assert.is(notAdmin.status, 422);
  assert.is(notAdmin.body.error.code, 'TG_NOT_ADMIN');
  const none = await call(w, t, 'POST', `/v1/connections/${a.id}/chats`, { chat: `@nom${stamp}` });
  assert.is(none.status, 422);
  assert.is(none.body.error.code, 'TG_NOT_MEMBER');
  const missing = await call(w, t, 'POST', `/v1/connections/${a.id}/chats`, { chat: `@missing${stamp}` });
  assert.is(missing.body.error.code, 'TG_CHAT_NOT_FOUND');
  assert.is((await call(w, t, 'GET', `/v1/connections/${a.id}/chats`)).body.items.length, 2);
});

test('a message accepted over HTTP reaches the chat once and its status becomes sent', async (w) => {
  const t = tokenFor(w, 'gina');
  const a = await account(w, t);
  await call(w, t, 'POST', `/v1/connections/${a.id}/code`, { code: w.emu.lastCode(a.phone)!.code });
  const stamp = Date.now() % 1e6;
  const { chatId } = w.emu.createChat({ type: 'channel', title: 'Out', username: `out${stamp}`, members: [{ id: a.userId, role: 'creator' }] });
  const chat = await call(w, t, 'POST', `/v1/connections/${a.id}/chats`, { chat: `@out${stamp}` });
  const key = randomBytes(8).toString('hex');
  const sent = await call(w, t, 'POST', '/v1/messages', { connectionId: a.id, chat: chat.body.id, text: 'hello <script>alert(1)</script>' }, { 'idempotency-key': key });
  assert.is(sent.status, 202, JSON.stringify(sent.body));
  const again = await call(w, t, 'POST', '/v1/messages', { connectionId: a.id, chat: chat.body.id, text: 'hello <script>alert(1)</script>' }, { 'idempotency-key': key });
  assert.is(again.status, 200);
  assert.is(again.body.id, sent.body.id);
  await until(async () => (await call(w, t, 'GET', `/v1/messages/${sent.body.id}`)).body.status === 'sent', 'message sent', 15_000);
  const delivered = w.emu.delivered({ chatId }).filter((m) => m.text === 'hello <script>alert(1)</script>');
  assert.is(delivered.length, 1);
  assert.is((await call(w, tokenFor(w, 'mallory'), 'GET', `/v1/messages/${sent.body.id}`)).status, 404);
});

test('no secret in any API answer or log line', async (w) => {
  const sessions = await w.db.sql<{ ciphertext: string }[]>`select ciphertext from connection_secrets`;
  assert.ok(sessions.length > 0);
  const logs = w.lines.join('\n');
  const answers = w.answers.join('\n');
  assert.ok(logs.length > 1000, 'logs were captured');
  for (const s of w.secrets) {
    assert.not.ok(logs.includes(s), `a secret reached the logs: ${s.slice(0, 6)}…`);
    assert.not.ok(answers.includes(s.replace(/^"|"$/g, '')) && !s.startsWith('"'), `a secret reached an answer: ${s.slice(0, 6)}…`);
  }
  // GramJS session strings: "1" + base64 of dc, address, port and the 256-byte key.
  assert.not.match(logs, /1[A-Za-z0-9+/]{340,}={0,2}/);
  assert.not.match(answers, /1[A-Za-z0-9+/]{340,}={0,2}/);
  assert.not.ok(logs.includes('blackbox-api-hash'));
  for (const c of sessions) assert.not.ok(logs.includes(c.ciphertext) || answers.includes(c.ciphertext));
});

test.run();
