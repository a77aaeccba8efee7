import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock } from './support/gramjs.ts';
import { Receiver, jpeg, until, validSignature } from './support/receiver.ts';

// The WhatsApp Cloud API emulator over plain HTTP: a business number and its system-user token, the
// 24-hour service window (free text only after the customer wrote, templates anywhere), templates and
// their parameters, pair rate and throughput limits, signed webhooks for incoming messages and for the
// statuses sent → delivered → read, and 190 for revoked or expired tokens.

let emu: Emulator;
let rx: Receiver;
let api: string;

test.before(async () => {
  rx = await new Receiver().start();
  rx.verifyToken = undefined;
  emu = await startEmulator({ clock: new ManualClock(), platforms: ['whatsapp'], platformOptions: { whatsapp: { statusDelayMs: 0, webhookRetries: 0 } } });
  api = emu.platforms.get('whatsapp')!.urls.api!;
  rx.verifyToken = emu.apps.meta.verifyToken;
  assert.is((await ctl('POST', '/whatsapp/webhook-url', { url: `${rx.url}/webhook` })).status, 200);
});
test.after(async () => {
  await emu.stop();
  await rx.close();
});

async function ctl(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emu.control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function send(number: { phoneNumberId: string; accessToken: string }, body: Record<string, unknown>, token = number.accessToken): Promise<{ status: number; json: any }> {
  const res = await fetch(`${api}/v23.0/${number.phoneNumberId}/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ messaging_product: 'whatsapp', ...body }) });
  return { status: res.status, json: await res.json() };
}

const text = (to: string, body: string) => ({ recipient_type: 'individual', to, type: 'text', text: { body } });
const hello = (to: string) => ({ to, type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } });
const advance = async (seconds: number) => assert.is((await ctl('POST', '/clock', { advanceS: seconds })).status, 200);
const newNumber = async (extra: Record<string, unknown> = {}) => {
  const n = await ctl('POST', '/whatsapp/numbers', extra);
  assert.is(n.status, 200);
  return n.json as { phoneNumberId: string; wabaId: string; accessToken: string; displayPhoneNumber: string };
};
const statusesOf = (wamid: string) => rx.webhooks.flatMap((w) => w.body.entry[0].changes[0].value.statuses ?? []).filter((s: any) => s.id === wamid);

test('a number and its token: GET /{phone-number-id} verifies them; another business\'s token sees nothing', async () => {
  const n = await newNumber({ displayPhoneNumber: '+1 555 010 0001', verifiedName: 'Jaspers Market' });
  assert.match(n.phoneNumberId, /^\d{17}$/);
  assert.is(n.displayPhoneNumber, '+1 555-010-0001');
  const res = await fetch(`${api}/v23.0/${n.phoneNumberId}`, { headers: { authorization: `Bearer ${n.accessToken}` } });
  assert.is(res.status, 200);
  assert.equal(await res.json(), { id: n.phoneNumberId, display_phone_number: '+1 555-010-0001', verified_name: 'Jaspers Market', quality_rating: 'GREEN' });
  const other = await newNumber();
  const foreign = await fetch(`${api}/${n.phoneNumberId}?access_token=${other.accessToken}`);
  assert.is(foreign.status, 400);
  assert.is(((await foreign.json()) as any).error.error_subcode, 33);
  const bad = await fetch(`${api}/${n.phoneNumberId}`, { headers: { authorization: 'Bearer EAAGnot-a-token' } });
  assert.is(bad.status, 401);
  assert.is(((await bad.json()) as any).error.code, 190);
  assert.is((await ctl('POST', '/whatsapp/numbers', { displayPhoneNumber: '+1 555 010 0001' })).status, 409);
  assert.is((await ctl('POST', '/whatsapp/numbers', { displayPhoneNumber: 'call me' })).status, 400);
});

test('the 24-hour window: free text refused (131047) until the customer writes; a signed incoming message; text then allowed', async () => {
  const n = await newNumber();
  const customer = '+44 7700 900123';
  const refused = await send(n, text(customer, 'hi'));
  assert.is(refused.status, 400);
  assert.is(refused.json.error.code, 131047);
  assert.is(refused.json.error.error_data.details, 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.');
  assert.is((await send(n, { to: customer, type: 'image', image: { link: rx.serve('w.jpg', jpeg('w')) } })).json.error.code, 131047, 'media is free-form too');

  const before = rx.webhooks.length;
  const incoming = await ctl('POST', '/whatsapp/events', { from: customer, phoneNumberId: n.phoneNumberId, text: 'Hello shop', name: 'Sheena' });
  assert.is(incoming.status, 200);
  assert.is(incoming.json.delivered, true);
  const hook = rx.webhooks[before]!;
  assert.ok(validSignature(hook.raw, hook.signature256, emu.apps.meta.appSecret));
  assert.is(hook.body.object, 'whatsapp_business_account');
  assert.is(hook.body.entry[0].id, n.wabaId);
  const value = hook.body.entry[0].changes[0].value;
  assert.is(hook.body.entry[0].changes[0].field, 'messages');
  assert.equal(value.metadata, { display_phone_number: n.displayPhoneNumber.replace(/\D/g, ''), phone_number_id: n.phoneNumberId });
  assert.equal(value.contacts, [{ profile: { name: 'Sheena' }, wa_id: '447700900123' }]);
  assert.is(value.messages[0].from, '447700900123');
  assert.is(value.messages[0].id, incoming.json.messageId);
  assert.equal(value.messages[0].text, { body: 'Hello shop' });

  const ok = await send(n, text(customer, 'Hi Sheena'));
  assert.is(ok.status, 200);
  assert.equal(ok.json.contacts, [{ input: customer, wa_id: '447700900123' }]);
  assert.match(ok.json.messages[0].id, /^wamid\./);
  const statuses = await until(() => (statusesOf(ok.json.messages[0].id).length === 3 ? statusesOf(ok.json.messages[0].id) : undefined), 'three statuses');
  assert.equal(statuses.map((s: any) => s.status), ['sent', 'delivered', 'read']);
  assert.is(statuses[0].recipient_id, '447700900123');
  assert.is(statuses[0].pricing.category, 'service');
  const read = await fetch(`${api}/${n.phoneNumberId}/messages`, { method: 'POST', headers: { authorization: `Bearer ${n.accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ messaging_product: 'whatsapp', status: 'read', message_id: incoming.json.messageId }) });
  assert.equal(await read.json(), { success: true });

  await advance(24 * 3600 - 1);
  assert.is((await send(n, text(customer, 'still inside'))).status, 200);
  await advance(1);
  assert.is((await send(n, text(customer, 'too late'))).json.error.code, 131047, 'the window closes 24 h after the customer\'s message');
  const log = (await ctl('GET', `/whatsapp/messages?phoneNumberId=${n.phoneNumberId}`)).json;
  assert.equal(log.map((m: any) => [m.to, m.type, m.text]), [['447700900123', 'text', 'Hi Sheena'], ['447700900123', 'text', 'still inside']]);
});

