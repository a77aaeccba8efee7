// How the supervisor holds N Telegram accounts (issue 4): the emulator in its own process, N
// accounts with saved sessions in a fresh Postgres database, then the daemon started cold and once
// more after a restart. Prints time to all active, RSS per account, event-loop delay p99 and the
// latency of GET /admin/actors.
// Event-loop delay is sampled every 10 ms in this process (the daemon runs in-process; the emulator
// and Postgres are other processes) and reported per window: start of the app → all active, the app
// answering → all active (without the one-off start-up work), and the steady window. CPU is given per
// window for the daemon and for the emulator.
// With --dcs N the emulator serves N DCs and account i lives on DC (i mod N) + 1, its saved session
// made there: the daemon must reach each account on its own DC (migrations and DH per DC are printed).
// After the cold start, --logins K more accounts (spread over the DCs the same way) log in for the
// first time through the API, by phone and code: each one homed off DC 1 costs one PHONE_MIGRATE.
// The restart then brings back n + K accounts, and must need 0 migrations (each session's home DC is
// saved with it).
// Usage: npm run bench:accounts -- [--accounts 1000] [--steady 65] [--dcs 1] [--logins 30]
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startApp, type App } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { shardOf } from '../../src/shard.ts';
import { insertConnection, putSecret } from '../../src/store/connections.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { control, percentile, pool, spawnEmulator } from './spawn-emulator.ts';

const { values } = parseArgs({ options: { accounts: { type: 'string', default: '1000' }, steady: { type: 'string', default: '65' }, dcs: { type: 'string', default: '1' }, logins: { type: 'string', default: '30' } } });
const n = Number(values.accounts);
const dcs = Number(values.dcs);
const logins = Number(values.logins);
/** Accounts that must be active: n restored, plus the first logins once they are done. */
let expected = n;
const MB = 1024 * 1024;
const log = (line: string) => process.stdout.write(`${line}\n`);

const emu = await spawnEmulator([], ['--dcs', String(dcs)]);
const db = await createTestDatabase({ max: 10 });
const dataDir = mkdtempSync(join(tmpdir(), 'bench-accounts-'));
const keyringKey = randomBytes(32).toString('base64');
const secret = randomBytes(32).toString('base64url');
const env = {
  DATABASE_URL: db.url, DATA_DIR: dataDir, KEYRING_KEY: keyringKey, JWT_SECRET: secret, HOST: '127.0.0.1',
  LOG_LEVEL: 'warn', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'bench', TELEGRAM_DC: emu.mtproto,
  TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: '16',
  // 50 owners share up to 10,000+ accounts: measured here is the supervisor, not the per-owner quota.
  QUOTA_CONNECTIONS_PER_OWNER: '1000000',
  // The first logins are 2 connect-group calls each, beyond the default 10 a minute.
  RATE_LIMIT_CONNECT: '1000000',
};
const config = { ...loadConfig(env), port: 0 };

// The emulator's /sessions says port 443 for every DC (its own test clients map the DC id to a port);
// the daemon saves the home DC's real address with a session after a login, and connects there on
// restore. Rewritten here to what the daemon would have saved, so a DC-2 account is not sent to DC 1.
// StringSession layout: '1' + base64(dc u8, address length u16, address, port u16, auth key).
const asSavedByDaemon = (made: string): string => {
  const raw = Buffer.from(made.slice(1), 'base64');
  const dc = raw.readUInt8(0);
  const key = raw.subarray(3 + raw.readUInt16BE(1) + 2);
  const address = emu.dcs[String(dc)];
  if (!address) throw new Error(`the emulator serves no DC ${dc}`);
  const at = address.lastIndexOf(':');
  const host = Buffer.from(address.slice(0, at));
  const head = Buffer.alloc(3);
  head.writeUInt8(dc, 0);
  head.writeUInt16BE(host.length, 1);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(Number(address.slice(at + 1)), 0);
  return `1${Buffer.concat([head, host, port, key]).toString('base64')}`;
};

