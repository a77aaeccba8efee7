// Withdrawing the consent to processing against the real supervisor and the emulator: every running
// connection of the caller stops (status `stopped`, error CONSENT_WITHDRAWN, persisted, kept across
// a restart), another caller's keep running, and a stopped one starts again only once granted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectionsPlugin } from '../../src/api/connections.plugin.ts';
import { consentsPlugin } from '../../src/api/consents.plugin.ts';
import { getConnection } from '../../src/store/connections.ts';
import { newPhone, startStack, until, type Stack } from '../helpers/stack.ts';
import { bearer, shellServer } from './shell-server.ts';

let s: Stack;
let shell: Awaited<ReturnType<typeof shellServer>>;
test.before(async () => {
  s = await startStack();
  shell = await shellServer({ rateLimit: { connect: 1000, send: 1000, status: 10_000 } });
  const options = { sql: s.db.sql, connections: s.connections, platforms: s.platforms };
  await shell.server.register([
    { plugin: connectionsPlugin, options },
    { plugin: consentsPlugin, options: { sql: s.db.sql, connections: s.connections } },
  ]);
  await shell.server.initialize();
});
test.after(async () => {
  await shell.server.stop();
  await s.close();
});

let n = 0;
const sub = () => `consent-${process.pid}-${n++}`;
const as = (who: string) => bearer(shell.token(who));
const call = async (who: string, method: string, url: string, payload?: object) => {
  const res = await shell.server.inject({ method, url, headers: as(who), ...(payload && { payload }) });
  return { status: res.statusCode, body: JSON.parse(res.payload || '{}') as Record<string, any> };
};
const bot = async (who: string) => {
  const { token } = s.emu.createBot({ username: `cw${process.pid}x${n++}_bot` });
  const res = await call(who, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token });
  assert.is(res.status, 201, JSON.stringify(res.body));
  return res.body.id as string;
};

test('withdrawing processing stops every connection of the caller, logins included; others keep running', async () => {
  const [alice, bob] = [sub(), sub()];
  const alicesBot = await bot(alice);
  const phone = newPhone();
  await s.emu.createUser({ phone });
  const login = await call(alice, 'POST', '/v1/connections', { platform: 'telegram', kind: 'user', phone });
  assert.equal([login.status, login.body.status], [201, 'awaiting-code']);
  const bobsBot = await bot(bob);

  const res = await call(alice, 'PUT', '/v1/me/consents/processing', { granted: false, version: 'v1' });
  assert.is(res.status, 200, JSON.stringify(res.body));
  for (const id of [alicesBot, login.body.id as string]) {
    const view = (await call(alice, 'GET', `/v1/connections/${id}`)).body;
    assert.equal([view.status, view.error?.code], ['stopped', 'CONSENT_WITHDRAWN'], id);
    assert.is(s.supervisor.actor(id)?.state, 'stopped');
    // Persisted with its reason (the supervisor writes off the request's path).
    await until(async () => {
      const row = await getConnection(s.db.sql, alice, id);
      return row?.status === 'stopped' && row.error?.code === 'CONSENT_WITHDRAWN';
    }, `row of ${id} stopped`);
  }
  assert.is((await call(bob, 'GET', `/v1/connections/${bobsBot}`)).body.status, 'active');
  const stops = await s.db.sql<{ target: string; details: { reason: string } }[]>`
    select target, details from audit where owner = ${alice} and action = 'connection.stopped' order by id`;
  assert.equal(stops.map((r) => [r.target, r.details.reason]).sort(), [[alicesBot, 'CONSENT_WITHDRAWN'], [login.body.id, 'CONSENT_WITHDRAWN']].sort());
  // A login cannot continue: the code step finds the connection stopped.
  const code = await call(alice, 'POST', `/v1/connections/${login.body.id}/code`, { code: '12345' });
  assert.is(code.status, 409);

  // Repeating the withdrawal is harmless; reconnecting needs the consent back.
  assert.is((await call(alice, 'PUT', '/v1/me/consents/processing', { granted: false, version: 'v1' })).status, 200);
  const refused = await call(alice, 'POST', `/v1/connections/${alicesBot}/reconnect`);
  assert.equal([refused.status, refused.body.error.code], [403, 'CONSENT_REQUIRED']);
  assert.is((await call(alice, 'PUT', '/v1/me/consents/processing', { granted: true, version: 'v2' })).status, 200);
  assert.is((await call(alice, 'GET', `/v1/connections/${alicesBot}`)).body.status, 'stopped', 'granting again restarts nothing by itself');
  assert.is((await call(alice, 'POST', `/v1/connections/${alicesBot}/reconnect`)).status, 202);
  await until(async () => (await call(alice, 'GET', `/v1/connections/${alicesBot}`)).body.status === 'active', 'bot active again');
});

test('a connection stopped by a withdrawal stays stopped, with its reason, across a daemon restart', async () => {
  const carol = sub();
  const id = await bot(carol);
  assert.is((await call(carol, 'PUT', '/v1/me/consents/processing', { granted: false, version: 'v1' })).status, 200);
  await until(async () => (await getConnection(s.db.sql, carol, id))?.status === 'stopped', 'persisted');
  await s.restart();
  assert.is(s.supervisor.actor(id), undefined, 'not started at boot');
  const view = await s.connections.get(carol, id);
  assert.equal([view.status, view.error?.code], ['stopped', 'CONSENT_WITHDRAWN']);
});

test.run();
