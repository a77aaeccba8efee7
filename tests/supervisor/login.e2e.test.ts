// End-to-end through the supervisor: GramJS over real sockets to the emulator, real Postgres.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registry } from '../../src/observability/metrics.ts';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

const OWNER = 'alice';

test('phone login: connecting → awaiting-code → code → active, session stored encrypted', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, firstName: 'Ann', username: `ann${Date.now() % 100000}` });
  const created = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(created.status, 'awaiting-code');
  const { resendAfter, ...login } = created.login as { resendAfter?: string };
  assert.equal(login, { method: 'phone', codeType: 'app', nextCodeType: 'sms', codeLength: 5 });
  assert.ok(Date.parse(resendAfter!) > Date.now(), 'resendAfter: when Telegram allows a resend');
  assert.ok(created.phone!.includes('*') && !created.phone!.includes(phone.slice(4, 8)), 'phone masked');
  const code = s.emu.lastCode(phone)!.code;
  const active = await s.connections.submitCode(OWNER, created.id, code);
  assert.is(active.status, 'active');
  assert.is(active.displayName, 'Ann');
  assert.is(active.login, undefined);
  const secrets = await s.db.sql`select name, ciphertext from connection_secrets where connection_id = ${created.id} order by name`;
  assert.equal(secrets.map((r) => r.name), ['phone', 'session']);
  for (const r of secrets) assert.match(r.ciphertext, /^local:v\d+:/);
  assert.not.ok(secrets.some((r) => r.ciphertext.includes(phone)));
  await until(async () => (await s.db.sql`select status from connections where id = ${created.id}`)[0]?.status === 'active', 'row active');
  const [row] = await s.db.sql`select snapshot::text as snap from connections where id = ${created.id}`;
  assert.not.match(row!.snap, code, 'the used code is not kept in the snapshot');
  const gauge = (await registry.getSingleMetric('telegram_sessions_active')!.get()).values.find((v) => v.labels.kind === 'user');
  assert.ok(gauge && gauge.value >= 1, 'telegram_sessions_active counts the account');
  const byState = (await registry.getSingleMetric('integration_connections')!.get()).values;
  assert.ok(byState.some((v) => v.labels.state === 'active' && v.labels.kind === 'user' && v.value >= 1));
  const latency = await registry.getSingleMetricAsString('telegram_api_latency_seconds');
  assert.match(latency, /method="auth.signIn"/);
});

test('wrong code → TG_CODE_INVALID and still awaiting-code; other owner → NOT_FOUND', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  const err = await s.connections.submitCode(OWNER, c.id, '00000').catch((e) => e);
  assert.is(err.code, 'TG_CODE_INVALID');
  assert.is((await s.connections.get(OWNER, c.id)).status, 'awaiting-code');
  assert.is((await s.connections.submitCode('mallory', c.id, '1').catch((e) => e)).code, 'NOT_FOUND');
  assert.is((await s.connections.get('mallory', c.id).catch((e) => e)).code, 'NOT_FOUND');
  assert.is((await s.connections.submitPassword(OWNER, c.id, 'x').catch((e) => e)).code, 'INVALID_STATE');
  const ok = await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  assert.is(ok.status, 'active');
});

test('2FA: code → awaiting-2fa with hint → wrong password → right password → active; no password in snapshot', async () => {
  const phone = newPhone();
  const password = 'correct horse battery staple';
  await s.emu.createUser({ phone, password });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  const two = await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code);
  assert.is(two.status, 'awaiting-2fa');
  const bad = await s.connections.submitPassword(OWNER, c.id, 'nope').catch((e) => e);
  assert.is(bad.code, 'TG_PASSWORD_INVALID');
  const ok = await s.connections.submitPassword(OWNER, c.id, password);
  assert.is(ok.status, 'active');
  await until(async () => (await s.db.sql`select status from connections where id = ${c.id}`)[0]?.status === 'active', 'row active');
  const rows = await s.db.sql`select snapshot::text as snap, error::text as err, login::text as login from connections where id = ${c.id}`;
  assert.not.ok(JSON.stringify(rows).includes(password));
  const detail = s.supervisor.actor(c.id)!;
  assert.not.ok(JSON.stringify(detail).includes(password));
  assert.ok(detail.transitions.length > 3);
});

test('QR login: awaiting-qr with tg:// url → accepted by a logged-in device → active', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, firstName: 'Quinn' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'qr' });
  assert.is(c.status, 'awaiting-qr');
  const qr = await s.connections.qr(OWNER, c.id);
  assert.match(qr.url, /^tg:\/\/login\?token=/);
  s.emu.acceptQr(qr.url.split('token=')[1]!, phone);
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'active', 'QR login active');
  assert.is((await s.connections.get(OWNER, c.id)).displayName, 'Quinn');
});

test('QR login with 2FA → awaiting-2fa → password → active', async () => {
  const phone = newPhone();
  await s.emu.createUser({ phone, password: 'pw-qr' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'qr' });
  const qr = await s.connections.qr(OWNER, c.id);
  s.emu.acceptQr(qr.url.split('token=')[1]!, phone);
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'awaiting-2fa', 'awaiting-2fa');
  assert.is((await s.connections.submitPassword(OWNER, c.id, 'pw-qr')).status, 'active');
});

test('bot: good token → active; bad token → TG_BOT_TOKEN_INVALID and nothing stored', async () => {
  const bot = s.emu.createBot({ username: `b${Date.now() % 1e6}_bot` });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(c.status, 'active');
  assert.is(c.platformUserId, String(bot.botId));
  const [secret] = await s.db.sql`select ciphertext from connection_secrets where connection_id = ${c.id}`;
  assert.not.ok(secret!.ciphertext.includes(bot.token));
  const before = (await s.db.sql`select count(*)::int as n from connections`)[0]!.n;
  const err = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: '123:not-a-real-token' }).catch((e) => e);
  assert.is(err.code, 'TG_BOT_TOKEN_INVALID');
  assert.is((await s.db.sql`select count(*)::int as n from connections`)[0]!.n, before);
  assert.is((await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token }).catch((e) => e)).code, 'INVALID_STATE');
});

test.run();