// ---- setup (not timed): users and saved sessions in the emulator, rows + encrypted secrets here
const setupStarted = performance.now();
const keyring = await openKeyring({ keyringKey, keyringFile: config.keyring.file });
await pool(Array.from({ length: n }, (_, i) => i), 32, async (i) => {
  const phone = `+1555${String(i).padStart(7, '0')}`;
  await control(emu.control, 'POST', '/users', { phone, firstName: `Bench ${i}`, dc: (i % dcs) + 1 });
  const { session: made } = await control<{ session: string }>(emu.control, 'POST', '/sessions', { phone });
  const session = asSavedByDaemon(made);
  const id = randomUUID();
  await insertConnection(db.sql, { id, owner: `owner-${i % 50}`, platform: 'telegram', kind: 'user', shard: shardOf(id, config.shards), machineVersion: 1 }, config.quotas.connectionsPerOwner);
  await putSecret(db.sql, id, 'session', await keyring.encrypt(session, secretContext(id, 'session')));
});
await keyring.close();
log(`setup: ${n} accounts with saved sessions on ${dcs} DC(s) in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);

interface EmulatorStats { duplicateAuthKeyUse: number; handshakes: number; migrationsServed: number; byDc: Record<string, { handshakes: number }> }
const emuStats = () => control<EmulatorStats>(emu.control, 'GET', '/stats');
/** What the emulator served between two /stats reads: DH per DC and *_MIGRATE answers. */
const served = (from: EmulatorStats, to: EmulatorStats) =>
  `migrations ${to.migrationsServed - from.migrationsServed}, new DH handshakes ${to.handshakes - from.handshakes} (${Object.keys(to.byDc).map((dc) => `DC ${dc}: ${to.byDc[dc]!.handshakes - from.byDc[dc]!.handshakes}`).join(', ')})`;
const beforeCold = await emuStats();

// CPU seconds of the daemon (this process: the app runs in-process, the bench itself only polls
// counters) and of the emulator process (utime + stime from /proc, 100 ticks a second on Linux).
const cpu = () => {
  const u = process.cpuUsage();
  const stat = readFileSync(`/proc/${emu.proc.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { daemon: (u.user + u.system) / 1e6, emulator: (Number(fields[11]) + Number(fields[12])) / 100 };
};
const cpuSince = (from: { daemon: number; emulator: number }) => {
  const now = cpu();
  return { daemon: now.daemon - from.daemon, emulator: now.emulator - from.emulator };
};
const round2 = (c: { daemon: number; emulator: number }) => ({ daemon: +c.daemon.toFixed(2), emulator: +c.emulator.toFixed(2) });
const cpuLine = (c: { daemon: number; emulator: number }, seconds: number) =>
  `CPU daemon ${c.daemon.toFixed(2)} s (${(c.daemon / seconds * 100).toFixed(0)}% of a core, ${(c.daemon / n * 1000).toFixed(2)} ms/account), emulator ${c.emulator.toFixed(2)} s (${(c.emulator / seconds * 100).toFixed(0)}%)`;

const token = mintToken({ secret, sub: 'bench-admin', scopes: ['admin'] });
const delay = monitorEventLoopDelay({ resolution: 10 });

async function allActive(app: App, startedAt: number): Promise<number> {
  for (;;) {
    // The cheap counters, every 250 ms: building 10,000 actor summaries 20 times a second would load the loop it measures.
    const totals = app.supervisor.totals();
    if ((totals.active ?? 0) >= expected) return (performance.now() - startedAt) / 1000;
    if (performance.now() - startedAt > 600_000) throw new Error(`not all active after 600 s: ${JSON.stringify(totals)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function adminLatency(app: App): Promise<{ p50: number; p99: number; bytes: number; supervisorP50: number; loop: Delay }> {
  const times: number[] = [];
  let bytes = 0;
  // What the calls cost everyone else: the loop delay while they run (the answer is streamed a page
  // of 500 actors per turn; built in one turn it held the loop ~70 ms at 10,000).
  const during = monitorEventLoopDelay({ resolution: 10 });
  during.enable();
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    const res = await fetch(`${app.url}/admin/actors`, { headers: { authorization: `Bearer ${token}` } });
    bytes = (await res.arrayBuffer()).byteLength;
    if (!res.ok) throw new Error(`GET /admin/actors ${res.status}`);
    times.push(performance.now() - t);
  }
  during.disable();
  times.sort((a, b) => a - b);
  // The supervisor's part alone (the summaries and their JSON), to tell it from the HTTP layer's.
  const own: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    JSON.stringify(app.supervisor.actors());
    own.push(performance.now() - t);
  }
  own.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), bytes, supervisorP50: percentile(own, 50), loop: read(during) };
}

// A histogram takes its sample when its 10 ms timer fires: one due during a stall just before a
// reset records that stall after it. One timer turn first, so each window holds its own stalls only.
const resetAfterTurn = async (...histograms: { reset(): void }[]) => {
  await new Promise((r) => setTimeout(r, 20));
  for (const h of histograms) h.reset();
};

// A second monitor from the moment the app answers: the connect phase without the one-off start-up
// work (Hapi and OpenAPI route compilation, ~200 ms with zero accounts).
const connecting = monitorEventLoopDelay({ resolution: 10 });

interface Start { app: App; seconds: number; cpu: { daemon: number; emulator: number }; whole: Delay; connect: Delay }
interface Delay { p99: number; max: number }
const read = (h: { percentile(p: number): number; max: number }): Delay => ({ p99: h.percentile(99) / 1e6, max: h.max / 1e6 });
const delayLine = (s: Start) =>
  `event-loop delay (start of app → all active) p99 ${s.whole.p99.toFixed(1)} ms, max ${s.whole.max.toFixed(1)} ms; from the app answering → all active p99 ${s.connect.p99.toFixed(1)} ms, max ${s.connect.max.toFixed(1)} ms`;

/** Starts the app and waits until all n are active: time, CPU and the loop delay of both windows. */
async function startUntilActive(): Promise<Start> {
  await resetAfterTurn(delay);
  const cpuAt = cpu();
  const started = performance.now();
  const app = await startApp({ ...config });
  await resetAfterTurn(connecting);
  const seconds = await allActive(app, started);
  // Read before any forced GC that follows, which is the bench's own stall, not the daemon's.
  return { app, seconds, cpu: cpuSince(cpuAt), whole: read(delay), connect: read(connecting) };
}

global.gc?.();
const rssBefore = process.memoryUsage().rss;
delay.enable();
connecting.enable();
const cold = await startUntilActive();
let app = cold.app;
const afterCold = await emuStats();
log(`cold start at the emulator: ${served(beforeCold, afterCold)}`);
global.gc?.();
const rssActive = process.memoryUsage().rss;
log(`cold start: ${n} active in ${cold.seconds.toFixed(2)} s; ${delayLine(cold)}`);
log(`cold start: ${cpuLine(cold.cpu, cold.seconds)}`);
const rssPerAccount = (rssActive - rssBefore) / n;
log(`RSS: ${(rssBefore / MB).toFixed(0)} MB before, ${(rssActive / MB).toFixed(0)} MB with ${n} active → ${(rssPerAccount / 1024).toFixed(0)} KiB per account`);
const admin = await adminLatency(app);
log(`GET /admin/actors (${n} actors, ${(admin.bytes / 1024).toFixed(0)} KiB): p50 ${admin.p50.toFixed(1)} ms, p99 ${admin.p99.toFixed(1)} ms (30 sequential calls); event-loop delay meanwhile p99 ${admin.loop.p99.toFixed(1)} ms, max ${admin.loop.max.toFixed(1)} ms; supervisor.actors() + JSON.stringify in one go p50 ${admin.supervisorP50.toFixed(1)} ms`);

// ---- first logins through the API: phone → code → active, for accounts homed on every DC
const beforeLogins = await emuStats();
const loginsStarted = performance.now();
const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
};
const loginHomes: Record<number, number> = {};
await pool(Array.from({ length: logins }, (_, j) => j), 8, async (j) => {
  // UK mobile-length numbers: possible numbers, as the API asks.
  const phone = `+44770${String(j).padStart(7, '0')}`;
  const dc = (j % dcs) + 1;
  loginHomes[dc] = (loginHomes[dc] ?? 0) + 1;
  await control(emu.control, 'POST', '/users', { phone, firstName: `Login ${j}`, dc });
  const c = await call<{ id: string; status: string }>('POST', '/v1/connections', { platform: 'telegram', kind: 'user', phone });
  if (c.status !== 'awaiting-code') throw new Error(`login ${j}: ${c.status}`);
  const { code } = await control<{ code: string }>(emu.control, 'GET', `/users/${encodeURIComponent(phone)}/code`);
  const done = await call<{ status: string }>('POST', `/v1/connections/${c.id}/code`, { code });
  if (done.status !== 'active') throw new Error(`login ${j}: ${done.status} after the code`);
});
expected = n + logins;
const loginsS = (performance.now() - loginsStarted) / 1000;
const afterLogins = await emuStats();
log(`first logins: ${logins} by phone and code (homes ${Object.entries(loginHomes).map(([dc, k]) => `DC ${dc}: ${k}`).join(', ')}; the daemon starts at DC 1) in ${loginsS.toFixed(2)} s; at the emulator: ${served(beforeLogins, afterLogins)}`);

// Steady state: nothing but keepalives, one per account every 60 s ±10%; the default 65 s window
// holds about one per account, so the idle cost per account is a fair average.
const STEADY_S = Number(values.steady);
await resetAfterTurn(delay);
const steadyAt = cpu();
await new Promise((r) => setTimeout(r, STEADY_S * 1000));
const steadyCpu = cpuSince(steadyAt);
const steadyDelayP99 = delay.percentile(99) / 1e6;
const idleUs = (c: number) => (c / n / STEADY_S) * 1e6;
log(`steady (${STEADY_S} s idle): event-loop delay p99 ${steadyDelayP99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms; CPU per idle account per second: daemon ${idleUs(steadyCpu.daemon).toFixed(1)} µs, emulator ${idleUs(steadyCpu.emulator).toFixed(1)} µs (daemon ${(steadyCpu.daemon / STEADY_S * 100).toFixed(0)}% of a core, emulator ${(steadyCpu.emulator / STEADY_S * 100).toFixed(0)}%)`);

const stopStarted = performance.now();
await app.stop();
const stopS = (performance.now() - stopStarted) / 1000;
const dup = await emuStats();
// A restart in production is a new process: collect the stopped app's clients first, or marking
// and sweeping ~0.5 GB of them (at 10,000 accounts) lands in the restart window.
global.gc?.();
const restart = await startUntilActive();
app = restart.app;
const after = await emuStats();
log(`graceful stop: ${stopS.toFixed(2)} s; restart: ${expected} active (${n} restored + ${logins} first logins) in ${restart.seconds.toFixed(2)} s; ${delayLine(restart)}`);
log(`restart: ${cpuLine(restart.cpu, restart.seconds)}`);
log(`emulator during the restart: AUTH_KEY_DUPLICATED ${after.duplicateAuthKeyUse - dup.duplicateAuthKeyUse}, ${served(dup, after)}`);

log(JSON.stringify({
  bench: 'accounts', accounts: n, dcs, coldStartS: +cold.seconds.toFixed(2), restartS: +restart.seconds.toFixed(2),
  rssPerAccountKiB: Math.round(rssPerAccount / 1024), eventLoopDelayP99Ms: { cold: +cold.whole.p99.toFixed(1), coldAfterStartup: +cold.connect.p99.toFixed(1), steady: +steadyDelayP99.toFixed(1), restart: +restart.whole.p99.toFixed(1), restartAfterStartup: +restart.connect.p99.toFixed(1) },
  adminActorsMs: { p50: +admin.p50.toFixed(1), p99: +admin.p99.toFixed(1), loopDelayP99: +admin.loop.p99.toFixed(1), loopDelayMax: +admin.loop.max.toFixed(1) }, gracefulStopS: +stopS.toFixed(2),
  logins, migrations: { cold: afterCold.migrationsServed - beforeCold.migrationsServed, firstLogins: afterLogins.migrationsServed - beforeLogins.migrationsServed, restart: after.migrationsServed - dup.migrationsServed },
  newDh: { cold: afterCold.handshakes - beforeCold.handshakes, firstLogins: afterLogins.handshakes - beforeLogins.handshakes, restart: after.handshakes - dup.handshakes },
  cpuS: { cold: round2(cold.cpu), restart: round2(restart.cpu), steadyPerAccountPerSecondUs: { daemon: +idleUs(steadyCpu.daemon).toFixed(1), emulator: +idleUs(steadyCpu.emulator).toFixed(1) } },
}));

await app.stop();
await emu.stop();
await db.drop();
process.exit(0);
