// Creating a connection is all or nothing: its row and its secret (bot token, phone) are written in
// one transaction, after the secret is encrypted. A keyring that fails (Vault down) leaves no row
// behind: no bot that can never be added again, no connection that boots without its secret.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { newPhone, startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

let n = 0;
const owner = () => `create-${process.pid}-${n++}`;
const rowsOf = async (o: string) => (await s.db.sql<{ n: number }[]>`select count(*)::int as n from connections where owner = ${o}`)[0]!.n;

/** The real keyring, failing its next encrypt the way an unreachable Vault does. */
function failNextEncrypt() {
  const real = s.keyring.encrypt.bind(s.keyring);
  s.keyring.encrypt = async () => {
    s.keyring.encrypt = real;
    throw new AppError('DEPENDENCY_UNAVAILABLE', 'vault unreachable');
  };
}

test('bot: the keyring fails → no row, no audit entry; the same bot can be added right after', async () => {
  const o = owner();
  const bot = s.emu.createBot({ username: `cr${process.pid}x${n++}_bot` });
  failNextEncrypt();
  const err = await s.connections.create(o, { platform: 'telegram', kind: 'bot', token: bot.token }).catch((e: unknown) => e);
  assert.instance(err, AppError);
  assert.is((err as AppError).code, 'DEPENDENCY_UNAVAILABLE');
  assert.is(await rowsOf(o), 0);
  assert.is((await s.db.sql`select 1 from audit where owner = ${o}`).length, 0);
  const c = await s.connections.create(o, { platform: 'telegram', kind: 'bot', token: bot.token });
  assert.is(c.status, 'active');
  const secrets = await s.db.sql`select name from connection_secrets where connection_id = ${c.id}`;
  assert.equal(secrets.map((r) => r.name), ['bot_token']);
});

test('phone login: the keyring fails → no row; the next try sends one code and waits for it', async () => {
  const o = owner();
  const phone = newPhone();
  await s.emu.createUser({ phone });
  failNextEncrypt();
  const err = await s.connections.create(o, { platform: 'telegram', kind: 'user', method: 'phone', phone }).catch((e: unknown) => e);
  assert.is((err as AppError).code, 'DEPENDENCY_UNAVAILABLE');
  assert.is(await rowsOf(o), 0);
  assert.is(s.emu.lastCode(phone), undefined, 'no code was requested for a connection that does not exist');
  const c = await s.connections.create(o, { platform: 'telegram', kind: 'user', method: 'phone', phone });
  assert.is(c.status, 'awaiting-code');
  assert.is(await rowsOf(o), 1);
  const secrets = await s.db.sql`select name from connection_secrets where connection_id = ${c.id}`;
  assert.ok(secrets.some((r) => r.name === 'phone'), 'the phone is stored with the row');
});

test.run();
