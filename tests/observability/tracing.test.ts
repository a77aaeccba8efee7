// Tracing (src/observability/tracing.ts) with the real SDK and an in-memory exporter (no network):
// off by default; W3C inject/extract; one trace from an HTTP accept through the outbox, RabbitMQ
// (real broker) or the embedded Postgres consumer, to a Bot API call against the emulator; no
// message text, token or secret query parameter in any span; after shutdown nothing is traced.
// App modules are imported only after startTracing(), as src/main.ts does, so hapi and winston
// are instrumented.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type postgres from 'postgres';
import { SpanKind, trace, type SpanContext } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  extractContext, injectContext, shutdownTracing, startTracing, traceCarrier, tracingEnabled, withSpan,
} from '../../src/observability/tracing.ts';

const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exporter = new InMemorySpanExporter();
const cleanups: (() => Promise<unknown>)[] = [];
const tokens: string[] = [];
/** phone numbers and login codes used: none may appear in a span */
const secrets: string[] = [];

async function load() {
  const [{ default: Hapi }, { default: winston }, { logFormat }, delivery, topology, messages, db, fixtures, { BotApi }, { startEmulator }, { Connection }] = await Promise.all([
    import('@hapi/hapi'), import('winston'), import('../../src/observability/logger.ts'),
    import('../../src/delivery/delivery.ts'), import('../../src/delivery/topology.ts'), import('../../src/store/messages.ts'),
    import('../helpers/db.ts'), import('../delivery/fixtures.ts'), import('../../src/platforms/telegram/bot-api.ts'),
    import('../emulator/index.ts'), import('rabbitmq-client'),
  ]);
  const stack = await import('../helpers/stack.ts');
  return { Hapi, winston, logFormat, delivery, topology, messages, db, fixtures, BotApi, startEmulator, Connection, stack };
}
type Mods = Awaited<ReturnType<typeof load>>;

test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch((err) => console.error('cleanup', err));
  await shutdownTracing();
});

