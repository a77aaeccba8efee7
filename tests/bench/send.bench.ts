// Send throughput end to end (issue 5): the daemon in-process (startApp) on a fresh Postgres database
// and a fresh vhost of the real RabbitMQ, the emulator in its own process. Half the connections are
// bots (POST /bots + POST /v1/connections), half user accounts (saved sessions, rows inserted as a
// finished login leaves them). Every connection gets enough channels that Telegram's pacing (1 msg/s
// per chat, 30/s per bot) allows the target rate twice over. Messages are posted over HTTP in
// per-owner batches every 100 ms at the target rate, then the bench waits until every one is sent or
// failed and counts in the emulator's delivered log: lost, duplicated (by unique text), latency.
// Usage: npm run bench:send -- [--connections 1000] [--rate 10000/min] [--duration 60s] [--deadline 180s]
// With `--media 1mb` every message carries a document of that size, uploaded beforehand (POST
// /v1/uploads from a separate process: upload-client.ts): the bench then also reports media messages
// per minute and the daemon's memory (RSS, and the Buffers it holds) per concurrent upload and
// during the sends, where the goal is flat memory: no per-send copy of the file.
// Per sent message it also prints what the daemon asked of the others (issue 18: so each change shows its
// effect): Postgres statements, round trips, transactions and rows written; RabbitMQ publishes, acks,
// deliveries and confirms; WebSocket frames to `--ws` live-event subscribers (default one per owner);
// read/write syscalls (/proc/<pid>/io) of the daemon's main thread, its process, Postgres and RabbitMQ;
// and the daemon's socket writes and reads by peer (wire-counts.ts). docs/performance.md explains them.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { startApp } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { shardOf } from '../../src/shard.ts';
import { insertConnection, putSecret } from '../../src/store/connections.ts';
import { createTestDatabase } from '../helpers/db.ts';
import type { DriverInput, DriverResult } from './send-driver.ts';
import { control, percentile, pool, spawnEmulator } from './spawn-emulator.ts';
import { autovacuumStandIn } from './autovacuum.ts';
import { countWire, wireDelta, type WireCounts } from './wire-counts.ts';

const { values } = parseArgs({
  options: {
    // Defaults: 1000 connections at 10,000/min for 60 s; with --media, 20 at 600/min for 30 s (10 MB/s of 1 MB files).
    connections: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string' },
    deadline: { type: 'string', default: '180s' },
    'broker-n': { type: 'string', default: '20000' },
    media: { type: 'string' },
    ws: { type: 'string' },
    // MESSAGE_STATUS_EVENTS of the daemon: all (default) or outcomes
    'status-events': { type: 'string' },
  },
});
const bytes = (s: string) => { const m = /^(\d+(?:\.\d+)?)(b|kb|mb)?$/i.exec(s); if (!m) throw new Error(`bad size ${s} (e.g. 1mb)`); return Math.round(Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 * 1024 }[(m[2] ?? 'b').toLowerCase()]!)); };
const mediaBytes = values.media ? bytes(values.media) : undefined;
const seconds = (s: string) => { const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s); if (!m) throw new Error(`bad duration ${s}`); return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 }[m[2] ?? 's']!); };
const perSecond = (s: string) => { const m = /^(\d+(?:\.\d+)?)\/(s|sec|min|m)$/.exec(s); if (!m) throw new Error(`bad rate ${s} (e.g. 10000/min)`); return Number(m[1]) / (m[2]!.startsWith('m') ? 60 : 1); };
const nConnections = Number(values.connections ?? (values.media ? 20 : 1000));
const rate = perSecond(values.rate ?? (values.media ? '600/min' : '10000/min'));
const durationS = seconds(values.duration ?? (values.media ? '30s' : '60s'));
const deadlineS = seconds(values.deadline!);
const log = (line: string) => process.stdout.write(`${line}\n`);
const owners = Math.max(1, Math.min(50, Math.ceil(nConnections / 20)));
const stamp = randomBytes(3).toString('hex');

