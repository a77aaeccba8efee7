// DELETE /v1/me reaches the logs: the whole daemon (startApp on real Postgres, the emulator over real
// sockets) writes every line about a caller with HMAC(key, salt ‖ sub), never the sub; after the
// erasure the salt is gone, so no line the service wrote for that caller can be tied to the sub: not
// by the sub, not by an HMAC of the sub without the salt, not by any salt still stored, and not
// through the ids the lines carry (their rows are gone). One audit entry says that an erasure
// happened, and when, under the old hash.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { startApp, type App } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { purposeKey } from '../../src/crypto/purpose-keys.ts';
import { logger } from '../../src/observability/logger.ts';
import { subjectHash } from '../../src/observability/subjects.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/stack.ts';

let emu: Emulator;
let db: TestDatabase;
let app: App;
let secret: string;
const lines: string[] = [];

test.before(async () => {
  emu = await startEmulator();
  db = await createTestDatabase();
  secret = randomBytes(32).toString('base64url');
  const config = loadConfig({
    // Emulator, client and daemon share this event loop: its lag measures the harness, not the service.
    OVERLOAD_LAG_MS: '0',
    DATABASE_URL: db.url, DATA_DIR: mkdtempSync(join(tmpdir(), 'erasure-')), JWT_SECRET: secret, HOST: '127.0.0.1',
    KEYRING_KEY: randomBytes(32).toString('base64'), LOG_LEVEL: 'debug', CONSENT_REQUIRED: 'true',
    TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'erasure-api-hash', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys,
    TELEGRAM_BOT_API_URL: emu.botApi,
  });
  logger.add(new winston.transports.Stream({ level: 'debug', stream: new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } }) }));
  app = await startApp({ ...config, port: 0 });
});

test.after(async () => {
  await app.stop();
  await emu.stop();
  await db.drop();
});

async function call(token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(app.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

const hmac = (key: Buffer, ...parts: Array<Buffer | string>) => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest('hex');
};
// The unsalted keyed hash, whole and cut as the service cuts its own (16 bytes).
const unsalted = (key: Buffer, sub: string) => [hmac(key, sub), hmac(key, sub).slice(0, 32)];

test('after DELETE /v1/me no log line written for the caller can be linked to the sub', async () => {
  const sub = `erasure-subject-${randomBytes(6).toString('hex')}`;
  const token = mintToken({ secret, sub });
  const other = mintToken({ secret, sub: `bystander-${randomBytes(6).toString('hex')}` });

  // A caller's ordinary life: consent, a bot, a chat, a message sent, reads, a refusal, an export.
  assert.is((await call(token, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: 'not a token' })).status, 400);
  assert.is((await call(token, 'PUT', '/v1/me/consents/processing', { granted: true, version: '2026-05-01' })).status, 200);
  const bot = emu.createBot({ username: `er${process.pid % 1000}x${Date.now() % 1e5}_bot` });
  const conn = await call(token, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(conn.status, 201, JSON.stringify(conn.body));
  const stamp = Date.now() % 1e6;
  emu.createChat({ type: 'channel', title: 'Erasure', username: `erasure${stamp}`, members: [{ id: bot.botId, role: 'admin', rights: { postMessages: true } }] });
  const chat = await call(token, 'POST', `/v1/connections/${conn.body.id}/chats`, { chat: `@erasure${stamp}` });
  assert.is(chat.status, 201, JSON.stringify(chat.body));
  const sent = await call(token, 'POST', '/v1/messages', { connectionId: conn.body.id, chat: chat.body.id, text: 'personal words' });
  assert.is(sent.status, 202, JSON.stringify(sent.body));
  await until(async () => (await call(token, 'GET', `/v1/messages/${sent.body.id}`)).body.status === 'sent', 'message sent', 15_000);
  assert.is((await call(token, 'GET', '/v1/messages?q=personal')).body.items.length, 1);
  assert.is((await call(token, 'GET', '/v1/connections/7a1c9d3e-2b4f-4e6a-8c0d-1e2f3a4b5c6d')).status, 404);
  assert.is((await call(token, 'GET', '/v1/me/export')).status, 200);
  assert.is((await call(other, 'GET', '/v1/connections')).status, 200);

  const key = await purposeKey(app.db.sql, app.keyring, 'log-subjects');
  const [{ salt }] = await app.db.sql<{ salt: Buffer }[]>`select salt from log_salts where sub = ${sub}`;
  const hash = subjectHash(key, salt!, sub);
  const about = () => lines.filter((l) => l.includes(hash));
  // The caller's requests were logged, under the salted hash and nothing else that names them.
  assert.ok(about().length >= 9, `${about().length} lines carry the hash`);
  assert.ok(about().some((l) => l.includes('"PUT /v1/me/consents/{purpose} 200"')));

  const erased = await call(token, 'DELETE', '/v1/me');
  assert.is(erased.status, 204);
  await until(() => lines.some((l) => l.includes('"DELETE /v1/me 204"')), 'the erasure request logged');
  const afterwards = await call(token, 'GET', '/v1/connections');
  assert.equal(afterwards.body.items, []);
  await until(() => lines.filter((l) => l.includes('"GET /v1/connections 200"')).length >= 2, 'a later request logged');

  // The salt is gone; the same caller coming back is someone new to the logs.
  assert.is((await app.db.sql`select 1 from log_salts where sub = ${sub} and salt = ${salt!}`).length, 0);
  const salts = await app.db.sql<{ salt: Buffer }[]>`select salt from log_salts`;
  assert.not.ok(salts.some((s) => subjectHash(key, s.salt, sub) === hash), 'no stored salt makes the old hash again');
  const [{ salt: fresh }] = await app.db.sql<{ salt: Buffer }[]>`select salt from log_salts where sub = ${sub}`;
  assert.is.not(subjectHash(key, fresh!, sub), hash);
  assert.ok(about().some((l) => l.includes('"DELETE /v1/me 204"')), 'the erasure request itself carries the old hash');

  // No line names the sub, or its keyed hash without the salt.
  const text = lines.join('\n');
  assert.not.ok(text.includes(sub), 'the sub is in no line');
  for (const u of unsalted(key, sub)) assert.not.ok(text.includes(u), 'the unsalted HMAC is in no line');
  // The ids in the caller's lines lead nowhere: their rows are gone.
  for (const id of [conn.body.id as string, chat.body.id as string, sent.body.id as string]) {
    const [{ n }] = await app.db.sql<{ n: number }[]>`
      select (select count(*) from connections where id::text = ${id}) + (select count(*) from chats where id::text = ${id})
           + (select count(*) from messages where id::text = ${id})
           + (select count(*) from audit where target = ${id} or details::text like ${`%${id}%`})::int as n`;
    assert.is(Number(n), 0, id);
  }

  // One audit line: an erasure happened, and when, under the old hash, never the sub.
  const audit = await app.db.sql<{ owner: string; actor: string; action: string; at: Date }[]>`
    select owner, actor, action, at from audit where owner = ${hash} or owner = ${sub} or actor = ${sub}`;
  assert.equal(audit.map((a) => [a.owner, a.actor, a.action]), [[hash, hash, 'personal-data.erased']]);
  assert.ok(Math.abs(audit[0]!.at.getTime() - Date.now()) < 60_000);
  assert.not.ok(JSON.stringify(await app.db.sql`select * from audit`).includes(sub));
});

test.run();
