// Connecting a WhatsApp business number through the API against the Cloud API emulator: the token is
// checked against the number before anything is stored; never answered back, never another owner's.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startWaWorld, until, type WaWorld } from './world.ts';

const test = suite<{ w: WaWorld }>('whatsapp connect e2e', {} as { w: WaWorld });

test.before(async (ctx) => {
  try {
    ctx.w = await startWaWorld();
  } catch (err) {
    console.error('setup failed', err);
    throw err;
  }
});
test.after(async (ctx) => { await ctx.w?.stop(); });

test('a number with its system-user token → 201, active, phone masked, token nowhere in the answer', async ({ w }) => {
  const n = await w.number();
  const r = await w.call('alice', 'POST', '/v1/connections', { platform: 'whatsapp', kind: 'business-number', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken, wabaId: n.wabaId });
  assert.is(r.status, 201, JSON.stringify(r.body));
  assert.is(r.body.platform, 'whatsapp');
  assert.is(r.body.kind, 'business-number');
  assert.not.ok(JSON.stringify(r.body).includes(n.accessToken), 'token in the answer');
  const digits = n.displayPhoneNumber.replace(/\D/g, '');
  assert.not.ok(JSON.stringify(r.body).includes(digits), 'unmasked number in the answer');
  const active = await until(async () => {
    const g = await w.call('alice', 'GET', `/v1/connections/${r.body.id}`);
    return g.body.status === 'active' ? g.body : undefined;
  }, 'active');
  assert.not.ok(JSON.stringify(active).includes(n.accessToken));
});

test('a token the Graph API refuses → 422 PLATFORM_AUTH_INVALID, nothing stored', async ({ w }) => {
  const n = await w.number();
  const before = (await w.call('bob', 'GET', '/v1/connections')).body.items.length;
  const r = await w.call('bob', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: 'EAAGnotatoken1234567890' });
  assert.is(r.status, 422, JSON.stringify(r.body));
  assert.is(r.body.error.code, 'PLATFORM_AUTH_INVALID');
  assert.not.ok(JSON.stringify(r.body).includes('EAAGnotatoken'), 'token echoed');
  assert.is((await w.call('bob', 'GET', '/v1/connections')).body.items.length, before);
});

test('a token of another business for this number → 422 PLATFORM_AUTH_INVALID', async ({ w }) => {
  const mine = await w.number();
  const theirs = await w.number();
  const r = await w.call('bob', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: mine.phoneNumberId, accessToken: theirs.accessToken });
  assert.is(r.status, 422, JSON.stringify(r.body));
  assert.is(r.body.error.code, 'PLATFORM_AUTH_INVALID');
  const waba = await w.call('bob', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: mine.phoneNumberId, accessToken: mine.accessToken, wabaId: theirs.wabaId });
  assert.is(waba.status, 422, JSON.stringify(waba.body));
});

test('the same number twice by one owner → 409', async ({ w }) => {
  const n = await w.number();
  const body = { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken };
  assert.is((await w.call('carol', 'POST', '/v1/connections', body)).status, 201);
  const again = await w.call('carol', 'POST', '/v1/connections', body);
  assert.is(again.status, 409, JSON.stringify(again.body));
});

test('another caller\'s WhatsApp connection is 404', async ({ w }) => {
  const n = await w.number();
  const r = await w.call('dave', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
  assert.is(r.status, 201);
  assert.is((await w.call('eve', 'GET', `/v1/connections/${r.body.id}`)).status, 404);
  assert.is((await w.call('eve', 'DELETE', `/v1/connections/${r.body.id}`)).status, 404);
});

test('a token revoked after connecting (Graph 190): the next send ends the connection in error PLATFORM_AUTH_REVOKED', async ({ w }) => {
  const n = await w.number();
  const c = await w.call('grace', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
  await until(async () => (await w.call('grace', 'GET', `/v1/connections/${c.body.id}`)).body.status === 'active', 'active');
  await w.control('POST', '/revoke', { account: n.phoneNumberId });
  const to = '+15550109999';
  await w.control('POST', '/events', { type: 'message', phoneNumberId: n.phoneNumberId, from: to, text: 'hi' });
  const m = await w.call('grace', 'POST', '/v1/messages', { connectionId: c.body.id, chat: to, text: 'after revoke' });
  assert.is(m.status, 202);
  const conn = await until(async () => {
    const g = (await w.call('grace', 'GET', `/v1/connections/${c.body.id}`)).body;
    return g.status === 'error' ? g : undefined;
  }, 'error');
  assert.is(conn.error.code, 'PLATFORM_AUTH_REVOKED', JSON.stringify(conn));
  assert.not.ok(JSON.stringify(conn).includes(n.accessToken));
  assert.equal(await w.control('GET', '/messages', undefined, { phoneNumberId: n.phoneNumberId }), []);
});

test('malformed bodies → 400 VALIDATION_ERROR, never 500', async ({ w }) => {
  for (const body of [
    { platform: 'whatsapp' },
    { platform: 'whatsapp', phoneNumberId: 'abc', accessToken: 'EAAG1234567890' },
    { platform: 'whatsapp', phoneNumberId: '123', accessToken: 'short' },
    { platform: 'whatsapp', phoneNumberId: '123', accessToken: 'EAAG 1234567890 with spaces' },
    { platform: 'whatsapp', phoneNumberId: '123', accessToken: 'EAAG1234567890', kind: 'bot' },
    { platform: 'whatsapp', phoneNumberId: 123, accessToken: ['x'] },
  ]) {
    const r = await w.call('frank', 'POST', '/v1/connections', body);
    assert.is(r.status, 400, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
    assert.is(r.body.error.code, 'VALIDATION_ERROR');
  }
});

test.run();
