// Several daemons (issue 17): for each node count, the send rate at saturation and, from two nodes
// on, how long the connections of one node take to run again elsewhere after kill -9 and after a
// graceful stop (SIGTERM: leases handed over). Daemon processes (tests/delivery/fault-daemon.ts) with
// the default lease timings (TTL 20 s, deadline 12 s, renew 3 s), one fresh database, one fresh vhost
// of the shared RabbitMQ, the emulator in its own process; bots only, so the figures are about leases
// and delivery, not MTProto handshakes. All nodes run on this host: a killed node's leases are taken
// without the takeover grace (its process is gone, so are its sockets); across hosts add the grace
// (23 s by default, config.ts) to the kill -9 figure.
// Usage: npm run bench:cluster -- [--nodes 1,2,3] [--bots 12] [--chats 5] [--messages 4000]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../../src/auth/token.ts';
import { clusterView, running, spawnDaemon, stopDaemon, type Daemon } from '../helpers/cluster-daemons.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { control, pool, spawnEmulator } from './spawn-emulator.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,2,3' },
    bots: { type: 'string', default: '12' },
    chats: { type: 'string', default: '5' },
    messages: { type: 'string', default: '4000' },
  },
});
const nodeCounts = values.nodes!.split(',').map(Number);
if (nodeCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 8)) throw new Error(`--nodes must list counts 1..8, got ${values.nodes}`);
const nBots = Number(values.bots);
const chatsPerBot = Number(values.chats);
const nMessages = Number(values.messages);
const log = (line: string) => process.stdout.write(`${line}\n`);
const stamp = randomBytes(3).toString('hex');

// ---- services
// Telegram's flood limits lifted (here and in the daemons' pacing): the run measures the daemons, not 20 messages a minute per channel.
const emu = await spawnEmulator([], ['--limits', JSON.stringify({ perChatPerSecond: 10_000, perGroupPerMinute: 1_000_000, perBotPerSecond: 10_000 })]);
const db = await createTestDatabase();
const vhost = `bench-cluster-${stamp}`;
const rabbitctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 60_000 });
rabbitctl('add_vhost', vhost);
rabbitctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
const amqpBase = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const dataDir = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
const secret = randomBytes(32).toString('base64url');
const owner = `bench-cluster-${stamp}`;
const token = mintToken({ secret, sub: owner, ttlSeconds: 7200 });
const admin = mintToken({ secret, sub: 'bench-admin', scopes: ['admin'], ttlSeconds: 7200 });
const env = {
  DATABASE_URL: db.url, AMQP_URL: `${amqpBase.replace(/\/+$/, '')}/${encodeURIComponent(vhost)}`, DATA_DIR: dataDir,
  KEYRING_KEY: randomBytes(32).toString('base64'), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: 'error',
  TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'bench', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi,
  PACE_CHAT_PER_S: '1000', PACE_GROUP_PER_MIN: '60000', PACE_BOT_PER_S: '1000',
  // Renewals every second instead of 3 s: a joining node gets its share one shard per round, so the
  // spread after each (re)start takes ~30 s instead of ~100 s. TTL and deadline stay the defaults.
  LEASE_RENEW_MS: '1000',
  RATE_LIMIT_IP: '0', RATE_LIMIT_SEND: '1000000', RATE_LIMIT_CONNECT: '100000', RATE_LIMIT_STATUS: '1000000', RATE_LIMIT_MANAGE: '100000',
};
const daemons: Daemon[] = [];
const live = () => daemons.filter(running);

