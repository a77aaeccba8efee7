import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { body, routesServer, type RoutesServer } from './routes-harness.ts';

let t: RoutesServer;
type Headers = Record<string, string>;
const put = (purpose: string, as: Headers, payload: unknown) =>
  t.server.inject({ method: 'PUT', url: `/v1/me/consents/${purpose}`, headers: as, payload: payload as object });
const consents = async (as: Headers) => {
  const res = await t.server.inject({ method: 'GET', url: '/v1/me/consents', headers: as });
  assert.is(res.statusCode, 200, res.payload);
  return body(res).items as Array<{ purpose: string; version: string; granted: boolean; at: string }>;
};
const grant = async (as: Headers, purpose = 'processing', granted = true, version = '2026-05-01') => {
  const res = await put(purpose, as, { granted, version });
  assert.is(res.statusCode, 200, res.payload);
  return body(res);
};
const bot = (as: Headers) => t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'bot', token: `${100000 + Math.floor(Math.random() * 1e6)}:ABC-def` } });
const sendVia = (as: Headers, connectionId: string, path = '/v1/messages') => t.server.inject({
  method: 'POST', url: path, headers: as,
  payload: path === '/v1/messages' ? { connectionId, chat: '@chan_name', text: 'hi' } : { messages: [{ connectionId, chat: '@chan_name', text: 'hi' }] },
});

// ---------------------------------------------------------------------------------------------

const routes = suite('GET and PUT /v1/me/consents');
routes.before(async () => { t = await routesServer({ messages: true }); });
routes.after(async () => { await t.close(); });

routes('a decision is recorded with its time, answered, audited; GET shows the newest per purpose', async () => {
  const as = t.as();
  assert.equal(await consents(as), []);
  const started = Date.now();
  const granted = await grant(as);
  assert.equal(Object.keys(granted).sort(), ['at', 'granted', 'purpose', 'version']);
  assert.equal([granted.purpose, granted.version, granted.granted], ['processing', '2026-05-01', true]);
  assert.ok(Date.parse(granted.at) >= started - 1000);
  await grant(as, 'message-retention', false, 'v2');
  await grant(as, 'processing', false, 'v3');
  const now = await consents(as);
  assert.equal(now.map((c) => [c.purpose, c.version, c.granted]), [['message-retention', 'v2', false], ['processing', 'v3', false]]);
  const audit = body(await t.server.inject({ method: 'GET', url: '/v1/audit', headers: as })).items as Array<{ action: string; target: string; details: Record<string, unknown> }>;
  assert.equal(audit.filter((e) => e.action.startsWith('consent.')).map((e) => [e.action, e.target, e.details.version]),
    [['consent.withdrawn', 'processing', 'v3'], ['consent.withdrawn', 'message-retention', 'v2'], ['consent.granted', 'processing', '2026-05-01']]);
});

routes('tenancy: a caller sees only their own decisions, and their withdrawal stops only their connections', async () => {
  const bobSub = `u-${randomUUID()}`;
  const [alice, bob] = [t.as(), t.as(bobSub)];
  await grant(alice);
  assert.equal(await consents(bob), []);
  const alices = body(await bot(alice));
  const bobs = body(await bot(bob));
  await grant(bob, 'processing', false);
  assert.equal((await consents(alice)).map((c) => c.granted), [true]);
  const stopCalls = t.supervisor.calls.filter((c) => c.method === 'stopAll');
  assert.equal(stopCalls.at(-1)?.args, [bobSub, { code: 'CONSENT_WITHDRAWN', message: 'The consent to processing was withdrawn; grant it again, then reconnect' }]);
  const view = async (as: Headers, id: string) => body(await t.server.inject({ method: 'GET', url: `/v1/connections/${id}`, headers: as }));
  assert.is((await view(alice, alices.id)).status, 'active');
  const stopped = await view(bob, bobs.id);
  assert.equal([stopped.status, stopped.error.code], ['stopped', 'CONSENT_WITHDRAWN']);
  // Alice can still send; Bob cannot, and cannot restart his connection either.
  assert.is((await sendVia(alice, alices.id)).statusCode, 202);
  for (const res of [await sendVia(bob, bobs.id), await sendVia(bob, bobs.id, '/v1/messages/batch'), await bot(bob),
    await t.server.inject({ method: 'POST', url: `/v1/connections/${bobs.id}/reconnect`, headers: bob })]) {
    assert.is(res.statusCode, 403, res.payload);
    assert.is(body(res).error.code, 'CONSENT_REQUIRED');
    assert.match(body(res).error.message, /withdrawn/);
  }
  // Granted again, he reconnects and sends.
  await grant(bob);
  assert.is((await t.server.inject({ method: 'POST', url: `/v1/connections/${bobs.id}/reconnect`, headers: bob })).statusCode, 202);
});