test('templates go anywhere: hello_world, a template with parameters; unknown template 132001, wrong parameter count 132000', async () => {
  const n = await newNumber();
  const sent = await send(n, hello('+15550100999'));
  assert.is(sent.status, 200);
  assert.is(sent.json.messages[0].message_status, 'accepted');
  assert.is((await ctl('POST', '/whatsapp/templates', { name: 'order_ready', language: 'en_US', body: 'Order {{1}} is ready, {{2}}.' })).status, 200);
  assert.is((await ctl('POST', '/whatsapp/templates', { name: 'Bad Name', body: 'x' })).status, 400);
  const withParams = await send(n, { to: '15550100999', type: 'template', template: { name: 'order_ready', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: '#42' }, { type: 'text', text: 'Ana' }] }] } });
  assert.is(withParams.status, 200);
  const missing = await send(n, { to: '15550100999', type: 'template', template: { name: 'order_ready', language: { code: 'de_DE' } } });
  assert.is(missing.status, 404);
  assert.is(missing.json.error.code, 132001);
  const count = await send(n, { to: '15550100999', type: 'template', template: { name: 'order_ready', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'only one' }] }] } });
  assert.is(count.json.error.code, 132000);
  const log = (await ctl('GET', `/whatsapp/messages?phoneNumberId=${n.phoneNumberId}&to=+15550100999`)).json;
  assert.is(log[1].template.body, 'Order #42 is ready, Ana.');
  const statuses = await until(() => (statusesOf(sent.json.messages[0].id).length === 3 ? statusesOf(sent.json.messages[0].id) : undefined), 'template statuses');
  assert.equal(statuses[0].pricing, { billable: true, pricing_model: 'PMP', category: 'utility' });
  const malformed = await send(n, { to: 'not a number', type: 'text', text: { body: 'x' } });
  assert.is(malformed.json.error.code, 100);
  assert.is((await send(n, { to: '15550100999', type: 'carrier_pigeon' })).json.error.code, 100);
  const noProduct = await fetch(`${api}/${n.phoneNumberId}/messages`, { method: 'POST', headers: { authorization: `Bearer ${n.accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ to: '15550100999', type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } }) });
  assert.is(((await noProduct.json()) as any).error.code, 100, 'messaging_product is required');
});

test('media by link: the emulator fetches it (sha256); a link it cannot fetch → failed status 131053', async () => {
  const n = await newNumber();
  await ctl('POST', '/whatsapp/events', { from: '+15550100777', phoneNumberId: n.phoneNumberId, text: 'send me the menu' });
  const bytes = jpeg('menu');
  const ok = await send(n, { to: '15550100777', type: 'image', image: { link: rx.serve('menu.jpg', bytes), caption: 'Menu' } });
  assert.is(ok.status, 200);
  const msg = await until(async () => (await ctl('GET', `/whatsapp/messages?phoneNumberId=${n.phoneNumberId}`)).json.find((m: any) => m.id === ok.json.messages[0].id && m.mediaSha256), 'media fetched');
  assert.is(msg.mediaSha256, createHash('sha256').update(bytes).digest('hex'));
  assert.is(msg.text, 'Menu');
  const bad = await send(n, { to: '15550100777', type: 'document', document: { link: 'https://example.com/menu.pdf' } });
  assert.is(bad.status, 200, 'the link is fetched after the answer');
  const failed = await until(() => statusesOf(bad.json.messages[0].id)[0], 'failed status');
  assert.is(failed.status, 'failed');
  assert.is(failed.errors[0].code, 131053);
});

test('pair rate: a burst of 45 to one customer, the 46th → 131056 until time is paid back; throughput 80/s → 130429', async () => {
  const n = await newNumber();
  const customer = '15550100555';
  for (let i = 0; i < 45; i++) assert.is((await send(n, hello(customer))).status, 200, `burst message ${i + 1}`);
  const limited = await send(n, hello(customer));
  assert.is(limited.status, 400);
  assert.is(limited.json.error.code, 131056);
  assert.is((await send(n, hello('15550100556'))).status, 200, 'another customer is not limited');
  await advance(6);
  assert.is((await send(n, hello(customer))).status, 200, 'one message per 6 s is paid back');
  assert.is((await send(n, hello(customer))).json.error.code, 131056);

  const busy = await newNumber();
  // 80 sends inside one second of the frozen clock, each to a different customer.
  for (let i = 0; i < 80; i++) assert.is((await send(busy, hello(`1555020${String(i).padStart(4, '0')}`))).status, 200);
  const throttled = await send(busy, hello('15550300000'));
  assert.is(throttled.status, 429);
  assert.is(throttled.json.error.code, 130429);
  await advance(1);
  assert.is((await send(busy, hello('15550300000'))).status, 200);
});

test('tokens: revoked → 401 code 190 (458 or 460); a token that expires → 463; other numbers keep working', async () => {
  const a = await newNumber();
  const b = await newNumber();
  const revoked = await ctl('POST', '/whatsapp/revoke', { account: a.phoneNumberId });
  assert.is(revoked.status, 200);
  const dead = await send(a, hello('15550100001'));
  assert.is(dead.status, 401);
  assert.is(dead.json.error.code, 190);
  assert.is(dead.json.error.error_subcode, 458);
  assert.is((await send(b, hello('15550100001'))).status, 200);
  await ctl('POST', '/whatsapp/revoke', { account: b.wabaId, reason: 'password-changed' });
  assert.is((await send(b, hello('15550100001'))).json.error.error_subcode, 460);
  const c = await newNumber({ tokenExpiresInS: 3600 });
  assert.is((await send(c, hello('15550100001'))).status, 200);
  await advance(3600);
  const expired = await send(c, hello('15550100001'));
  assert.is(expired.status, 401);
  assert.is(expired.json.error.error_subcode, 463);
  assert.is((await ctl('POST', '/whatsapp/revoke', { account: '123' })).status, 404);
});

test('window errors as a failed status (windowErrors: webhook); a badly signed event; an unsubscribed business gets no webhooks', async () => {
  const n = await newNumber({ windowErrors: 'webhook' });
  const accepted = await send(n, text('15550100444', 'outside'));
  assert.is(accepted.status, 200);
  const failed = await until(() => statusesOf(accepted.json.messages[0].id)[0], 'failed status');
  assert.is(failed.status, 'failed');
  assert.is(failed.errors[0].code, 131047);

  const before = rx.webhooks.length;
  await ctl('POST', '/whatsapp/events', { from: '+15550100444', phoneNumberId: n.phoneNumberId, text: 'forged?', badSignature: true });
  assert.not.ok(validSignature(rx.webhooks[before]!.raw, rx.webhooks[before]!.signature256, emu.apps.meta.appSecret));

  const off = await fetch(`${api}/${n.wabaId}/subscribed_apps`, { method: 'DELETE', headers: { authorization: `Bearer ${n.accessToken}` } });
  assert.equal(await off.json(), { success: true });
  const quiet = await ctl('POST', '/whatsapp/events', { from: '+15550100444', phoneNumberId: n.phoneNumberId, text: 'anyone?' });
  assert.is(quiet.json.delivered, false);
  const status = await ctl('POST', '/whatsapp/events', { type: 'status', messageId: accepted.json.messages[0].id, status: 'read' });
  assert.is(status.json.delivered, false);
  assert.is((await ctl('POST', '/whatsapp/events', { from: 'nobody', phoneNumberId: n.phoneNumberId, text: 'x' })).status, 400);
  assert.is((await ctl('POST', '/whatsapp/events', { from: '+15550100444', phoneNumberId: '1', text: 'x' })).status, 404);
  assert.is((await ctl('POST', '/whatsapp/events', { type: 'status', messageId: 'wamid.nope', status: 'read' })).status, 404);
});

test.run();
