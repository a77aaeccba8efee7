// Issue 15's acceptance, end to end on the whole daemon (tests/delivery/fault-daemon.ts, startApp):
// 1,000 messages arrive at a bot while no client listens, across a kill -9 of the daemon (half of the
// messages: some pushed while it is dead) and across a stop/start of its RabbitMQ node (the other
// half: some pushed while the broker is down). Afterwards every one is listed once by
// GET /v1/messages?direction=in; a WebSocket opened with ?since=<pos before the first> receives
// exactly the events stored since (compared id by id with the events table), then a live one; another
// caller gets none of them and 404 for their event id (log and socket); the
// integration.events exchange delivered every message.received event at least once (by messageId).
// A bot because the Bot API keeps unconfirmed updates for the next getUpdates: what arrives while the
// daemon is dead is fetched by the next one. The emulator and the private RabbitMQ node live in this
// process and outlive every daemon; the shared node on 5672 is never touched.
// Measured on 2 loaded cores: 51-79 s over four runs, most of it the daemon boots and the broker restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Connection } from 'rabbitmq-client';
import { WebSocket } from 'ws';
import { mintToken } from '../../src/auth/token.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startPrivateRabbit, type PrivateRabbit } from '../helpers/private-services.ts';

const daemonFile = new URL('../delivery/fault-daemon.ts', import.meta.url).pathname;
const total = Number(process.env.INCOMING_FAULTS_N ?? 1000);
const half = total / 2;
const stamp = randomBytes(3).toString('hex');
const debug = (msg: string) => { if (process.env.FAULT_DEBUG) console.log(`    ${new Date().toISOString().slice(11, 23)} ${msg}`); };

let emu: Emulator;
let rabbit: PrivateRabbit;
let db: TestDatabase;

test.before(async () => {
  try {
    [emu, rabbit, db] = await Promise.all([startEmulator(), startPrivateRabbit(), createTestDatabase({ max: 4 })]);
  } catch (err) {
    console.error('incoming faults setup failed', err); // uvu hides an error thrown by a hook
    throw err;
  }
});

test.after(async () => {
  await emu?.stop();
  await rabbit?.close();
  await db?.drop();
});

interface Daemon { child: ChildProcess; url: string; stderr: string[] }

