// Sending through a WhatsApp business number end to end (startApp → delivery → the Cloud API emulator):
// text inside the 24-hour window, free text outside it refused, the emulator's errors mapped, media
// downloaded by WhatsApp from the service's signed PUBLIC_URL/v1/media links.
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mintToken } from '../../../src/auth/token.ts';
import { startWaWorld, until, type WaWorld } from './world.ts';

interface Ctx { w: WaWorld; conn: string; numberId: string; customer: string }
const test = suite<Ctx>('whatsapp send e2e', {} as Ctx);
const owner = 'wa-sender';
let seq = 0;
const customer = () => `+4477009${String(process.pid % 1000).padStart(3, '0')}${String(seq++).padStart(3, '0')}`;

test.before(async (ctx) => {
  try {
    ctx.w = await startWaWorld();
    const n = await ctx.w.number();
    ctx.numberId = n.phoneNumberId;
    const r = await ctx.w.call(owner, 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
    assert.is(r.status, 201, JSON.stringify(r.body));
    ctx.conn = r.body.id;
    await until(async () => (await ctx.w.call(owner, 'GET', `/v1/connections/${ctx.conn}`)).body.status === 'active', 'active');
  } catch (err) {
    console.error('setup failed', err);
    throw err;
  }
});
test.after(async (ctx) => { await ctx.w?.stop(); });

const final = async (w: WaWorld, id: string, sub = owner) => until(async () => {
  const m = (await w.call(sub, 'GET', `/v1/messages/${id}`)).body;
  return ['sent', 'failed'].includes(m.status) ? m : undefined;
}, `message ${id} final`);

/** The customer writes to the number: the 24-hour service window opens. */
const customerWrites = (ctx: Ctx, from: string) => ctx.w.control('POST', '/events', { type: 'message', phoneNumberId: ctx.numberId, from, text: 'hi' });

test('a text inside the window reaches the customer once, with the wamid as platformMessageId', async (ctx) => {
  const to = customer();
  await customerWrites(ctx, to);
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'Your order shipped' });
  assert.is(r.status, 202, JSON.stringify(r.body));
  const m = await final(ctx.w, r.body.id);
  assert.is(m.status, 'sent', JSON.stringify(m));
  assert.match(m.platformMessageId, /^wamid\./);
  const seen = await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to });
  assert.equal(seen.map((s: { id: string; text: string; type: string }) => [s.id, s.type, s.text]), [[m.platformMessageId, 'text', 'Your order shipped']]);
});

test('free text outside the 24-hour window → failed OUTSIDE_SERVICE_WINDOW, nothing delivered', async (ctx) => {
  const to = customer();
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'Hello?' });
  assert.is(r.status, 202);
  const m = await final(ctx.w, r.body.id);
  assert.equal([m.status, m.error?.code], ['failed', 'OUTSIDE_SERVICE_WINDOW'], JSON.stringify(m));
  assert.match(m.error.message, /131047/);
  assert.equal(await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to }), []);
});

test('a 5xx from the Graph API is retried: sent once', async (ctx) => {
  const to = customer();
  await customerWrites(ctx, to);
  ctx.w.emu.fault({ type: 'http-5xx', count: 1 });
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'after a 5xx' });
  const m = await final(ctx.w, r.body.id);
  assert.is(m.status, 'sent', JSON.stringify(m));
  assert.ok(m.attempts >= 2, `attempts ${m.attempts}`);
  assert.is((await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to })).length, 1);
});

test('the throughput limit (130429) waits and sends once', async (ctx) => {
  const to = customer();
  await customerWrites(ctx, to);
  ctx.w.emu.fault({ type: 'rate-limit', count: 1 });
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: 'after a rate limit' });
  const m = await final(ctx.w, r.body.id);
  assert.is(m.status, 'sent', JSON.stringify(m));
  assert.is((await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to })).length, 1);
});

test('a burst of 50 to one recipient is paced: 45 go at once, the rest wait; never a 131056', async (ctx) => {
  // The Cloud API's pair limit (emulator: bursts of 45, then one per 6 s) is paced at 45 per 270 s per
  // recipient: a message past it waits in the queue instead of being refused by WhatsApp.
  const to = customer();
  await customerWrites(ctx, to);
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, text: `burst ${i}` });
    ids.push(r.body.id);
  }
  await until(async () => (await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to })).length >= 45, '45 sent');
  const states = await Promise.all(ids.map(async (id) => (await ctx.w.call(owner, 'GET', `/v1/messages/${id}`)).body));
  // Without pacing the 46th would reach WhatsApp and come back 131056 (PLATFORM_RATE_LIMITED on the message).
  assert.equal(states.filter((s) => s.status === 'failed' || s.error).map((s) => s.error), []);
  assert.is(states.filter((s) => s.status === 'sent').length, 45);
  const seen = await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to });
  assert.is(new Set(seen.map((s: { text: string }) => s.text)).size, seen.length, 'a text delivered twice');
});

