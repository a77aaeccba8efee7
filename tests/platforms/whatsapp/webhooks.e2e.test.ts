// Meta webhooks into the service (GET handshake, X-Hub-Signature-256 over the raw body) from the
// WhatsApp emulator: statuses update the messages they name; unsigned, badly signed or malformed
// deliveries change nothing; a status naming another business's number cannot touch our message.
import { createHmac } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startWaWorld, until, type WaWorld } from './world.ts';

interface Ctx { w: WaWorld; conn: string; numberId: string; hook: string }
const test = suite<Ctx>('whatsapp webhooks e2e', {} as Ctx);
const owner = 'wa-hooks';
let seq = 0;
const customer = () => `+4477119${String(process.pid % 1000).padStart(3, '0')}${String(seq++).padStart(3, '0')}`;

test.before(async (ctx) => {
  try {
    ctx.w = await startWaWorld();
    ctx.hook = `${ctx.w.app.url}/v1/platform-webhooks/whatsapp`;
    // Registering the URL makes the emulator run Meta's GET handshake against the service.
    const reg = await ctx.w.control('POST', '/webhook-url', { url: ctx.hook });
    assert.is(reg.verified, true);
    const n = await ctx.w.number();
    ctx.numberId = n.phoneNumberId;
    const r = await ctx.w.call(owner, 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
    ctx.conn = r.body.id;
    await until(async () => (await ctx.w.call(owner, 'GET', `/v1/connections/${ctx.conn}`)).body.status === 'active', 'active');
  } catch (err) {
    console.error('setup failed', err);
    throw err;
  }
});
test.after(async (ctx) => { await ctx.w?.stop(); });

const sign = (secret: string, raw: string) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
const post = (ctx: Ctx, raw: string, headers: Record<string, string> = {}) =>
  fetch(ctx.hook, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...headers } });

async function sentMessage(ctx: Ctx, to: string, text: string) {
  await ctx.w.control('POST', '/events', { type: 'message', phoneNumberId: ctx.numberId, from: to, text: 'hello' });
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text });
  return until(async () => {
    const m = (await ctx.w.call(owner, 'GET', `/v1/messages/${r.body.id}`)).body;
    return m.status === 'sent' || m.status === 'failed' ? m : undefined;
  }, 'sent');
}

test('handshake: the right verify token echoes the challenge; a wrong one 403; an unknown platform 404', async (ctx) => {
  const q = (token: string) => `?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${encodeURIComponent(token)}`;
  const ok = await fetch(ctx.hook + q(ctx.w.apps.meta.verifyToken));
  assert.equal([ok.status, await ok.text()], [200, '1158201444']);
  assert.is((await fetch(ctx.hook + q('wrong-token'))).status, 403);
  assert.is((await fetch(ctx.hook)).status, 403);
  assert.is((await fetch(`${ctx.w.app.url}/v1/platform-webhooks/myspace${q(ctx.w.apps.meta.verifyToken)}`)).status, 404);
});

test('sent → delivered → read statuses by signed webhook reach the message (platformStatus read)', async (ctx) => {
  const m = await sentMessage(ctx, customer(), 'status please');
  assert.is(m.status, 'sent');
  const read = await until(async () => {
    const g = (await ctx.w.call(owner, 'GET', `/v1/messages/${m.id}`)).body;
    return g.platformStatus === 'read' ? g : undefined;
  }, 'read status');
  assert.is(read.status, 'sent');
  assert.ok(read.platformStatusAt);
});

test('a failed status fails the message with the mapped code (131047 by webhook → OUTSIDE_SERVICE_WINDOW)', async (ctx) => {
  const n = await ctx.w.number({ windowErrors: 'webhook' });
  const c = await ctx.w.call(owner, 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
  await until(async () => (await ctx.w.call(owner, 'GET', `/v1/connections/${c.body.id}`)).body.status === 'active', 'active');
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: c.body.id, chat: customer(), text: 'nobody wrote to us' });
  const failed = await until(async () => {
    const g = (await ctx.w.call(owner, 'GET', `/v1/messages/${r.body.id}`)).body;
    return g.status === 'failed' ? g : undefined;
  }, 'failed by webhook');
  assert.is(failed.error.code, 'OUTSIDE_SERVICE_WINDOW');
  assert.ok(failed.platformMessageId, 'it was accepted first');
});

test('a badly signed status delivery → 401 and the message is unchanged', async (ctx) => {
  const m = await sentMessage(ctx, customer(), 'do not fail me');
  await until(async () => (await ctx.w.call(owner, 'GET', `/v1/messages/${m.id}`)).body.platformStatus === 'read', 'read');
  const d = await ctx.w.control('POST', '/events', { type: 'status', messageId: m.platformMessageId, status: 'failed', badSignature: true });
  assert.equal([d.delivered, d.status], [false, 401]);
  assert.is((await ctx.w.call(owner, 'GET', `/v1/messages/${m.id}`)).body.status, 'sent');
  // The same event correctly signed does fail it: the 401 was the signature's doing.
  const good = await ctx.w.control('POST', '/events', { type: 'status', messageId: m.platformMessageId, status: 'failed', errorCode: 131026 });
  assert.equal([good.delivered, good.status], [true, 200]);
  const g = (await ctx.w.call(owner, 'GET', `/v1/messages/${m.id}`)).body;
  assert.equal([g.status, g.error.code], ['failed', 'PLATFORM_REJECTED']);
  assert.match(g.error.message, /131026/);
});