function spawnDaemon(env: Record<string, string>): Promise<Daemon> {
  const child = spawn(process.execPath, ['--import', 'tsx', daemonFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); if (stderr.length > 200) stderr.shift(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not listening after 60 s: ${stderr.join('')}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{"url"')) return;
      clearTimeout(timer);
      resolve({ child, url: (JSON.parse(line) as { url: string }).url, stderr });
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited early (${code}): ${stderr.join('')}`)); });
  });
}

async function stop(d: Daemon, signal: NodeJS.Signals): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill(signal);
  await exited;
}

async function waitFor(fn: () => Promise<boolean> | boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Frame { id: string; pos: number; type: string; data: { text?: string } }

test(`${total} incoming messages while no client listens, across a kill -9 and a RabbitMQ restart: all listed once; since= replays exactly the missing events, then live ones; the exchange has them all`, async () => {
  const t0 = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'incoming-faults-'));
  const secret = randomBytes(32).toString('base64url');
  const owner = `incoming-faults-${randomUUID()}`;
  const token = mintToken({ secret, sub: owner, ttlSeconds: 3600 });
  const vhost = `i_${stamp}`;
  const amqpUrl = rabbit.addVhost(vhost);
  const env = {
    DATABASE_URL: db.url, AMQP_URL: amqpUrl, DATA_DIR: dataDir, KEYRING_KEY: randomBytes(32).toString('base64'), JWT_SECRET: secret,
    HOST: '127.0.0.1', LOG_LEVEL: 'warn', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'incoming-faults', TELEGRAM_DC: emu.mtproto,
    TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: '2',
    RATE_LIMIT_SEND: '100000', RATE_LIMIT_CONNECT: '100000', RATE_LIMIT_STATUS: '100000', RATE_LIMIT_MANAGE: '100000', RATE_LIMIT_IP: '0',
    BACKOFF_BASE_MS: '200', BACKOFF_CAP_MS: '2000',
  };
  const daemons: Daemon[] = [];
  let daemon: Daemon | undefined;
  const respawn = async () => { const d = await spawnDaemon(env); daemons.push(d); return d; };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(daemon!.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const stored = async () => {
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${owner} and direction = 'in'`;
    return n;
  };
  // A durable queue of our own on the exchange, read at the end: the events published meanwhile wait in it.
  const queue = `incoming-faults-${stamp}`;
  const admin = new Connection(amqpUrl);
  admin.on('error', () => undefined); // the broker's shutdown below closes it; it reconnects by itself
  let ws: WebSocket | undefined;
  try {
    const ch = await admin.acquire();
    await ch.exchangeDeclare({ exchange: 'integration.events', type: 'topic', durable: true });
    await ch.queueDeclare({ queue, durable: true });
    await ch.queueBind({ queue, exchange: 'integration.events', routingKey: 'message.received' });
    await ch.close();

    const { migrate } = await import('../../src/store/migrate.ts');
    await migrate(db.sql);
    daemon = await respawn();
    const bot = emu.createBot({ username: `if${stamp}_bot` });
    const conn = await call('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
    await waitFor(async () => (await call('GET', `/v1/connections/${conn.id}`)).status === 'active', 'bot active', 30_000);
    const friend = (await emu.createUser({ phone: `+1998${String(process.pid % 1000).padStart(3, '0')}${String(Date.now() % 10_000).padStart(4, '0')}`, firstName: 'Friend' })).userId;
    const [{ since }] = await db.sql<{ since: number }[]>`select coalesce(max(pos), 0)::int as since from events`;
    const push = (from: number, to: number) => { for (let i = from; i < to; i++) emu.pushUpdate({ to: bot.botId, fromUserId: friend, text: `${stamp}:${i}` }); };

    // ---- half 1: kill -9 while the messages arrive; a quarter pushed while no daemon runs ----
    push(0, half / 2);
    await waitFor(async () => (await stored()) >= half / 8, 'some stored before the kill', 60_000);
    debug(`kill -9 at ${await stored()} stored`);
    await stop(daemon, 'SIGKILL');
    push(half / 2, half);
    daemon = await respawn();
    await waitFor(async () => (await stored()) >= half, `${half} stored after the restart`, 90_000).catch(async (err: Error) => {
      const rows = await db.sql`select status, error from connections where id = ${conn.id}`;
      const texts = new Set((await db.sql<{ text: string }[]>`select text from messages where owner = ${owner} and direction = 'in'`).map((r) => r.text));
      const lost = Array.from({ length: half }, (_, i) => `${stamp}:${i}`).filter((t) => !texts.has(t));
      throw new Error(`${err.message}: ${texts.size} stored, connection ${JSON.stringify(rows)}, missing ${lost.length}: ${lost.slice(0, 20).join(' ')}; ${daemon!.stderr.join('').slice(-1500)}`);
    });
    debug(`half 1 done: ${await stored()} stored, ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // ---- half 2: the RabbitMQ node stopped while messages arrive, a quarter pushed while it is down ----
    push(half, half + half / 2);
    await waitFor(async () => (await stored()) >= half + half / 8, 'some stored before the broker stops', 60_000);
    await rabbit.stop();
    debug(`broker stopped at ${await stored()} stored`);
    push(half + half / 2, total);
    await waitFor(async () => (await stored()) >= total, `${total} stored while the broker is down`, 90_000);
    await rabbit.start();
    debug(`broker started, ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // ---- all listed once ----
    const listed: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/v1/messages?direction=in&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      listed.push(...(page.items as { text: string; direction: string }[]).map((m) => { assert.is(m.direction, 'in'); return m.text; }));
      cursor = page.nextCursor;
    } while (cursor);
    const expected = Array.from({ length: total }, (_, i) => `${stamp}:${i}`);
    assert.is(listed.length, total, 'listed count');
    assert.equal([...listed].sort(), [...expected].sort(), 'every message listed once');

    // ---- a socket with since=: exactly the events stored since, in pos order, then a live one ----
    const missing = await db.sql<{ id: string; pos: number; type: string }[]>`
      select id, pos::int as pos, type from events where customer_id = ${owner} and pos > ${since} order by pos`;
    assert.is(missing.filter((e) => e.type === 'message.received').length, total, 'one message.received per message');
    const frames: Frame[] = [];
    ws = new WebSocket(`${daemon.url.replace(/^http/, 'ws')}/v1/events?since=${since}`, { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Frame));
    await new Promise((resolve, reject) => { ws!.once('open', resolve); ws!.once('error', reject); });
    await waitFor(() => frames.length >= missing.length, `${missing.length} replayed frames`, 60_000);
    assert.equal(frames.slice(0, missing.length).map((f) => f.id), missing.map((e) => e.id), 'the replay is the events table after since, in pos order');
    assert.equal(frames.filter((f) => f.type === 'message.received').map((f) => f.data.text), expected, 'in the order the bot received them');
    emu.pushUpdate({ to: bot.botId, fromUserId: friend, text: `${stamp}:live` });
    await waitFor(() => frames.some((f) => f.data.text === `${stamp}:live`), 'the live frame', 30_000);
    const received = frames.filter((f) => f.type === 'message.received');
    assert.is(received.length, total + 1);
    assert.is(new Set(frames.map((f) => f.id)).size, frames.length, 'no frame twice');
    assert.ok(frames.every((f, i) => i === 0 || f.pos > frames[i - 1]!.pos), 'pos strictly increasing');

    // ---- tenancy on the whole daemon: another caller gets none of these and 404 for their ids ----
    const otherToken = mintToken({ secret, sub: `other-${randomUUID()}`, ttlSeconds: 600 });
    const asOther = (path: string) => fetch(daemon!.url + path, { headers: { authorization: `Bearer ${otherToken}` } });
    const otherLog = await asOther('/v1/events/log?since=0&limit=1000');
    assert.is(otherLog.status, 200);
    assert.equal(((await otherLog.json()) as { items: unknown[] }).items, [], 'nothing of another caller in the log');
    const byId = await asOther(`/v1/events/log?since=${missing[0]!.id}`);
    assert.equal([byId.status, ((await byId.json()) as { error: { code: string } }).error.code], [404, 'NOT_FOUND'], 'another caller\'s event id in the log');
    const refused = await new Promise<number>((resolve, reject) => {
      const o = new WebSocket(`${daemon!.url.replace(/^http/, 'ws')}/v1/events?since=${missing[0]!.id}`, { headers: { authorization: `Bearer ${otherToken}` } });
      o.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); });
      o.once('open', () => { o.terminate(); resolve(101); });
      o.once('error', reject);
    });
    assert.is(refused, 404, 'another caller\'s event id as since on the socket');
    const otherWs = new WebSocket(`${daemon.url.replace(/^http/, 'ws')}/v1/events?since=0`, { headers: { authorization: `Bearer ${otherToken}` } });
    const otherFrames: unknown[] = [];
    otherWs.on('message', (d) => otherFrames.push(JSON.parse(String(d))));
    await new Promise((resolve, reject) => { otherWs.once('open', resolve); otherWs.once('error', reject); });
    emu.pushUpdate({ to: bot.botId, fromUserId: friend, text: `${stamp}:live2` });
    await waitFor(() => frames.some((f) => f.data.text === `${stamp}:live2`), 'a second live frame', 30_000);

    // ---- the exchange: every message.received at least once, across the kill and the broker restart ----
    const want = new Set([...missing.filter((e) => e.type === 'message.received').map((e) => e.id), received.at(-1)!.id]);
    const got = new Map<string, number>();
    const reader = await admin.acquire();
    await reader.basicConsume({ queue, noAck: true }, (msg) => { if (msg.messageId) got.set(msg.messageId, (got.get(msg.messageId) ?? 0) + 1); });
    await waitFor(() => [...want].every((id) => got.has(id)), `${want.size} events on the exchange`, 60_000);
    const repeats = [...got.values()].filter((n) => n > 1).length;
    console.log(`  ${total} incoming: listed ${listed.length}, replayed ${missing.length} events then 1 live; exchange ${got.size} distinct (${repeats} repeated, allowed: at least once); ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.is([...want].filter((id) => !got.has(id)).length, 0, 'none missing on the exchange');
    await reader.close();

    // Its replay and a live message since then went to our socket only.
    await new Promise<void>((resolve) => { otherWs.once('close', () => resolve()); otherWs.close(); });
    assert.equal(otherFrames, [], 'another caller\'s socket replayed nothing');
    await new Promise<void>((resolve) => { ws!.once('close', () => resolve()); ws!.close(); });
    ws = undefined;
    await stop(daemon, 'SIGTERM');
    assert.is(daemon.child.exitCode, 0, `graceful stop: ${daemon.stderr.join('').slice(-500)}`);
  } finally {
    ws?.terminate();
    await admin.close();
    for (const d of daemons) await stop(d, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