// ---- services: emulator process, fresh database, fresh vhost on the shared broker
const emu = await spawnEmulator();
const db = await createTestDatabase({ max: 10 });
const vhost = `bench-send-${stamp}`;
const rabbitctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 60_000 });
rabbitctl('add_vhost', vhost);
rabbitctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
const amqpBase = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const amqpUrl = `${amqpBase.replace(/\/+$/, '')}/${encodeURIComponent(vhost)}`;
const dataDir = mkdtempSync(join(tmpdir(), 'bench-send-'));
const keyringKey = randomBytes(32).toString('base64');
const secret = randomBytes(32).toString('base64url');
const config = {
  ...loadConfig({
    DATABASE_URL: db.url, AMQP_URL: amqpUrl, DATA_DIR: dataDir, KEYRING_KEY: keyringKey, JWT_SECRET: secret, HOST: '127.0.0.1',
    LOG_LEVEL: 'error', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'bench', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys,
    TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: '16', RATE_LIMIT_SEND: '1000000', RATE_LIMIT_CONNECT: '1000000', RATE_LIMIT_STATUS: '1000000', RATE_LIMIT_MANAGE: '1000000', RATE_LIMIT_IP: '0',
    // Throughput, not tenancy, is measured: at saturation an owner's backlog may pass the default 10,000.
    QUOTA_CONNECTIONS_PER_OWNER: '1000000', QUOTA_CHATS_PER_CONNECTION: '1000000', QUOTA_QUEUED_MESSAGES_PER_OWNER: '100000000',
    MESSAGE_STATUS_EVENTS: values['status-events'],
  }),
  port: 0,
};
const tokens = Array.from({ length: owners }, (_, i) => mintToken({ secret, sub: `bench-owner-${i}`, ttlSeconds: 4 * 3600 }));