test('unsigned, wrongly signed, malformed and oversized deliveries: 401 / 401 / 400 / 413, never 500', async (ctx) => {
  const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [] });
  assert.is((await post(ctx, body)).status, 401);
  assert.is((await post(ctx, body, { 'x-hub-signature-256': 'sha256=00' })).status, 401);
  assert.is((await post(ctx, body, { 'x-hub-signature-256': sign('another-secret', body) })).status, 401);
  assert.is((await post(ctx, body, { 'x-hub-signature-256': sign(ctx.w.apps.meta.appSecret, `${body} `) })).status, 401);
  assert.is((await post(ctx, body, { 'x-hub-signature-256': sign(ctx.w.apps.meta.appSecret, body) })).status, 200);
  for (const bad of ['not json', '[]', '{"object":"page","entry":[]}', '{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{}]}}]}]}']) {
    const r = await post(ctx, bad, { 'x-hub-signature-256': sign(ctx.w.apps.meta.appSecret, bad) });
    assert.is(r.status, 400, bad);
    assert.is(((await r.json()) as { error: { code: string } }).error.code, 'VALIDATION_ERROR');
  }
  const big = 'x'.repeat(1024 * 1024 + 10);
  assert.is((await post(ctx, big, { 'x-hub-signature-256': sign(ctx.w.apps.meta.appSecret, big) })).status, 413);
});

test('a status naming another business\'s number cannot touch our message', async (ctx) => {
  const m = await sentMessage(ctx, customer(), 'mine');
  await until(async () => (await ctx.w.call(owner, 'GET', `/v1/messages/${m.id}`)).body.platformStatus === 'read', 'read');
  const other = await ctx.w.number();
  const raw = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: other.wabaId, changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550000000', phone_number_id: other.phoneNumberId }, statuses: [{ id: m.platformMessageId, status: 'failed', timestamp: '1700000000', recipient_id: '1', errors: [{ code: 131026, title: 'x' }] }] } }] }],
  });
  assert.is((await post(ctx, raw, { 'x-hub-signature-256': sign(ctx.w.apps.meta.appSecret, raw) })).status, 200);
  assert.is((await ctx.w.call(owner, 'GET', `/v1/messages/${m.id}`)).body.status, 'sent');
});

test('free text to a customer silent for 24 h → 422 OUTSIDE_SERVICE_WINDOW at accept; a signed incoming message opens the window', async (ctx) => {
  // A connection that has existed longer than the window: every message the customer sent in it would have reached us.
  await ctx.w.db.sql`update connections set created_at = now() - interval '2 days' where id = ${ctx.conn}`;
  const to = customer();
  const refused = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'are you there?' });
  assert.equal([refused.status, refused.body.error?.code], [422, 'OUTSIDE_SERVICE_WINDOW'], JSON.stringify(refused.body));
  const [{ n }] = await ctx.w.db.sql<{ n: number }[]>`select count(*)::int as n from messages where connection_id = ${ctx.conn} and chat = ${to}`;
  assert.is(n, 0, 'nothing stored');
  const template = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, template: { name: 'hello_world', language: 'en_US' } });
  assert.is(template.status, 202, 'a template is fine outside the window');
  // A forged incoming message opens nothing.
  const forged = await ctx.w.control('POST', '/events', { type: 'message', phoneNumberId: ctx.numberId, from: to, text: 'forged', badSignature: true });
  assert.is(forged.status, 401);
  assert.is((await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'still no' })).status, 422);
  const d = await ctx.w.control('POST', '/events', { type: 'message', phoneNumberId: ctx.numberId, from: to, text: 'Hi there' });
  assert.equal([d.delivered, d.status], [true, 200]);
  const ok = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'welcome back' });
  assert.is(ok.status, 202, JSON.stringify(ok.body));
  const m = await until(async () => {
    const g = (await ctx.w.call(owner, 'GET', `/v1/messages/${ok.body.id}`)).body;
    return g.status === 'sent' || g.status === 'failed' ? g : undefined;
  }, 'sent');
  assert.is(m.status, 'sent');
  await ctx.w.db.sql`update connections set created_at = now() where id = ${ctx.conn}`;
});

test('an incoming message, signed, is stored once as direction in with its message.received event; a forged one is not', async (ctx) => {
  const to = customer();
  const d = await ctx.w.control('POST', '/events', { type: 'message', phoneNumberId: ctx.numberId, from: to, text: 'Hi there' });
  assert.equal([d.delivered, d.status], [true, 200]);
  const bad = await ctx.w.control('POST', '/events', { type: 'message', phoneNumberId: ctx.numberId, from: to, text: 'forged', badSignature: true });
  assert.equal([bad.delivered, bad.status], [false, 401]);
  const list = await ctx.w.call(owner, 'GET', `/v1/messages?connectionId=${ctx.conn}&direction=in`);
  const mine = (list.body.items as Array<{ chat: string; text: string; from?: string; status: string }>).filter((m) => m.chat === to);
  assert.equal(mine.map((m) => [m.text, m.status]), [['Hi there', 'received']]);
  const log = await ctx.w.call(owner, 'GET', `/v1/events/log?type=message.received&connectionId=${ctx.conn}`);
  const events = (log.body.items as Array<{ data: { from: string; text: string } }>).filter((e) => `+${e.data.from}` === to);
  assert.equal(events.map((e) => e.data.text), ['Hi there']);
  const stranger = await ctx.w.call('someone-else', 'GET', `/v1/messages?direction=in`);
  assert.is((stranger.body.items as unknown[]).length, 0, 'another caller sees none of it');
});

test.run();