test('off without OTEL_EXPORTER_OTLP_ENDPOINT: no SDK, every helper passes through', async () => {
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  assert.is(await startTracing({ serviceName: 'test' }), false);
  assert.is(tracingEnabled(), false);
  const seen: boolean[] = [];
  assert.is(await withSpan('x', { a: 1 }, async (span) => { seen.push(span.isRecording()); return 7; }), 7);
  assert.equal(seen, [false]);
  const boom = new Error('boom');
  try {
    await withSpan('y', {}, async () => { throw boom; });
    assert.unreachable('withSpan must rethrow');
  } catch (err) {
    assert.is(err, boom);
  }
  assert.equal(injectContext({ 'x-publish-seq': 3 }), { 'x-publish-seq': 3 });
  assert.is(traceCarrier(), undefined);
  assert.is(trace.getSpan(extractContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' })), undefined);
  assert.is(trace.getTracer('t').startSpan('z').isRecording(), false, 'no tracer provider registered');
});

let m: Mods;

test('on: the SDK starts (test exporter), and only then are the app modules loaded', async () => {
  assert.is(await startTracing({ serviceName: 'test', exporter }), true);
  assert.is(tracingEnabled(), true);
  m = await load();
});

test('inject → extract round trip (W3C traceparent and tracestate); garbage extracts to nothing', async () => {
  let outer!: SpanContext;
  const carrier = await withSpan('outer', {}, async (span) => {
    outer = span.spanContext();
    return injectContext<Record<string, unknown>>({ keep: 'me' });
  });
  assert.is(carrier.keep, 'me');
  assert.is(carrier.traceparent, `00-${outer.traceId}-${outer.spanId}-01`);
  const ctx = trace.getSpanContext(extractContext(carrier))!;
  assert.equal([ctx.traceId, ctx.spanId, ctx.isRemote], [outer.traceId, outer.spanId, true]);

  const incoming = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=abc,other=1' };
  const child = await withSpan('child', {}, async () => injectContext<Record<string, unknown>>({}), { parent: extractContext(incoming) });
  assert.match(String(child.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  assert.is.not(String(child.traceparent).split('-')[2], 'b7ad6b7169203331', 'a child span has its own id');
  assert.is(child.tracestate, 'vendor=abc,other=1');
  assert.is(trace.getSpan(extractContext({ traceparent: 'not-a-traceparent' })), undefined);
  assert.is(trace.getSpan(extractContext(null)), undefined);

  // A failure is recorded by its code or class, never its message.
  try {
    await withSpan('fails', {}, async () => { throw Object.assign(new Error('https://api/bot123:SECRET/x'), { code: 'TG_UNAVAILABLE' }); });
  } catch { /* expected */ }
  const failed = exporter.getFinishedSpans().find((s) => s.name === 'fails')!;
  assert.is(failed.status.code, 2);
  assert.is(failed.attributes['error.type'], 'TG_UNAVAILABLE');
  assert.not.ok(JSON.stringify({ a: failed.attributes, e: failed.events, s: failed.status }).includes('SECRET'));
});

interface Fixture { owner: string; connectionId: string; text: string; botToken: string; chatId: number; lines: string[]; base: string; sender: InstanceType<Mods['fixtures']['RecordingSender']>; active: (string | undefined)[] }

// A hapi server with the accept route (the real store call), a capturing ECS logger, a bot on the
// emulator, and a recording sender whose send is a real Bot API call.
async function fixture(sql: postgres.Sql, emuBotApi: string, emu: Awaited<ReturnType<Mods['startEmulator']>>): Promise<Fixture> {
  const owner = `o-${randomUUID()}`;
  const connectionId = await m.fixtures.makeConnection(sql, owner, { kind: 'bot' });
  const bot = emu.createBot({ username: `trace${randomUUID().slice(0, 6)}_bot` });
  const { userId } = await emu.createUser({ phone: `+4477009${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`, firstName: 'Tia' });
  const lines: string[] = [];
  const log = m.winston.createLogger({
    format: m.logFormat,
    transports: [new m.winston.transports.Stream({ stream: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) })],
  });
  const server = m.Hapi.server({ port: 0, host: '127.0.0.1' });
  server.route({
    method: 'POST', path: '/v1/messages',
    handler: async (req, h) => {
      const body = req.payload as { text: string };
      const [r] = await m.messages.acceptMessages(sql, owner, [{ connectionId, chat: String(userId), text: body.text }], { actor: owner });
      log.info('message accepted', { messageId: r!.message.id });
      return h.response({ id: r!.message.id }).code(202);
    },
  });
  server.route({ method: 'GET', path: '/v1/events', handler: () => 'ok' });
  await server.start();
  cleanups.push(() => server.stop());
  const api = new m.BotApi({ baseUrl: emuBotApi, token: bot.token });
  const sender = new m.fixtures.RecordingSender();
  const active: (string | undefined)[] = [];
  sender.behaviour = async (msg) => {
    active.push(trace.getActiveSpan()?.spanContext().traceId);
    const sent = await api.sendMessage({ chat_id: Number(msg.chat), text: msg.text });
    return { platformMessageId: String(sent.message_id) };
  };
  tokens.push(bot.token);
  return { owner, connectionId, text: `trace-text-${randomUUID()}`, botToken: bot.token, chatId: userId, lines, base: server.info.uri, sender, active };
}

// A delivery per test, stopped (and its queues deleted) when the test ends: two running at once on
// one database would both pick up the next test's message.
async function withDelivery<T>(f: Fixture, broker: boolean, fn: () => Promise<T>): Promise<T> {
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  const d = m.delivery.startDelivery({
    sql: db.sql, shards: 2, sender: f.sender, capabilities: m.fixtures.telegramCapabilities(), pollMs: 50, requeueDelayMs: 20, sampleMs: 60_000, ...(broker ? { amqpUrl, prefix } : {}),
  });
  try {
    await d.ready;
    return await fn();
  } finally {
    await d.stop();
    if (broker) {
      const admin = new m.Connection(amqpUrl);
      admin.on('error', () => undefined);
      await m.topology.deleteTopology(admin, m.topology.topology({ prefix, shards: 2 })).finally(() => admin.close());
    }
  }
}

const byTrace = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const one = (spans: ReadableSpan[], name: string) => {
  const found = spans.filter((s) => s.name === name);
  assert.is(found.length, 1, `one "${name}" span, got ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
};
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

let db: Awaited<ReturnType<Mods['db']['createTestDatabase']>>;
let emu: Awaited<ReturnType<Mods['startEmulator']>>;

test('broker: POST /v1/messages → outbox insert → publish → consume → bot.sendMessage is one trace', async () => {
  db = await m.db.createTestDatabase({ max: 10 });
  cleanups.push(() => db.drop());
  emu = await m.startEmulator();
  cleanups.push(() => emu.stop());
  const f = await fixture(db.sql, emu.botApi, emu);
  const id = await withDelivery(f, true, async () => {
    const res = await fetch(`${f.base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: f.text }) });
    assert.is(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    await m.fixtures.waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'delivery process' && s.attributes['messaging.message.id'] === id), 15_000, 'the consumer span');
    return id;
  });
  assert.equal(emu.delivered().filter((x) => x.text === f.text).length, 1, 'delivered once');

  const http = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && s.name === 'POST /v1/messages')!;
  assert.ok(http, 'the http instrumentation traced the accepting request');
  const spans = byTrace(http.spanContext().traceId);
  const route = one(spans, 'route - /v1/messages');
  const insert = one(spans, 'outbox insert');
  const publish = one(spans, 'outbox publish');
  const process = one(spans, 'delivery process');
  const call = one(spans, 'telegram bot.sendMessage');
  assert.is(parentOf(route), http.spanContext().spanId, 'hapi is instrumented (ESM hook)');
  assert.is(parentOf(insert), route.spanContext().spanId);
  assert.is(parentOf(publish), insert.spanContext().spanId, 'the relay continues the context stored with the row');
  assert.is(parentOf(process), publish.spanContext().spanId, 'the consumer continues the context from the AMQP headers');
  assert.is(parentOf(call), process.spanContext().spanId);
  assert.equal([publish.kind, process.kind, call.kind], [SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CLIENT]);
  assert.is(call.attributes['rpc.method'], 'sendMessage');
  assert.equal(f.active, [http.spanContext().traceId], 'the sender runs inside the trace');

  const [row] = await db.sql<{ trace_context: { traceparent: string } }[]>`select trace_context from messages where id = ${id}`;
  assert.is(row!.trace_context.traceparent, `00-${insert.spanContext().traceId}-${insert.spanContext().spanId}-01`);
  const line = JSON.parse(f.lines.find((l) => l.includes('message accepted'))!) as { trace?: { id: string }; span?: { id: string } };
  assert.is(line.trace?.id, http.spanContext().traceId, 'log lines carry ECS trace.id');
  assert.is(line.span?.id, route.spanContext().spanId);
});