// ---- setup (not timed in the results)
const setupStarted = performance.now();
const nAccounts = Math.floor(nConnections / 2);
const nBots = nConnections - nAccounts;
// Twice the chats the rate needs at 1 msg/s per chat, at least one per connection.
const chatsPerConn = Math.max(1, Math.ceil((2 * rate) / nConnections));
interface Conn { id: string; owner: number; userId: number; kind: 'user' | 'bot' }
const conns: Conn[] = [];
const keyring = await openKeyring({ keyringKey: Buffer.from(keyringKey, 'base64'), keyringFile: config.keyring.file });
await pool(Array.from({ length: nAccounts }, (_, i) => i), 32, async (i) => {
  const phone = `+1556${String(i).padStart(7, '0')}`;
  const { userId } = await control<{ userId: number }>(emu.control, 'POST', '/users', { phone, firstName: `Send ${i}` });
  const { session } = await control<{ session: string }>(emu.control, 'POST', '/sessions', { phone });
  const id = randomUUID();
  const owner = i % owners;
  await insertConnection(db.sql, { id, owner: `bench-owner-${owner}`, platform: 'telegram', kind: 'user', shard: shardOf(id, config.shards), machineVersion: 1 }, config.quotas.connectionsPerOwner);
  await putSecret(db.sql, id, 'session', await keyring.encrypt(session, secretContext(id, 'session')));
  conns.push({ id, owner, userId, kind: 'user' });
});
await keyring.close();
// Counting starts before the daemon opens its pools, so every stream is read from its first byte.
const listening: { port?: number } = {};
const wire = countWire({ pgPort: Number(new URL(db.url).port || 5432), amqpPort: Number(new URL(amqpBase).port || 5672), apiPort: () => listening.port });
const app = await startApp(config);
listening.port = app.server.info.port as number;
// Setup calls (not timed): a 503 OVERLOADED while 1000 connections start on a busy host is waited out.
const api = async <T>(owner: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(app.url + path, {
      method, headers: { authorization: `Bearer ${tokens[owner]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const out = { status: res.status, body: (await res.json()) as T };
    if (res.status !== 503 || attempt === 10) return out;
    await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
  }
};
for (;;) {
  const active = app.supervisor.actors().totals.active ?? 0;
  if (active >= nAccounts) break;
  if (performance.now() - setupStarted > 600_000) throw new Error(`accounts not active: ${active}/${nAccounts}`);
  await new Promise((r) => setTimeout(r, 200));
}
await pool(Array.from({ length: nBots }, (_, i) => i), 16, async (i) => {
  const bot = await control<{ botId: number; token: string }>(emu.control, 'POST', '/bots', { username: `s${stamp}b${i}_bot` });
  const owner = i % owners;
  const c = await api<{ id: string; status: string }>(owner, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  if (c.status !== 201) throw new Error(`bot connect ${c.status} ${JSON.stringify(c.body)}`);
  conns.push({ id: c.body.id, owner, userId: bot.botId, kind: 'bot' });
});
interface Target { owner: number; connectionId: string; chat: string }
const targets: Target[] = [];
await pool(conns.flatMap((c) => Array.from({ length: chatsPerConn }, (_, j) => ({ c, j }))), 32, async ({ c, j }) => {
  const username = `s${stamp}${c.kind[0]}${conns.indexOf(c)}c${j}`;
  await control(emu.control, 'POST', '/chats', {
    type: 'channel', title: username, username,
    members: [{ id: c.userId, role: c.kind === 'bot' ? 'admin' : 'creator', ...(c.kind === 'bot' ? { rights: { postMessages: true } } : {}) }],
  });
  const chat = await api<{ id: string }>(c.owner, 'POST', `/v1/connections/${c.id}/chats`, { chat: `@${username}` });
  if (chat.status !== 201) throw new Error(`add chat ${chat.status} ${JSON.stringify(chat.body)}`);
  targets.push({ owner: c.owner, connectionId: c.id, chat: chat.body.id });
});
const wsSubscribers = Math.min(owners, Number(values.ws ?? owners));
log(`setup: ${nAccounts} accounts + ${nBots} bots active, ${targets.length} channels (${chatsPerConn} per connection), ${owners} owners, ${wsSubscribers} live-event WebSocket subscribers, status events ${config.messageStatusEvents}, in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);

// ---- media: files uploaded from another process, the daemon's memory sampled meanwhile
const mb = (n: number) => +(n / 1024 / 1024).toFixed(1);
const memory = () => { const m = process.memoryUsage(); return { rss: m.rss, buffers: m.arrayBuffers, heap: m.heapUsed }; };
/** Peak memory above the start while `work` runs, sampled every 20 ms. */
async function peakDuring<T>(work: () => Promise<T>): Promise<{ result: T; rss: number; buffers: number; heap: number }> {
  const base = memory();
  const peak = { ...base };
  const timer = setInterval(() => { const m = memory(); peak.rss = Math.max(peak.rss, m.rss); peak.buffers = Math.max(peak.buffers, m.buffers); peak.heap = Math.max(peak.heap, m.heap); }, 20);
  try {
    const result = await work();
    return { result, rss: peak.rss - base.rss, buffers: peak.buffers - base.buffers, heap: peak.heap - base.heap };
  } finally {
    clearInterval(timer);
  }
}
const uploadsByOwner: string[][] = Array.from({ length: owners }, () => []);
const uploadReport: Record<string, unknown>[] = [];
if (mediaBytes) {
  const filesPerOwner = 8;
  const upload = (count: number, concurrency: number) => new Promise<{ uploads: [number, string][]; ms: number[] }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./upload-client.ts', import.meta.url).pathname, app.url, JSON.stringify(tokens), String(mediaBytes), String(count), String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`upload client exited ${code}`))));
  });
  (globalThis as { gc?: () => void }).gc?.();
  for (const concurrency of [1, 8]) {
    const count = Math.max(1, Math.ceil(concurrency * 2 / owners));
    const { result, rss, buffers, heap } = await peakDuring(() => upload(count, concurrency));
    const sorted = [...result.ms].sort((a, b) => a - b);
    const line = { concurrency, uploads: result.uploads.length, rssGrowthMb: mb(rss), rssPerConcurrentUploadMb: mb(rss / concurrency), buffersPeakMb: mb(buffers), heapPeakMb: mb(heap), p50Ms: Math.round(percentile(sorted, 50)) };
    uploadReport.push(line);
    log(`uploads of ${mb(mediaBytes)} MB, ${concurrency} at a time: ${result.uploads.length} in p50 ${line.p50Ms} ms; daemon RSS +${line.rssGrowthMb} MB (${line.rssPerConcurrentUploadMb} MB per concurrent upload), Buffers peak +${line.buffersPeakMb} MB, heap peak +${line.heapPeakMb} MB`);
  }
  const files = await upload(filesPerOwner, 4);
  for (const [owner, id] of files.uploads) uploadsByOwner[owner]!.push(id);
}

// ---- drive: per-owner batches every 100 ms at the target rate, from a worker thread (send-driver.ts)
const stats0 = await control<{ floodWaitsServed: number; delivered: number }>(emu.control, 'GET', '/stats');
const total = Math.round(rate * durationS);
const prefix = `s${stamp}:`;
let metricsReport: Record<string, { present: boolean; value?: number; sane: boolean }> = {};
// Postgres publishes a backend's statistics up to a second after its last transaction: let setup's settle.
await new Promise((r) => setTimeout(r, 2000));
const pg0 = await pgStats();
const wire0 = wire.snapshot();
const cpu0 = await cpuSnapshot();
const elu0 = performance.eventLoopUtilization();
// Module hooks registered by --import tsx do not reach worker threads: the worker registers its own.
const driver = new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(new URL('./send-driver.ts', import.meta.url).href)}); })`, {
  eval: true, workerData: { url: app.url, tokens, targets, rate, total, prefix, wsSubscribers, ...(mediaBytes ? { uploads: uploadsByOwner } : {}) } satisfies DriverInput,
});
const started = performance.now();
// Postgres here may run with autovacuum off (this machine's server does): the fresh database's tables
// are then never analyzed, the planner takes `messages` for empty and reads all of it for every
// lookup by id (`id = any($1)`: a sequential scan per statement, measured at 30,000/min as a third of
// the Postgres backends' CPU in uuid_in alone, and growing with the table). A production server has
// autovacuum on; the bench does its work in its place, by its thresholds, and says so (autovacuum.ts).
const [{ autovacuum }] = await db.sql<{ autovacuum: string }[]>`select current_setting('autovacuum') as autovacuum`;
const vacuums = autovacuum === 'off' ? autovacuumStandIn(db.sql, ['messages', 'events', 'audit'], 5000) : undefined;
// The daemon's memory through the sends (peak above the start), with how many sends were in flight.
const memStart = memory();
const memPeak = { ...memStart, inFlight: 0 };
const memTimer = setInterval(() => {
  const m = memory();
  memPeak.rss = Math.max(memPeak.rss, m.rss);
  memPeak.buffers = Math.max(memPeak.buffers, m.buffers);
  memPeak.heap = Math.max(memPeak.heap, m.heap);
  memPeak.inFlight = Math.max(memPeak.inFlight, app.delivery.stats().inFlight);
}, 50);
const scrape = setTimeout(() => void scrapeMetrics().then((r) => (metricsReport = r), () => undefined), (durationS / 2) * 1000);
const driven = await new Promise<DriverResult>((resolve, reject) => {
  driver.once('message', resolve);
  driver.once('error', reject);
  driver.once('exit', (code) => reject(new Error(`send driver exited with ${code}`)));
});
clearTimeout(scrape);
const cpuDrive = await cpuSnapshot();
const eluDrive = performance.eventLoopUtilization(elu0);
const driveS = driven.driveS;
const accepted = new Map(driven.accepted);
const refusals = new Map(driven.refusals);
const refused = [...refusals.values()].reduce((a, b) => a + b, 0);
const acceptErrors = driven.firstError;
const acceptMs = driven.acceptMs;
if (Object.keys(metricsReport).length === 0) metricsReport = await scrapeMetrics();
log(`drive: ${accepted.size} accepted, ${refused} refused in ${driveS.toFixed(1)} s (${Math.round((accepted.size / driveS) * 60)}/min)${refused ? `; refused by reason: ${JSON.stringify(Object.fromEntries(refusals))}; first: ${acceptErrors}` : ''}`);

// ---- wait for every accepted message to be final
const waitStarted = performance.now();
let open: number;
for (;;) {
  const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
  open = row!.n;
  if (open === 0 || (performance.now() - waitStarted) / 1000 > deadlineS) break;
  await new Promise((r) => setTimeout(r, 500));
}
const drainS = (performance.now() - started) / 1000;
clearInterval(memTimer);
await vacuums?.stop();
if (vacuums) log(`postgres autovacuum is off on this server: the bench did its work by its thresholds, checked every 5 s (messages, events, audit: ${vacuums.vacuums} VACUUM (ANALYZE), ${vacuums.analyzes} ANALYZE, ${(vacuums.ms / 1000).toFixed(1)} s; their CPU is in the postgres backends' figure)`);
const cpuEnd = await cpuSnapshot();
const wire1 = wire.snapshot();
const wsReceived = await new Promise<number>((resolve) => {
  driver.once('message', (m: { wsFrames: number }) => resolve(m.wsFrames));
  driver.postMessage('stop');
});
await driver.terminate();
await new Promise((r) => setTimeout(r, 2000));
const pg1 = await pgStats();
const eluDrain = performance.eventLoopUtilization(performance.eventLoopUtilization(elu0), eluDrive);
const rows = await db.sql<{ id: string; status: string; ms: number | null }[]>`
  select id, status, (extract(epoch from (sent_at - created_at)) * 1000)::float8 as ms from messages`;
const delivered = await control<{ text: string }[]>(emu.control, 'GET', '/messages');
const seen = new Map<string, number>();
for (const m of delivered) if (m.text.startsWith(prefix)) seen.set(m.text, (seen.get(m.text) ?? 0) + 1);
const byId = new Map(rows.map((r) => [r.id, r]));
let sent = 0; let failed = 0; let lost = 0; let duplicated = 0; let undeliveredOpen = 0;
for (const [id, text] of accepted) {
  const r = byId.get(id);
  if (r?.status === 'sent') sent++;
  if (r?.status === 'failed') failed++;
  const n = seen.get(text) ?? 0;
  // Lost: final as sent (or vanished) yet never in the chat. Rows still open at the deadline are
  // reported apart (undelivered, not yet given up on).
  if (n === 0 && (r === undefined || r.status === 'sent')) lost++;
  if (n === 0 && (r?.status === 'queued' || r?.status === 'sending')) undeliveredOpen++;
  if (n > 1) duplicated++;
}
const lat = rows.filter((r) => r.status === 'sent' && r.ms !== null).map((r) => r.ms!).sort((a, b) => a - b);
const stats1 = await control<{ floodWaitsServed: number; delivered: number }>(emu.control, 'GET', '/stats');
const floodWaits = stats1.floodWaitsServed - stats0.floodWaitsServed;
const p = (q: number) => +(percentile(lat, q) / 1000).toFixed(2);
log(`result: accepted ${accepted.size}, sent ${sent}, failed ${failed}, lost ${lost}, duplicated ${duplicated}, still open at the deadline ${open} (${undeliveredOpen} of them not in the chat); all final ${drainS.toFixed(1)} s after the first post`);
if (failed > 0) {
  // Why messages failed, by error code, with one message each (a failure under load is told apart from a bug).
  const reasons = await db.sql<{ code: string; n: number; message: string }[]>`
    select error->>'code' as code, count(*)::int as n, min(error->>'message') as message from messages where status = 'failed' group by 1 order by 2 desc`;
  log(`failed by code: ${reasons.map((r) => `${r.code} ${r.n} (${r.message})`).join('; ')}`);
}
log(`accept→sent (createdAt→sentAt): p50 ${p(50)} s, p95 ${p(95)} s, p99 ${p(99)} s; batch POST p50 ${percentile([...acceptMs].sort((a, b) => a - b), 50).toFixed(0)} ms; flood waits served by the emulator ${floodWaits}`);
const cpu = cpuReport(cpu0, cpuDrive, cpuEnd, accepted.size, sent);
log(`cpu per message (drive start → all final, ${sent} sent; s of CPU and µs per sent message): ${cpu.line}; daemon event loop utilisation drive ${eluDrive.utilization.toFixed(2)}, after drive ${eluDrain.utilization.toFixed(2)}; host busy ${cpu.hostBusy} of ${cpu.cores} cores`);
const counts = countReport(wireDelta(wire0, wire1), pg0, pg1, cpu0, cpuEnd, sent, wsSubscribers, wsReceived);
log(`counts per message (drive start → all final, per sent message): ${counts.line}`);
if (mediaBytes) {
  log(`media: ${Math.round((sent / drainS) * 60)} messages of ${mb(mediaBytes)} MB a minute (${mb((sent * mediaBytes) / drainS)} MB/s); daemon memory during the sends: RSS +${mb(memPeak.rss - memStart.rss)} MB, `
    + `Buffers peak +${mb(memPeak.buffers - memStart.buffers)} MB, heap peak +${mb(memPeak.heap - memStart.heap)} MB with up to ${memPeak.inFlight} messages in flight`);
}
log(`metrics mid-run: ${Object.entries(metricsReport).map(([k, v]) => `${k} ${v.present ? (v.sane ? 'ok' : 'INSANE') : 'MISSING'}${v.value !== undefined ? `=${+v.value.toFixed(3)}` : ''}`).join(', ')}`);

await app.stop();
wire.stop();
// ---- broker-only baseline in the same run, on the same vhost, after the daemon stopped
const broker = await runBrokerBench(Number(values['broker-n']));
log(`broker only: confirms ${broker.publishPerSec} msg/s, publish→ack ${broker.endToEndPerSec} msg/s`);

log(JSON.stringify({
  bench: 'send', connections: nConnections, bots: nBots, accounts: nAccounts, chats: targets.length, targetPerMin: Math.round(rate * 60), durationS,
  accepted: accepted.size, refused, sent, failed, lost, duplicated, openAtDeadline: open, undeliveredOpen,
  acceptedPerMin: Math.round((accepted.size / driveS) * 60), sentPerMin: Math.round((sent / drainS) * 60), allFinalS: +drainS.toFixed(1),
  acceptToSentS: { p50: p(50), p95: p(95), p99: p(99) }, floodWaits, cpuUsPerMessage: cpu.perMessage, perMessage: counts.perMessage,
  metrics: Object.fromEntries(Object.entries(metricsReport).map(([k, v]) => [k, v.present && v.sane])),
  brokerOnly: { confirmsPerSec: broker.publishPerSec, endToEndPerSec: broker.endToEndPerSec },
  ...(mediaBytes ? {
    media: {
      bytes: mediaBytes, perMin: Math.round((sent / drainS) * 60), uploads: uploadReport, inFlightPeak: memPeak.inFlight,
      sendRssGrowthMb: mb(memPeak.rss - memStart.rss), sendBuffersPeakMb: mb(memPeak.buffers - memStart.buffers), sendHeapPeakMb: mb(memPeak.heap - memStart.heap),
    },
  } : {}),
}));

await emu.stop();
await db.drop();
try { rabbitctl('delete_vhost', vhost); } catch { /* best effort */ }
rmSync(dataDir, { recursive: true, force: true });
process.exit(lost === 0 && duplicated === 0 ? 0 : 1);

// Every series the docs promise, with a value that can be true: counters/gauges finite and ≥ 0,
// histograms with a _count; the rest above 0 mid-run. telegram_session_duration_seconds only counts
// sessions that ended (0 is sane in a run without drops) and the queue may be empty at the scrape.
async function scrapeMetrics(): Promise<Record<string, { present: boolean; value?: number; sane: boolean }>> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const wanted: [string, 'histogram' | 'value'][] = [
    ['telegram_session_duration_seconds', 'histogram'], ['telegram_api_latency_seconds', 'histogram'], ['telegram_sessions_active', 'value'],
    ['telegram_messages_sent_total', 'value'], ['integration_connections', 'value'], ['integration_queue_depth', 'value'],
    ['http_request_duration_seconds', 'histogram'],
  ];
  const zeroOk = new Set(['telegram_session_duration_seconds', 'integration_queue_depth']); // may be 0 without being wrong
  const out: Record<string, { present: boolean; value?: number; sane: boolean }> = {};
  for (const [name, type] of wanted) {
    const series = type === 'histogram' ? `${name}_count` : name;
    const values = text.split('\n').filter((l) => l.startsWith(`${series}{`) || l.startsWith(`${series} `)).map((l) => Number(l.split(' ').at(-1)));
    const present = text.includes(`# TYPE ${name} `);
    const sum = values.reduce((a, b) => a + b, 0);
    out[name] = { present, ...(values.length ? { value: sum } : {}), sane: present && values.every((v) => Number.isFinite(v) && v >= 0) && (zeroOk.has(name) ? true : values.length > 0 && sum > 0) };
  }
  return out;
}

