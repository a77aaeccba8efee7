// How the supervisor holds N Telegram accounts (issue 4): the emulator in its own process, N
// accounts with saved sessions in a fresh Postgres database, then the daemon started cold and once
// more after a restart. Prints time to all active, RSS per account, event-loop delay p99 and the
// latency of GET /admin/actors.
// Usage: npm run bench:accounts -- [--accounts 1000]
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
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

const { values } = parseArgs({ options: { accounts: { type: 'string', default: '1000' } } });
const n = Number(values.accounts);
const MB = 1024 * 1024;
const log = (line: string) => process.stdout.write(`${line}\n`);

const emu = await spawnEmulator();
const db = await createTestDatabase({ max: 10 });
const dataDir = mkdtempSync(join(tmpdir(), 'bench-accounts-'));
const keyringKey = randomBytes(32).toString('base64');
const secret = randomBytes(32).toString('base64url');
const env = {
  DATABASE_URL: db.url, DATA_DIR: dataDir, KEYRING_KEY: keyringKey, JWT_SECRET: secret, HOST: '127.0.0.1',
  LOG_LEVEL: 'warn', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'bench', TELEGRAM_DC: emu.mtproto,
  TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: '16',
};
const config = { ...loadConfig(env), port: 0 };

// ---- setup (not timed): users and saved sessions in the emulator, rows + encrypted secrets here
const setupStarted = performance.now();
const keyring = await openKeyring({ keyringKey, keyringFile: config.keyring.file });
await pool(Array.from({ length: n }, (_, i) => i), 32, async (i) => {
  const phone = `+1555${String(i).padStart(7, '0')}`;
  await control(emu.control, 'POST', '/users', { phone, firstName: `Bench ${i}` });
  const { session } = await control<{ session: string }>(emu.control, 'POST', '/sessions', { phone });
  const id = randomUUID();
  await insertConnection(db.sql, { id, owner: `owner-${i % 50}`, kind: 'user', shard: shardOf(id, config.shards), machineVersion: 1 });
  await putSecret(db.sql, id, 'session', await keyring.encrypt(session, secretContext(id, 'session')));
});
await keyring.close();
log(`setup: ${n} accounts with saved sessions in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);

const token = mintToken({ secret, sub: 'bench-admin', scopes: ['admin'] });
const delay = monitorEventLoopDelay({ resolution: 10 });

async function allActive(app: App, startedAt: number): Promise<number> {
  for (;;) {
    // The cheap counters, every 250 ms: building 10,000 actor summaries 20 times a second would load the loop it measures.
    const totals = app.supervisor.totals();
    if ((totals.active ?? 0) >= n) return (performance.now() - startedAt) / 1000;
    if (performance.now() - startedAt > 600_000) throw new Error(`not all active after 600 s: ${JSON.stringify(totals)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function adminLatency(app: App): Promise<{ p50: number; p99: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    const res = await fetch(`${app.url}/admin/actors`, { headers: { authorization: `Bearer ${token}` } });
    bytes = (await res.arrayBuffer()).byteLength;
    if (!res.ok) throw new Error(`GET /admin/actors ${res.status}`);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), bytes };
}

global.gc?.();
const rssBefore = process.memoryUsage().rss;
delay.enable();
let started = performance.now();
let app = await startApp({ ...config });
// A second monitor from the moment the app answers: the connect phase without the one-off start-up
// work (Hapi and OpenAPI route compilation, ~200 ms with zero accounts).
const connecting = monitorEventLoopDelay({ resolution: 10 });
connecting.enable();
const coldS = await allActive(app, started);
const coldConnectP99 = connecting.percentile(99) / 1e6;
// Read the loop delay before the forced GC below, which is the bench's own stall, not the daemon's.
const coldDelayP99 = delay.percentile(99) / 1e6;
const coldDelayMax = delay.max / 1e6;
global.gc?.();
const rssActive = process.memoryUsage().rss;
log(`cold start: ${n} active in ${coldS.toFixed(2)} s; event-loop delay p99 ${coldDelayP99.toFixed(1)} ms, max ${coldDelayMax.toFixed(1)} ms; after start-up p99 ${coldConnectP99.toFixed(1)} ms`);
const rssPerAccount = (rssActive - rssBefore) / n;
log(`RSS: ${(rssBefore / MB).toFixed(0)} MB before, ${(rssActive / MB).toFixed(0)} MB with ${n} active → ${(rssPerAccount / 1024).toFixed(0)} KiB per account`);
const admin = await adminLatency(app);
log(`GET /admin/actors (${n} actors, ${(admin.bytes / 1024).toFixed(0)} KiB): p50 ${admin.p50.toFixed(1)} ms, p99 ${admin.p99.toFixed(1)} ms`);

// Steady state: 5 s of nothing but heartbeats and pings.
delay.reset();
await new Promise((r) => setTimeout(r, 5000));
const steadyDelayP99 = delay.percentile(99) / 1e6;
log(`steady: event-loop delay p99 ${steadyDelayP99.toFixed(1)} ms`);

const stopStarted = performance.now();
await app.stop();
const stopS = (performance.now() - stopStarted) / 1000;
const dup = await control<{ duplicateAuthKeyUse: number; handshakes?: number }>(emu.control, 'GET', '/stats');
delay.reset();
started = performance.now();
app = await startApp({ ...config });
connecting.reset();
const restartS = await allActive(app, started);
const restartConnectP99 = connecting.percentile(99) / 1e6;
const restartDelayP99 = delay.percentile(99) / 1e6;
const restartDelayMax = delay.max / 1e6;
const after = await control<{ duplicateAuthKeyUse: number; handshakes?: number }>(emu.control, 'GET', '/stats');
log(`graceful stop: ${stopS.toFixed(2)} s; restart: ${n} active in ${restartS.toFixed(2)} s; event-loop delay p99 ${restartDelayP99.toFixed(1)} ms, max ${restartDelayMax.toFixed(1)} ms; after start-up p99 ${restartConnectP99.toFixed(1)} ms`);
log(`emulator: AUTH_KEY_DUPLICATED ${after.duplicateAuthKeyUse - dup.duplicateAuthKeyUse}, new DH handshakes ${(after.handshakes ?? 0) - (dup.handshakes ?? 0)} during the restart`);

log(JSON.stringify({
  bench: 'accounts', accounts: n, coldStartS: +coldS.toFixed(2), restartS: +restartS.toFixed(2),
  rssPerAccountKiB: Math.round(rssPerAccount / 1024), eventLoopDelayP99Ms: { cold: +coldDelayP99.toFixed(1), coldAfterStartup: +coldConnectP99.toFixed(1), steady: +steadyDelayP99.toFixed(1), restart: +restartDelayP99.toFixed(1), restartAfterStartup: +restartConnectP99.toFixed(1) },
  adminActorsMs: { p50: +admin.p50.toFixed(1), p99: +admin.p99.toFixed(1) }, gracefulStopS: +stopS.toFixed(2),
}));

await app.stop();
await emu.stop();
await db.drop();
process.exit(0);
