// The real supervisor is held to QUOTA_CONNECTIONS_PER_OWNER (the store checks it in the row's
// transaction): the connection past the quota is refused with nothing stored and no actor started,
// for bots (after getMe) and for phone logins (before any code is requested).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { newPhone, startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack({ connections: { maxConnectionsPerOwner: 2 } }); });
test.after(async () => { await s.close(); });

let n = 0;
const owner = () => `quota-${process.pid}-${n++}`;
const rows = async (o: string, table: 'connections' | 'audit') =>
  (await s.db.sql<{ n: number }[]>`select count(*)::int as n from ${s.db.sql(table)} where owner = ${o}`)[0]!.n;
const bot = () => s.emu.createBot({ username: `qt${process.pid}x${n++}_bot` });

test('the connection past the quota is QUOTA_EXCEEDED: no row, no secret, no audit entry, no actor, no code sent', async () => {
  const o = owner();
  const first = await s.connections.create(o, { platform: 'telegram', kind: 'bot', token: bot().token });
  const second = await s.connections.create(o, { platform: 'telegram', kind: 'bot', token: bot().token });
  assert.equal([first.status, second.status], ['active', 'active']);
  const actorsBefore = s.supervisor.actors().items.length;
  const secretsBefore = (await s.db.sql`select 1 from connection_secrets`).length;

  const err = await s.connections.create(o, { platform: 'telegram', kind: 'bot', token: bot().token }).catch((e: unknown) => e);
  assert.instance(err, AppError);
  assert.is((err as AppError).code, 'QUOTA_EXCEEDED');
  assert.is((err as AppError).status, 403);

  const phone = newPhone();
  await s.emu.createUser({ phone });
  const err2 = await s.connections.create(o, { platform: 'telegram', kind: 'user', method: 'phone', phone }).catch((e: unknown) => e);
  assert.is((err2 as AppError).code, 'QUOTA_EXCEEDED');
  assert.is(s.emu.lastCode(phone), undefined, 'no code requested for a connection that was refused');

  assert.is(await rows(o, 'connections'), 2);
  assert.is(await rows(o, 'audit'), 2, 'only the two creates are audited');
  assert.is((await s.db.sql`select 1 from connection_secrets`).length, secretsBefore);
  assert.is(s.supervisor.actors().items.length, actorsBefore);

  // Another owner has a quota of their own; removing one makes room again.
  assert.is((await s.connections.create(owner(), { platform: 'telegram', kind: 'bot', token: bot().token })).status, 'active');
  await s.connections.remove(o, first.id);
  assert.is((await s.connections.create(o, { platform: 'telegram', kind: 'bot', token: bot().token })).status, 'active');
});

test.run();