async function runBrokerBench(n: number): Promise<{ publishPerSec: number; endToEndPerSec: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./send-broker.bench.ts', import.meta.url).pathname, String(n)], {
    env: { ...process.env, AMQP_URL: amqpUrl }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let result: { publishPerSec: number; endToEndPerSec: number } | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => { if (line.startsWith('{"bench":"send-broker"')) result = JSON.parse(line); });
  await new Promise((r) => child.once('exit', r));
  if (!result) throw new Error('send-broker bench printed no result');
  return result;
}

// CPU seconds so far of: the daemon's main thread (this process's thread = pid; the driver worker
// is the rest of the process), the emulator process, the shared RabbitMQ node (other users of the
// broker count too), and this database's Postgres backends (background writers not included).
interface Io { r: number; w: number }
interface CpuSnapshot { main: number; proc: number; emu: number; rmq: number; pg: number; hostBusy: number; hostAll: number; io: { main: Io; proc: Io; rmq: Io; pg: Io } }
async function cpuSnapshot(): Promise<CpuSnapshot> {
  const hz = 100; // USER_HZ on Linux
  const ticks = (path: string) => {
    try {
      const f = readFileSync(path, 'utf8').slice(readFileSync(path, 'utf8').lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / hz;
    } catch { return 0; }
  };
  const rmqPids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { const c = readFileSync(`/proc/${d}/cmdline`, 'utf8'); return c.includes('beam.smp') && c.includes('/var/lib/rabbitmq'); } catch { return false; }
  });
  const pgPids = (await db.sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database()`).map((r) => r.pid);
  const stat = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1, 8).map(Number);
  // Read and write syscalls (syscr/syscw: read, readv, write, writev and friends; epoll and timers are not in them).
  const io = (path: string): Io => {
    try {
      const f = Object.fromEntries(readFileSync(path, 'utf8').trim().split('\n').map((l) => l.split(': ') as [string, string]));
      return { r: Number(f.syscr), w: Number(f.syscw) };
    } catch { return { r: 0, w: 0 }; }
  };
  const sum = (xs: Io[]): Io => xs.reduce((a, b) => ({ r: a.r + b.r, w: a.w + b.w }), { r: 0, w: 0 });
  return {
    io: {
      main: io(`/proc/${process.pid}/task/${process.pid}/io`), proc: io(`/proc/${process.pid}/io`),
      rmq: sum(rmqPids.map((p) => io(`/proc/${p}/io`))), pg: sum(pgPids.map((p) => io(`/proc/${p}/io`))),
    },
    main: ticks(`/proc/${process.pid}/task/${process.pid}/stat`), proc: ticks(`/proc/${process.pid}/stat`), emu: emu.proc.pid ? ticks(`/proc/${emu.proc.pid}/stat`) : 0,
    rmq: rmqPids.reduce((a, p) => a + ticks(`/proc/${p}/stat`), 0), pg: pgPids.reduce((a, p) => a + ticks(`/proc/${p}/stat`), 0),
    hostBusy: (stat.reduce((a, b) => a + b, 0) - stat[3]! - stat[4]!) / hz, hostAll: stat.reduce((a, b) => a + b, 0) / hz,
  };
}

function cpuReport(a: CpuSnapshot, drive: CpuSnapshot, b: CpuSnapshot, nAccepted: number, nSent: number) {
  const parts: [string, number][] = [
    ['daemon main thread', b.main - a.main], ['other threads (the driver worker, GC and libuv helpers)', (drive.proc - drive.main) - (a.proc - a.main)],
    ['emulator', b.emu - a.emu], ['rabbitmq', b.rmq - a.rmq], ['postgres backends', b.pg - a.pg],
  ];
  const per = (s: number, n: number) => Math.round((s * 1e6) / Math.max(1, n));
  const perMessage = Object.fromEntries(parts.map(([k, s]) => [k.split(' (')[0]!, per(s, k.startsWith('other') ? nAccepted : nSent)]));
  const cores = cpus().length;
  const wall = b.hostAll - a.hostAll;
  return {
    perMessage,
    line: parts.map(([k, s]) => `${k} ${s.toFixed(1)} s = ${per(s, k.startsWith('other') ? nAccepted : nSent)} µs`).join(', '),
    hostBusy: wall > 0 ? ((cores * (b.hostBusy - a.hostBusy)) / wall).toFixed(2) : '?',
    cores,
  };
}

// Transactions and rows written in this database, from Postgres's own statistics (every backend of it,
// the daemon's and the bench's few polling queries alike).
async function pgStats(): Promise<{ xacts: number; rows: number }> {
  const [r] = await db.sql<{ xacts: number; rows: number }[]>`
    select (xact_commit + xact_rollback)::float8 as xacts, (tup_inserted + tup_updated + tup_deleted)::float8 as rows
    from pg_stat_database where datname = current_database()`;
  return r!;
}

function countReport(w: WireCounts, pg0: { xacts: number; rows: number }, pg1: { xacts: number; rows: number }, a: CpuSnapshot, b: CpuSnapshot, nSent: number, subscribers: number, wsReceived: number) {
  const per = (n: number) => +(n / Math.max(1, nSent)).toFixed(2);
  const io = (k: 'main' | 'proc' | 'rmq' | 'pg') => ({ r: per(b.io[k].r - a.io[k].r), w: per(b.io[k].w - a.io[k].w) });
  const byPeer = (x: Record<string, number>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, per(v)]));
  const perMessage = {
    postgres: { statements: per(w.pgStatements), roundTrips: per(w.pgSyncs), transactions: per(pg1.xacts - pg0.xacts), rowsWritten: per(pg1.rows - pg0.rows) },
    rabbitmq: { publishes: per(w.amqpPublishes), acks: per(w.amqpAcks), nacks: per(w.amqpNacks), deliveries: per(w.amqpDelivers), confirms: per(w.amqpConfirms) },
    websocket: { subscribers, framesSent: per(w.wsFrames), framesReceived: per(wsReceived) },
    syscalls: { daemonMainThread: io('main'), daemonProcess: io('proc'), postgres: io('pg'), rabbitmq: io('rmq') },
    daemonSocketWrites: byPeer(w.writes), daemonSocketReads: byPeer(w.reads),
  };
  const rw = (x: { r: number; w: number }) => `${x.r} r + ${x.w} w`;
  const peers = (x: Record<string, number>) => Object.entries(x).map(([k, v]) => `${k} ${v}`).join(', ');
  const m = perMessage;
  const line = `postgres ${m.postgres.statements} statements in ${m.postgres.roundTrips} round trips, ${m.postgres.transactions} transactions, ${m.postgres.rowsWritten} rows written; `
    + `rabbitmq ${m.rabbitmq.publishes} publishes, ${m.rabbitmq.acks} acks (${m.rabbitmq.nacks} nacks/rejects), ${m.rabbitmq.deliveries} deliveries, ${m.rabbitmq.confirms} confirms; `
    + `websocket ${m.websocket.framesSent} frames sent to ${subscribers} subscribers (${m.websocket.framesReceived} received); `
    + `syscalls daemon main thread ${rw(m.syscalls.daemonMainThread)}, daemon process (with the driver worker) ${rw(m.syscalls.daemonProcess)}, postgres backends ${rw(m.syscalls.postgres)}, rabbitmq ${rw(m.syscalls.rabbitmq)}; `
    + `daemon socket writes by peer: ${peers(m.daemonSocketWrites)}; reads: ${peers(m.daemonSocketReads)}`;
  return { perMessage, line };
}
