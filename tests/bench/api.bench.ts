// API latency with a populated daemon: startApp in-process on a fresh Postgres database (embedded
// delivery: no broker needed for reads and connects), the emulator in its own process, N existing
// bot connections, then p50/p99 of GET /v1/connections/{id} under some concurrency and of a bot
// connect (POST /v1/connections kind bot, validated against the emulator's Bot API).
// Goals (issue 6): reads p99 ≤ 20 ms, bot connect p99 ≤ 300 ms.
// Usage: npm run bench:api -- [--connections 1000] [--reads 5000] [--concurrency 4] [--connects 200] [--connect-concurrency 4]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startApp } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { control, percentile, pool, spawnEmulator } from './spawn-emulator.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    reads: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '4' },
    connects: { type: 'string', default: '200' },
    'connect-concurrency': { type: 'string', default: '4' },
  },
});
const n = Number(values.connections);
const reads = Number(values.reads);
const concurrency = Number(values.concurrency);
const connects = Number(values.connects);
const connectConcurrency = Number(values['connect-concurrency']);
const log = (line: string) => process.stdout.write(`${line}\n`);
const stamp = randomBytes(3).toString('hex');
const owners = Math.max(1, Math.min(50, Math.ceil(n / 20)));

const emu = await spawnEmulator();
const db = await createTestDatabase({ max: 10 });
const dataDir = mkdtempSync(join(tmpdir(), 'bench-api-'));
const secret = randomBytes(32).toString('base64url');
const config = {
  ...loadConfig({
    DATABASE_URL: db.url, DATA_DIR: dataDir, KEYRING_KEY: randomBytes(32).toString('base64'), JWT_SECRET: secret, HOST: '127.0.0.1',
    LOG_LEVEL: 'error', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'bench', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys,
    TELEGRAM_BOT_API_URL: emu.botApi, RATE_LIMIT_CONNECT: '1000000', RATE_LIMIT_STATUS: '1000000', RATE_LIMIT_MANAGE: '1000000', RATE_LIMIT_IP: '0', RATE_LIMIT_SEND: '1000000',
    // Latency, not tenancy, is measured: 50 owners may hold more than the default 100 connections each.
    QUOTA_CONNECTIONS_PER_OWNER: '1000000',
  }),
  port: 0,
};
const app = await startApp(config);
const tokens = Array.from({ length: owners }, (_, i) => mintToken({ secret, sub: `api-owner-${i}`, ttlSeconds: 4 * 3600 }));
const call = async (owner: number, method: string, path: string, body?: unknown) => {
  const res = await fetch(app.url + path, {
    method, headers: { authorization: `Bearer ${tokens[owner]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as { id: string; status: string } };
};
const connectBot = async (i: number, owner: number) => {
  const bot = await control<{ token: string }>(emu.control, 'POST', '/bots', { username: `a${stamp}b${i}_bot` });
  const t0 = performance.now();
  const c = await call(owner, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  const ms = performance.now() - t0;
  if (c.status !== 201 || c.body.status !== 'active') throw new Error(`bot connect ${c.status} ${JSON.stringify(c.body)}`);
  return { id: c.body.id, ms };
};
const summary = (times: number[]) => {
  const s = [...times].sort((a, b) => a - b);
  return { p50: +percentile(s, 50).toFixed(1), p99: +percentile(s, 99).toFixed(1), max: +s.at(-1)!.toFixed(1) };
};

// ---- setup: n existing bot connections
const setupStarted = performance.now();
const existing: { id: string; owner: number }[] = [];
await pool(Array.from({ length: n }, (_, i) => i), 16, async (i) => {
  const { id } = await connectBot(i, i % owners);
  existing.push({ id, owner: i % owners });
});
log(`setup: ${n} bot connections active in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s (${owners} owners)`);

// ---- reads: GET /v1/connections/{id}, random existing ids, `concurrency` at a time
const readTimes: number[] = [];
await pool(Array.from({ length: 200 }, (_, i) => existing[i % existing.length]!), concurrency, async (c) => { await call(c.owner, 'GET', `/v1/connections/${c.id}`); }); // warm-up, not counted
const readsStarted = performance.now();
await pool(Array.from({ length: reads }, () => existing[Math.floor(Math.random() * existing.length)]!), concurrency, async (c) => {
  const t0 = performance.now();
  const r = await call(c.owner, 'GET', `/v1/connections/${c.id}`);
  readTimes.push(performance.now() - t0);
  if (r.status !== 200 || r.body.id !== c.id) throw new Error(`GET ${c.id}: ${r.status}`);
});
const readS = (performance.now() - readsStarted) / 1000;
const read = summary(readTimes);
log(`GET /v1/connections/{id}: ${reads} requests, ${concurrency} concurrent, ${Math.round(reads / readS)} req/s; p50 ${read.p50} ms, p99 ${read.p99} ms, max ${read.max} ms (goal p99 ≤ 20 ms: ${read.p99 <= 20 ? 'met' : 'MISSED'})`);

// ---- bot connects, with n connections already there
const connectTimes: number[] = [];
await pool(Array.from({ length: connects }, (_, i) => n + i), connectConcurrency, async (i) => {
  connectTimes.push((await connectBot(i, i % owners)).ms);
});
const connect = summary(connectTimes);
log(`POST /v1/connections (bot): ${connects} connects, ${connectConcurrency} concurrent; p50 ${connect.p50} ms, p99 ${connect.p99} ms, max ${connect.max} ms (goal p99 ≤ 300 ms: ${connect.p99 <= 300 ? 'met' : 'MISSED'})`);

log(JSON.stringify({
  bench: 'api', connections: n, reads, concurrency, readMs: read, readGoalMet: read.p99 <= 20,
  connects, connectConcurrency, botConnectMs: connect, connectGoalMet: connect.p99 <= 300,
}));

await app.stop();
await emu.stop();
await db.drop();
rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