async function api<T>(d: Daemon, method: string, path: string, body?: unknown, bearer = token): Promise<T> {
  const res = await fetch(d.url + path, {
    method, headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function until(fn: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<number> {
  const t0 = performance.now();
  while (!(await fn().catch(() => false))) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return performance.now() - t0;
}

// Every bot active on a live node other than `except`, as the cluster-wide actor list tells.
async function allActive(at: Daemon, except?: string): Promise<boolean> {
  const list = await api<{ items: { state: string; node?: string }[] }>(at, 'GET', '/admin/actors', undefined, admin);
  return list.items.filter((a) => a.state === 'active' && a.node !== except).length === nBots;
}

async function settle(): Promise<void> {
  const names = live().map((d) => d.name);
  const max = Math.ceil(64 / names.length) + 1;
  await until(async () => {
    const v = await clusterView(live()[0]!, admin);
    return v.nodes.length === names.length && v.nodes.every((n) => n.shards.length >= 1 && n.shards.length <= max) && v.shards.every((s) => s.owner !== null);
  }, `the shards spread over ${names.join(',')}`);
  await until(() => allActive(live()[0]!), 'every bot active');
}

async function scale(n: number): Promise<void> {
  while (live().length > n) await stopDaemon(live().at(-1)!, 'SIGTERM');
  while (live().length < n) daemons.push(await spawnDaemon(`b${live().length + 1}`, env));
  await settle();
}

let run = 0;
async function saturation(): Promise<number> {
  run++;
  const t0 = performance.now();
  for (let i = 0; i < nMessages; i += 500) {
    const messages = Array.from({ length: Math.min(500, nMessages - i) }, (_, j) => ({ ...targets[(i + j) % targets.length]!, text: `c${stamp}:${run}:${i + j}` }));
    await api(live()[(i / 500) % live().length]!, 'POST', '/v1/messages/batch', { messages });
  }
  await until(async () => {
    const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
    return r!.n === 0;
  }, 'every message sent', 600_000);
  const ms = performance.now() - t0;
  const [f] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status = 'failed'`;
  if (f!.n > 0) log(`  (${f!.n} messages failed so far)`);
  return (nMessages / ms) * 60_000;
}

async function takeover(signal: 'SIGKILL' | 'SIGTERM', restore: boolean): Promise<number> {
  const victim = live().at(-1)!;
  const survivor = live()[0]!;
  const t0 = performance.now();
  await stopDaemon(victim, signal);
  await until(() => allActive(survivor, victim.name), `${victim.name}'s bots running elsewhere`);
  const ms = performance.now() - t0;
  if (restore) {
    daemons.push(await spawnDaemon(victim.name, env));
    await settle();
  }
  return ms;
}

// ---- setup: one node, the bots and their channels (kept for every node count)
const setupStarted = performance.now();
daemons.push(await spawnDaemon('b1', env));
const targets: { connectionId: string; chat: string }[] = [];
const bots: { id: string; botId: number }[] = [];
await pool(Array.from({ length: nBots }, (_, i) => i), 4, async (i) => {
  const bot = await control<{ botId: number; token: string }>(emu.control, 'POST', '/bots', { username: `cb${stamp}${i}_bot` });
  const c = await api<{ id: string }>(daemons[0]!, 'POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
  bots.push({ id: c.id, botId: bot.botId });
});
await pool(bots.flatMap((b) => Array.from({ length: chatsPerBot }, (_, j) => ({ b, j }))), 16, async ({ b, j }) => {
  const username = `cb${stamp}${bots.indexOf(b)}c${j}`;
  await control(emu.control, 'POST', '/chats', { type: 'channel', title: username, username, members: [{ id: b.botId, role: 'admin', rights: { postMessages: true } }] });
  const chat = await api<{ id: string }>(daemons[0]!, 'POST', `/v1/connections/${b.id}/chats`, { chat: `@${username}` });
  targets.push({ connectionId: b.id, chat: chat.id });
});
log(`setup: ${nBots} bots, ${targets.length} channels in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s; ${nMessages} messages per run`);

const rows: { nodes: number; perMin: number; kill?: number; stop?: number }[] = [];
try {
  for (const n of nodeCounts) {
    await scale(n);
    const perMin = await saturation();
    const row: (typeof rows)[number] = { nodes: n, perMin };
    if (n >= 2) {
      row.kill = await takeover('SIGKILL', true);
      row.stop = await takeover('SIGTERM', false);
    }
    rows.push(row);
    log(`  ${n} node(s): ${Math.round(perMin)} sent/min${row.kill !== undefined ? `, takeover after kill -9 ${(row.kill / 1000).toFixed(1)} s, after graceful stop ${(row.stop! / 1000).toFixed(1)} s` : ''}`);
  }
} finally {
  for (const d of daemons) await stopDaemon(d, 'SIGKILL');
  await emu.stop();
  await db.drop();
  try { rabbitctl('delete_vhost', vhost); } catch { /* best effort */ }
  rmSync(dataDir, { recursive: true, force: true });
}

const pad = (s: string, w: number) => s.padStart(w);
log('');
log(`${pad('nodes', 6)} ${pad('sent/min', 10)} ${pad('per node', 10)} ${pad('kill -9 takeover', 17)} ${pad('graceful takeover', 18)}`);
for (const r of rows) {
  const secs = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
  log(`${pad(String(r.nodes), 6)} ${pad(String(Math.round(r.perMin)), 10)} ${pad(String(Math.round(r.perMin / r.nodes)), 10)} ${pad(secs(r.kill), 17)} ${pad(secs(r.stop), 18)}`);
}
log(`(${nBots} bots, ${targets.length} channels, ${nMessages} messages per run; takeover: from the signal until every bot runs on the others; one host, 2 cores shared by every process)`);