test('embedded: the Postgres consumer continues the trace from the row', async () => {
  const f = await fixture(db.sql, emu.botApi, emu);
  const traceId = await withDelivery(f, false, async () => {
    const { id, traceId } = await withSpan('accept', {}, async (span) => {
      const [r] = await m.messages.acceptMessages(db.sql, f.owner, [{ connectionId: f.connectionId, chat: String(f.chatId), text: f.text }], { actor: f.owner });
      return { id: r!.message.id, traceId: span.spanContext().traceId };
    });
    await m.fixtures.waitFor(() => exporter.getFinishedSpans().some((s) => s.name === 'delivery process' && s.attributes['messaging.message.id'] === id), 15_000, 'the consumer span');
    return traceId;
  });
  const spans = byTrace(traceId);
  const insert = one(spans, 'outbox insert');
  const process = one(spans, 'delivery process');
  assert.is(parentOf(process), insert.spanContext().spanId);
  assert.is(parentOf(one(spans, 'telegram bot.sendMessage')), process.spanContext().spanId);
  assert.equal(f.active, [traceId]);
});

test('real supervisor: supervisor.send → bot.sendMessage / messages.sendMessage; a traced login records method names only', async () => {
  const s = await m.stack.startStack({ emu });
  cleanups.push(() => s.close());
  const owner = `o-${randomUUID()}`;
  const phone = m.stack.newPhone();
  secrets.push(phone.slice(1));
  const recipient = `rcpt${randomUUID().slice(0, 6)}`;
  const { userId: recipientId } = await emu.createUser({ phone: m.stack.newPhone(), firstName: 'Rae', username: recipient });
  await emu.createUser({ phone, firstName: 'Sam' });
  const bot = emu.createBot({ username: `tr${randomUUID().slice(0, 6)}_bot` });
  tokens.push(bot.token);
  const { loginTrace, userConn } = await withSpan('login', {}, async (span) => {
    const created = await s.connections.create(owner, { platform: 'telegram', kind: 'user', method: 'phone', phone });
    const code = emu.lastCode(phone)!.code;
    secrets.push(code);
    await s.connections.submitCode(owner, created.id, code);
    return { loginTrace: span.spanContext().traceId, userConn: created.id };
  });
  const botConn = (await s.connections.create(owner, { platform: 'telegram', kind: 'bot', token: bot.token })).id;
  await m.stack.until(async () => (await s.db.sql`select count(*)::int as n from connections where status = 'active'`)[0]!.n === 2, 'rows active');

  const login = byTrace(loginTrace).map((x) => x.name);
  assert.ok(login.includes('telegram auth.sendCode') && login.includes('telegram auth.signIn'), login.join(', '));

  const texts = [`trace-text-${randomUUID()}`, `trace-text-${randomUUID()}`];
  const d = m.delivery.startDelivery({ sql: s.db.sql, shards: 4, sender: s.supervisor, capabilities: (p, k) => s.platforms.sendCapabilities(p, k), pollMs: 50, sampleMs: 60_000 });
  let traceId = '';
  try {
    traceId = await withSpan('accept', {}, async (span) => {
      await m.messages.acceptMessages(s.db.sql, owner, [
        { connectionId: botConn, chat: String(recipientId), text: texts[0]! },
        { connectionId: userConn, chat: `@${recipient}`, text: texts[1]! },
      ], { actor: owner });
      return span.spanContext().traceId;
    });
    await m.stack.until(async () => (await s.db.sql`select count(*)::int as n from messages where status = 'sent'`)[0]!.n === 2, 'both sent', 15_000);
    await m.fixtures.waitFor(() => byTrace(traceId).filter((x) => x.name === 'delivery process').length === 2, 5000, 'consumer spans');
  } finally {
    await d.stop();
  }
  const spans = byTrace(traceId);
  const sends = spans.filter((x) => x.name === 'supervisor.send');
  assert.is(sends.length, 2);
  const processIds = new Set(spans.filter((x) => x.name === 'delivery process').map((x) => x.spanContext().spanId));
  for (const x of sends) assert.ok(processIds.has(parentOf(x)!), 'supervisor.send inside the consumer span');
  const sendIds = new Set(sends.map((x) => x.spanContext().spanId));
  assert.ok(sendIds.has(parentOf(one(spans, 'telegram bot.sendMessage'))!));
  assert.ok(sendIds.has(parentOf(one(spans, 'telegram messages.sendMessage'))!));
  assert.equal(emu.delivered().filter((x) => texts.includes(x.text)).length, 2);
});