routes('malformed input: 400 VALIDATION_ERROR with details, nothing recorded; no token: 401', async () => {
  const sub = `u-${randomUUID()}`;
  const as = t.as(sub);
  const cases: Array<[string, unknown, string]> = [
    ['marketing', { granted: true, version: 'v1' }, 'purpose'],
    ['PROCESSING', { granted: true, version: 'v1' }, 'purpose'],
    ['processing', { granted: 'yes', version: 'v1' }, 'granted'],
    ['processing', { version: 'v1' }, 'granted'],
    ['processing', { granted: true }, 'version'],
    ['processing', { granted: true, version: '' }, 'version'],
    ['processing', { granted: true, version: 'v 1' }, 'version'],
    ['processing', { granted: true, version: '<b>1</b>' }, 'version'],
    ['processing', { granted: true, version: 'x'.repeat(65) }, 'version'],
    ['processing', { granted: true, version: 7 }, 'version'],
    ['processing', { granted: true, version: 'v1', by: 'admin' }, 'by'],
    ['processing', [], 'must be of type object'],
  ];
  for (const [purpose, payload, field] of cases) {
    const res = await put(purpose, as, payload);
    assert.is(res.statusCode, 400, `${purpose} ${JSON.stringify(payload)}: ${res.payload}`);
    const err = body(res).error;
    assert.is(err.code, 'VALIDATION_ERROR');
    assert.ok(JSON.stringify(err.details).includes(field), `${field} named in ${JSON.stringify(err.details)}`);
  }
  const [{ n }] = await t.sql<{ n: number }[]>`select count(*)::int as n from consents where owner = ${sub}`;
  assert.is(n, 0);
  assert.is((await t.server.inject({ method: 'GET', url: '/v1/me/consents' })).statusCode, 401);
  assert.is((await t.server.inject({ method: 'PUT', url: '/v1/me/consents/processing', payload: { granted: true, version: 'v1' } })).statusCode, 401);
});

routes('without CONSENT_REQUIRED a caller who never decided connects and sends', async () => {
  const as = t.as();
  const created = await bot(as);
  assert.is(created.statusCode, 201);
  assert.is((await sendVia(as, body(created).id)).statusCode, 202);
});

routes('withdrawing message-retention blanks the texts already sent, and the answers show them blank', async () => {
  const as = t.as();
  const conn = body(await bot(as)).id;
  const sent = body(await sendVia(as, conn));
  const queued = body(await sendVia(as, conn));
  await t.sql`update messages set status = 'sent', sent_at = now() where id = ${sent.id}`;
  await grant(as, 'message-retention', false);
  const read = async (id: string) => body(await t.server.inject({ method: 'GET', url: `/v1/messages/${id}`, headers: as }));
  assert.equal([(await read(sent.id)).text, (await read(queued.id)).text], ['', 'hi']);
  const list = await t.server.inject({ method: 'GET', url: '/v1/messages', headers: as });
  assert.is(list.statusCode, 200, 'a blank text passes the response schema');
  const exported = body(await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: as }));
  assert.equal(exported.messages.map((m: { id: string; text: string }) => [m.id, m.text]), [[sent.id, ''], [queued.id, 'hi']]);
});

routes('the export holds the whole consent history, oldest first, and nothing of another caller', async () => {
  const [as, other] = [t.as(), t.as()];
  await grant(as, 'processing', true, 'v1');
  await grant(as, 'message-retention', true, 'v1');
  await grant(as, 'processing', false, 'v2');
  await grant(other, 'processing', true, 'other-v9');
  const res = await t.server.inject({ method: 'GET', url: '/v1/me/export', headers: as });
  assert.is(res.statusCode, 200);
  const data = body(res);
  assert.equal(data.consents.map((c: { purpose: string; version: string; granted: boolean }) => [c.purpose, c.version, c.granted]),
    [['processing', 'v1', true], ['message-retention', 'v1', true], ['processing', 'v2', false]]);
  assert.ok(data.consents.every((c: { at: string }) => !Number.isNaN(Date.parse(c.at))));
  assert.not.ok(res.payload.includes('other-v9'));
});

routes.run();

// ---------------------------------------------------------------------------------------------

const required = suite('CONSENT_REQUIRED=true');
required.before(async () => { t = await routesServer({ messages: true, consentRequired: true }); });
required.after(async () => { await t.close(); });

required('connecting and sending answer 403 CONSENT_REQUIRED until processing is granted; nothing is stored', async () => {
  const sub = `u-${randomUUID()}`;
  const as = t.as(sub);
  const refused = await bot(as);
  assert.is(refused.statusCode, 403, refused.payload);
  assert.equal([body(refused).error.code, /PUT \/v1\/me\/consents\/processing/.test(body(refused).error.message)], ['CONSENT_REQUIRED', true]);
  const phone = await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'user', phone: '+12015550123' } });
  assert.is(phone.statusCode, 403);
  assert.is(t.supervisor.calls.filter((c) => c.method === 'create' && c.args[0] === sub).length, 0, 'the service was never asked');
  // A decision for another purpose, or a withdrawal, does not count.
  await grant(as, 'message-retention');
  assert.is((await bot(as)).statusCode, 403);
  await grant(as, 'processing', false);
  assert.is((await bot(as)).statusCode, 403);

  await grant(as, 'processing', true);
  const created = await bot(as);
  assert.is(created.statusCode, 201);
  assert.is((await sendVia(as, body(created).id)).statusCode, 202);
  assert.is((await sendVia(as, body(created).id, '/v1/messages/batch')).statusCode, 202);

  // Another caller without a decision is still refused, sending included (an id of someone else's connection too).
  const other = t.as();
  assert.is((await sendVia(other, body(created).id)).statusCode, 403);
});

required('malformed input is a 400 before the consent is looked at; reads need no consent', async () => {
  const as = t.as();
  const bad = await t.server.inject({ method: 'POST', url: '/v1/connections', headers: as, payload: { platform: 'telegram', kind: 'bot', token: 'nope' } });
  assert.is(bad.statusCode, 400);
  const badSend = await t.server.inject({ method: 'POST', url: '/v1/messages', headers: as, payload: { text: '' } });
  assert.is(badSend.statusCode, 400);
  for (const url of ['/v1/connections', '/v1/messages', '/v1/audit', '/v1/me/consents', '/v1/me/export']) {
    assert.is((await t.server.inject({ method: 'GET', url, headers: as })).statusCode, 200, url);
  }
  assert.is((await t.server.inject({ method: 'DELETE', url: '/v1/me', headers: as })).statusCode, 204, 'erasure needs no consent');
});

required.run();
