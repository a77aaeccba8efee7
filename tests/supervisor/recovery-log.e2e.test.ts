// The 2FA recovery's new password and e-mailed code reach Telegram once and are written nowhere: not
// in the daemon's log (every line the supervisor, its drivers and the connection service write, at
// the most verbose level), not in a row, a snapshot or the audit. login-codes.e2e.test.ts checks the
// rows; this file adds the log, which a silent logger there cannot show.
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';

const OWNER = 'recovery-log-owner';
const lines: string[] = [];
const capture = () => winston.createLogger({
  level: 'silly',
  transports: [new winston.transports.Stream({ stream: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) })],
});

let s: Stack;
test.before(async () => { s = await startStack({ supervisor: { logger: capture() }, connections: { logger: capture() } }); });
test.after(async () => { await s.close(); });

test('recovery by e-mailed code with a new password: active; neither the new password nor the code in any log line, row or audit entry', async () => {
  const phone = newPhone();
  const newPassword = `log-probe-${Date.now()}-passphrase`;
  await s.emu.createUser({ phone, password: 'old-one', recoveryEmail: 'ann@example.org' });
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is((await s.connections.submitCode(OWNER, c.id, s.emu.lastCode(phone)!.code)).status, 'awaiting-2fa');
  await s.connections.requestPasswordRecovery!(OWNER, c.id);
  // A wrong code first: the failing path logs too.
  assert.is((await s.connections.recoverPassword!(OWNER, c.id, '000000', newPassword).catch((e) => e)).code, 'TG_CODE_INVALID');
  const code = s.emu.recoveryCode(phone)!.code;
  assert.is((await s.connections.recoverPassword!(OWNER, c.id, code, newPassword)).status, 'active');
  await until(async () => (await s.db.sql`select status from connections where id = ${c.id}`)[0]?.status === 'active', 'row active');
  // A restart writes and reads the snapshot again.
  await s.restart();
  await until(async () => (await s.connections.get(OWNER, c.id)).status === 'active', 'active after restart');
  assert.ok(lines.length > 0, 'the logger captured lines (else this test proves nothing)');
  const logged = lines.join('\n');
  assert.not.ok(logged.includes(newPassword), 'the new password is in a log line');
  assert.not.ok(logged.includes('old-one'), 'the old password is in a log line');
  assert.not.ok(new RegExp(`\\b${code}\\b`).test(logged), 'the recovery code is in a log line');
  const rows = await s.db.sql`select snapshot::text as snap, error::text as err, login::text as login from connections where id = ${c.id}`;
  const secrets = await s.db.sql`select name from connection_secrets where connection_id = ${c.id}`;
  const audit = await s.db.sql`select action, details::text as d from audit where target = ${c.id}`;
  const stored = JSON.stringify([rows, audit]);
  assert.not.ok(stored.includes(newPassword), 'the new password is in a row or audit entry');
  assert.equal(secrets.map((r) => r.name).sort(), ['phone', 'session'], 'no password secret: only the phone and the session are kept');
  assert.ok(audit.some((r) => /recover/.test(String(r.action))), `the recovery is audited: ${audit.map((r) => r.action).join(', ')}`);
});

test.run();