test('no span holds a message text, a bot token or a secret query parameter', async () => {
  const f = await fixture(db.sql, emu.botApi, emu);
  await withDelivery(f, true, async () => {
    const [r] = await m.messages.acceptMessages(db.sql, f.owner, [{ connectionId: f.connectionId, chat: String(f.chatId), text: f.text }], { actor: f.owner });
    await m.fixtures.waitFor(async () => (await m.messages.getMessage(db.sql, f.owner, r!.message.id))?.status === 'sent', 15_000, 'sent');
  });
  const secret = `jwt-${randomUUID()}`;
  assert.is((await fetch(`${f.base}/v1/events?access_token=${secret}&since=1`)).status, 200);
  // The emulator runs in this process, so its own Bot API server (Telegram's side, token in the path)
  // is traced too: those spans are not the daemon's.
  const all = exporter.getFinishedSpans().filter((s) => !(s.kind === SpanKind.SERVER && s.attributes['server.port'] === emu.botApiPort));
  const events = all.find((s) => s.name === 'GET /v1/events')!;
  assert.is(events.attributes['url.query'], 'access_token=REDACTED&since=1');
  const dump = JSON.stringify(all.map((s) => ({ n: s.name, a: s.attributes, e: s.events, st: s.status, r: s.resource.attributes })));
  assert.not.ok(dump.includes(secret), 'the access token was redacted');
  assert.not.ok(dump.includes('trace-text-'), 'no message text');
  for (const t of tokens) assert.not.ok(dump.includes(t.split(':')[1]!), 'no bot token');
  // String values only, whole words: a 5-digit login code could otherwise match a port number.
  const strings = all.flatMap((x) => [x.name, ...Object.values(x.attributes), ...x.events.flatMap((e) => Object.values(e.attributes ?? {}))]).filter((v): v is string => typeof v === 'string');
  for (const x of secrets) assert.not.ok(strings.some((v) => new RegExp(`(^|[^0-9A-Za-z])\\+?${x}([^0-9A-Za-z]|$)`).test(v)), 'no phone number or login code');
  assert.ok(secrets.length >= 2);
  assert.not.ok(/bot\d+:[A-Za-z0-9_-]{20,}/.test(dump), 'no token-shaped string at all');
  assert.ok(all.length > 10, `spans were recorded (${all.length})`);
});

test('after shutdownTracing: rows carry no context, the send runs outside any trace, messages still go', async () => {
  await shutdownTracing();
  assert.is(tracingEnabled(), false);
  const f = await fixture(db.sql, emu.botApi, emu);
  const id = await withDelivery(f, true, async () => {
    const [r] = await m.messages.acceptMessages(db.sql, f.owner, [{ connectionId: f.connectionId, chat: String(f.chatId), text: f.text }], { actor: f.owner });
    const id = r!.message.id;
    await m.fixtures.waitFor(async () => (await m.messages.getMessage(db.sql, f.owner, id))?.status === 'sent', 15_000, 'sent');
    return id;
  });
  assert.equal(f.active, [undefined], 'no active span around the send');
  const [row] = await db.sql<{ trace_context: unknown }[]>`select trace_context from messages where id = ${id}`;
  assert.is(row!.trace_context, null);
  assert.equal(injectContext({ a: 1 }), { a: 1 });
  assert.is(traceCarrier(), undefined);
});

test.run();