test('a template outside the window is sent, parameters filled; an unknown template fails PLATFORM_REJECTED (132001)', async (ctx) => {
  await ctx.w.control('POST', '/templates', { name: 'order_update', language: 'en_US', body: 'Order {{1}} is {{2}}.' });
  const to = customer();
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', {
    connectionId: ctx.conn, chat: to,
    template: { name: 'order_update', language: 'en_US', components: [{ type: 'body', parameters: [{ type: 'text', text: 'A-17' }, { type: 'text', text: 'shipped' }] }] },
  });
  assert.is(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.template.name, 'order_update');
  const m = await final(ctx.w, r.body.id);
  assert.is(m.status, 'sent', JSON.stringify(m));
  const seen = await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to });
  assert.equal(seen.map((s: { type: string; template: { body: string } }) => [s.type, s.template.body]), [['template', 'Order A-17 is shipped.']]);
  const hello = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, template: { name: 'hello_world', language: 'en_US' } });
  assert.is((await final(ctx.w, hello.body.id)).status, 'sent');
  const unknown = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, template: { name: 'no_such_template', language: 'en_US' } });
  const f = await final(ctx.w, unknown.body.id);
  assert.equal([f.status, f.error?.code], ['failed', 'PLATFORM_REJECTED'], JSON.stringify(f));
  assert.match(f.error.message, /132001/);
});

test('malformed templates → 400 VALIDATION_ERROR', async (ctx) => {
  for (const template of [{ name: 'Bad Name', language: 'en_US' }, { name: 'ok', language: 'english' }, { name: 'ok' }, { name: 'ok', language: 'en_US', components: [{ type: 'footer' }] }, 'hello_world']) {
    const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: '+15550100001', template });
    assert.is(r.status, 400, `${JSON.stringify(template)}: ${JSON.stringify(r.body)}`);
    assert.is(r.body.error.code, 'VALIDATION_ERROR');
  }
  const both = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: '+15550100001', template: { name: 'hello_world', language: 'en_US' }, media: { type: 'photo', url: 'https://example.com/a.jpg' } });
  assert.is(both.status, 400);
  const none = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: '+15550100001' });
  assert.is(none.status, 400);
});

test('a stored photo and a document reach the customer once: WhatsApp downloads them from the signed media link (sha256 equal)', async (ctx) => {
  const to = customer();
  await customerWrites(ctx, to);
  const token = mintToken({ secret: ctx.w.secret, sub: owner });
  for (const [type, contentType, filename] of [['photo', 'image/jpeg', 'p.jpg'], ['document', 'application/pdf', 'terms.pdf']] as const) {
    const bytes = randomBytes(200_000);
    const up = await fetch(`${ctx.w.app.url}/v1/uploads?filename=${filename}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: bytes });
    assert.is(up.status, 201);
    const upload = await up.json() as { id: string; sha256: string };
    const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: to, media: { type, uploadId: upload.id, caption: `the ${type}` } });
    assert.is(r.status, 202, JSON.stringify(r.body));
    const m = await final(ctx.w, r.body.id);
    assert.is(m.status, 'sent', JSON.stringify(m));
    // The emulator fetches the link after answering (as WhatsApp does): wait for its digest.
    const seen = await until(async () => {
      const all = await ctx.w.control('GET', '/messages', undefined, { phoneNumberId: ctx.numberId, to }) as Array<{ id: string; type: string; mediaSha256?: string | null }>;
      const mine = all.filter((x) => x.id === m.platformMessageId);
      return mine.length === 1 && mine[0]!.mediaSha256 ? mine : undefined;
    }, `${type} downloaded`);
    assert.equal(seen.map((x) => [x.type, x.mediaSha256]), [[type === 'photo' ? 'image' : 'document', upload.sha256]]);
  }
});

test('media over WhatsApp\'s size for its type → 422 PLATFORM_UNSUPPORTED at accept (images 5 MB)', async (ctx) => {
  const token = mintToken({ secret: ctx.w.secret, sub: owner });
  const up = await fetch(`${ctx.w.app.url}/v1/uploads?filename=big.jpg`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'image/jpeg' }, body: randomBytes(6 * 1024 * 1024) });
  const upload = await up.json() as { id: string };
  const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat: '+15550100001', media: { type: 'photo', uploadId: upload.id } });
  assert.equal([r.status, r.body.error?.code], [422, 'PLATFORM_UNSUPPORTED'], JSON.stringify(r.body));
});

test('malformed recipients → 400; another caller cannot send through the connection (404)', async (ctx) => {
  for (const chat of ['+12', 'not-a-number', '+1 555 0100']) {
    const r = await ctx.w.call(owner, 'POST', '/v1/messages', { connectionId: ctx.conn, chat, text: 'x' });
    assert.is(r.status, 400, `${chat}: ${JSON.stringify(r.body)}`);
    assert.is(r.body.error.code, 'VALIDATION_ERROR');
  }
  const other = await ctx.w.call('intruder', 'POST', '/v1/messages', { connectionId: ctx.conn, chat: '+15550100001', text: 'x' });
  assert.is(other.status, 404, JSON.stringify(other.body));
});

test.run();
