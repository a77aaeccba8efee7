// `npm run drill:replica`: a Postgres failover rehearsed for real on this machine. A scratch primary
// and a streaming replica (pg_basebackup -R, a slot, synchronous replication), the daemon on the
// primary with the Telegram emulator, writes through the service's HTTP API (a bot, a channel,
// messages: some sent, some only accepted), a crash of the primary (immediate stop), the replica
// promoted, the daemon pointed at it, and a comparison: every message the service answered 202 for
// is there, every one it reported `sent` is still `sent`, the rest finish, new writes work.
// Runs as root (clusters as the `postgres` OS user, as ops/backup/drill.sh) or as postgres.
// DRILL_BREAK=1 cuts the replica off before the last writes with asynchronous replication: the drill
// must then report a MISMATCH (tests/ops/replica-drill.test.ts checks both).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startApp, type App } from '../../src/app.ts';
import { mintToken } from '../../src/auth/token.ts';
import { loadConfig } from '../../src/config.ts';
import { startEmulator } from '../emulator/index.ts';
import { freePort } from '../helpers/private-services.ts';

const PGBIN = process.env.PGBIN ?? '/usr/lib/postgresql/15/bin';
const breakIt = process.env.DRILL_BREAK === '1';
// Default: the second batch meets a Telegram flood wait, so some messages are still unsent at the
// crash and must finish from the replica (~90 s: a send interrupted mid-call ends OUTCOME_UNKNOWN
// only after its lease). DRILL_FLOOD=0 lets every send finish before the crash (~20 s, what npm test runs).
const flood = process.env.DRILL_FLOOD !== '0';
const sentCount = Number(process.env.DRILL_SENT ?? 10);
const pendingCount = Number(process.env.DRILL_PENDING ?? 10);
const t0 = Date.now();
const step = (text: string) => process.stdout.write(`[drill ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${text}\n`);
const fail = (text: string): never => {
  process.stdout.write(`drill: MISMATCH: ${text}\n`);
  throw Object.assign(new Error(text), { mismatch: true });
};

const asRoot = process.getuid?.() === 0;
const pg = (bin: string, args: string[]) => {
  const cmd = asRoot ? ['runuser', ['-u', 'postgres', '--', join(PGBIN, bin), ...args]] as const : [join(PGBIN, bin), args] as const;
  const r = spawnSync(cmd[0], cmd[1], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
};

const work = mkdtempSync(join(tmpdir(), 'pg-replica-drill-'));
if (asRoot) chownSync(work, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
const primaryDir = join(work, 'primary');
const replicaDir = join(work, 'replica');
const started: string[] = [];
const sqls: postgres.Sql[] = [];
let app: App | undefined;
const emu = await startEmulator();

async function cleanup(): Promise<void> {
  await app?.stop(2000).catch(() => undefined);
  await Promise.all(sqls.map((s) => s.end({ timeout: 1 }).catch(() => undefined)));
  for (const dir of started) spawnSync(asRoot ? 'runuser' : join(PGBIN, 'pg_ctl'), asRoot ? ['-u', 'postgres', '--', join(PGBIN, 'pg_ctl'), '-D', dir, '-m', 'immediate', 'stop'] : ['-D', dir, '-m', 'immediate', 'stop']);
  await emu.stop();
  rmSync(work, { recursive: true, force: true });
}

const startCluster = (dir: string) => {
  pg('pg_ctl', ['-D', dir, '-l', `${dir}.log`, '-w', '-t', '60', 'start']);
  started.push(dir);
};
const connect = (port: number, db = 'postgres') => {
  const s = postgres({ host: '127.0.0.1', port, user: 'postgres', database: db, max: 1, onnotice: () => undefined });
  sqls.push(s);
  return s;
};
const until = async (what: string, fn: () => Promise<boolean>, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

// A timeout or Ctrl-C still stops the scratch clusters and removes the temp dir.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void cleanup().finally(() => process.exit(143)));

let exitCode = 0;
try {
  // --- 1. primary and a synchronous streaming replica ------------------------------------------
  const [p1, p2] = [await freePort(), await freePort()];
  pg('initdb', ['-D', primaryDir, '--no-sync', '-U', 'postgres', '-A', 'trust']);
  appendFileSync(primaryDir + '/postgresql.conf', [
    "listen_addresses = '127.0.0.1'", `port = ${p1}`, `unix_socket_directories = '${work}'`, 'wal_level = replica', 'max_wal_senders = 4',
    'fsync = off', '',
  ].join('\n'));
  startCluster(primaryDir);
  const primary = connect(p1);
  await primary`select pg_create_physical_replication_slot('replica1')`;
  await primary`create database integration`;
  pg('pg_basebackup', ['-h', '127.0.0.1', '-p', String(p1), '-U', 'postgres', '-D', replicaDir, '-X', 'stream', '-S', 'replica1', '-R', '--no-sync', '-c', 'fast']);
  appendFileSync(replicaDir + '/postgresql.auto.conf', `primary_conninfo = 'host=127.0.0.1 port=${p1} user=postgres application_name=replica1'\n`);
  appendFileSync(replicaDir + '/postgresql.conf', `port = ${p2}\nhot_standby = on\n`);
  startCluster(replicaDir);
  const replica = connect(p2);
  // Every commit the service sees has reached the replica's disk: a crash of the primary loses none.
  // Set once the replica streams (before, every commit would wait for a standby that is not there).
  if (!breakIt) {
    await primary`alter system set synchronous_standby_names = 'replica1'`;
    await primary`select pg_reload_conf()`;
  }
  await until('the replica streaming', async () => (await primary`select sync_state from pg_stat_replication where application_name = 'replica1'`)[0]?.sync_state === (breakIt ? 'async' : 'sync'));
  step(`primary :${p1} and replica :${p2} streaming (${breakIt ? 'async, DRILL_BREAK' : 'sync'}) in ${work}`);

  // --- 2. the daemon on the primary, writes through its API ------------------------------------
  const secret = randomBytes(32).toString('base64url');
  const baseEnv = {
    DATA_DIR: join(work, 'daemon'), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: process.env.DRILL_LOG_LEVEL ?? 'error', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'drill',
    TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, RATE_LIMIT_SEND: '100000', RATE_LIMIT_MANAGE: '100000', SHUTDOWN_TIMEOUT_MS: '3000',
    // Both daemons run in this process (one pid, one default NODE_ID), so the second cannot tell the
    // first is gone and takes its unreleased leases after their TTL and the takeover grace: with the
    // defaults 20 s + 23 s, here 6 s + 7.6 s (the drill is about the data, not lease timing).
    LEASE_TTL_MS: '6000', LEASE_DEADLINE_MS: '3600', LEASE_RENEW_MS: '600',
  };
  app = await startApp({ ...loadConfig({ ...baseEnv, DATABASE_URL: `postgres://postgres@127.0.0.1:${p1}/integration` }), port: 0 });
  const token = mintToken({ secret, sub: 'drill' });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(app!.url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) as any : undefined };
  };
  const bot = emu.createBot({ username: `drill${process.pid}_bot` });
  const conn = (await call('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token })).body;
  if (conn?.status !== 'active') fail(`bot not active: ${JSON.stringify(conn)}`);
  // One channel per message: Telegram's per-chat pacing (a message every few seconds in a channel)
  // is not what this drill is about.
  const channels: Array<{ name: string; chatId: number }> = [];
  for (let i = 0; i < sentCount + pendingCount + 1; i++) {
    const name = `drill${process.pid}c${i}`;
    const { chatId } = emu.createChat({ type: 'channel', title: `Drill ${i}`, username: name, members: [{ id: bot.botId, role: 'admin', rights: { postMessages: true } }] });
    if ((await call('POST', `/v1/connections/${conn.id}/chats`, { chat: `@${name}` })).status !== 201) fail(`could not add @${name}`);
    channels.push({ name, chatId });
  }
  const accepted: string[] = [];
  const send = async (text: string) => {
    const r = await call('POST', '/v1/messages', { connectionId: conn.id, chat: `@${channels[accepted.length]!.name}`, text });
    if (r.status !== 202) fail(`send answered ${r.status} ${JSON.stringify(r.body)}`);
    accepted.push(r.body.id);
    return r.body.id as string;
  };
  for (let i = 0; i < sentCount; i++) await send(`sent before the crash ${i}`);
  await until('the first messages sent', async () => (await call('GET', `/v1/messages?connectionId=${conn.id}&status=sent&limit=100`)).body.items.length === sentCount)
    .catch(async (err: Error) => {
      const items = (await call('GET', `/v1/messages?connectionId=${conn.id}&limit=100`)).body.items as Array<{ status: string; error?: unknown }>;
      process.stdout.write(`messages: ${JSON.stringify(items.map((m) => [m.status, m.error]))}\n`);
      throw err;
    });
  let reportedSent = new Set<string>((await call('GET', `/v1/messages?connectionId=${conn.id}&status=sent&limit=100`)).body.items.map((m: { id: string }) => m.id));
  step(`${reportedSent.size} messages sent through the service (202, then sent)`);

  if (breakIt) {
    // The replica loses its primary: nothing written from now on reaches it.
    await replica`alter system set primary_conninfo = ''`;
    await replica`select pg_reload_conf()`;
    await until('the replica cut off', async () => (await primary`select count(*)::int as n from pg_stat_replication`)[0]!.n === 0);
  }
  // Telegram asks the bot to wait (flood wait, 5 s): these are accepted and committed but still
  // unsent when the primary goes, so the daemon must send them from the replica afterwards.
  if (flood) emu.fault({ type: 'flood-wait', target: bot.botId, seconds: 5, count: 1 });
  for (let i = 0; i < pendingCount; i++) await send(`accepted before the crash ${i}`);
  // Without the flood wait, let every send finish first: a send cut mid-call would end OUTCOME_UNKNOWN
  // only after its lease (~60 s), which the quick run does not wait for.
  if (!flood) {
    await until('all sent before the crash', async () => (await call('GET', `/v1/messages?connectionId=${conn.id}&status=sent&limit=100`)).body.items.length === accepted.length);
    reportedSent = new Set(accepted);
  }
  const primaryCounts = (await connect(p1, 'integration')`select status, count(*)::int as n from messages group by status order by status`);
  step(`${pendingCount} more accepted (202), then the primary crashes; primary had ${primaryCounts.map((r) => `${r.status} ${r.n}`).join(', ')}`);

  // --- 3. crash, promote, point the daemon at the replica --------------------------------------
  pg('pg_ctl', ['-D', primaryDir, '-m', 'immediate', 'stop']);
  started.splice(started.indexOf(primaryDir), 1);
  // The old daemon lost its database: give its graceful stop 3 s, then leave it (a crashed node).
  const old = app;
  app = undefined;
  await Promise.race([old.stop(3000).catch(() => undefined), new Promise((r) => setTimeout(r, 3000))]);
  pg('pg_ctl', ['-D', replicaDir, '-w', 'promote']);
  await until('the replica promoted', async () => (await replica`select pg_is_in_recovery() as r`)[0]!.r === false);
  step('primary stopped (immediate); replica promoted');
  app = await startApp({ ...loadConfig({ ...baseEnv, DATABASE_URL: `postgres://postgres@127.0.0.1:${p2}/integration` }), port: 0 });
  const afterRows = await connect(p2, 'integration')`select id::text as id, status from messages`;
  const onReplica = new Map(afterRows.map((r) => [r.id as string, r.status as string]));
  const lost = accepted.filter((id) => !onReplica.has(id));
  const unsent = [...reportedSent].filter((id) => onReplica.get(id) !== 'sent');
  step(`daemon restarted on the promoted replica: ${onReplica.size} messages there`);
  if (lost.length) fail(`${lost.length} of ${accepted.length} accepted messages are missing after the failover`);
  if (unsent.length) fail(`${unsent.length} messages reported sent are not sent after the failover`);

  // --- 4. the service goes on: pending messages finish, new writes work ------------------------
  await until('every accepted message final', async () => {
    const items = (await call('GET', `/v1/messages?connectionId=${conn.id}&limit=100`)).body.items as Array<{ status: string }>;
    return items.length === accepted.length && items.every((m) => m.status === 'sent' || m.status === 'failed');
  }, 60_000);
  const final = (await call('GET', `/v1/messages?connectionId=${conn.id}&limit=100`)).body.items as Array<{ status: string; error?: { code: string } }>;
  const after = await send('written after the failover');
  await until('the new message sent', async () => (await call('GET', `/v1/messages/${after}`)).body.status === 'sent');
  const delivered = channels.flatMap((c) => emu.delivered({ chatId: c.chatId }));
  const twice = delivered.length - new Set(delivered.map((m) => m.text)).size;
  const failed = final.filter((m) => m.status === 'failed');
  process.stdout.write([
    '',
    `${'accepted (202) before the crash'.padEnd(40)} ${accepted.length - 1}`,
    `${'reported sent before the crash'.padEnd(40)} ${reportedSent.size}`,
    `${'still unsent when the primary crashed'.padEnd(40)} ${primaryCounts.filter((r) => r.status !== 'sent').reduce((n, r) => n + (r.n as number), 0)}`,
    `${'accepted messages missing afterwards'.padEnd(40)} ${lost.length}`,
    `${'sent before, not sent afterwards'.padEnd(40)} ${unsent.length}`,
    `${'finished after the failover'.padEnd(40)} ${final.length - failed.length} sent, ${failed.length} failed (${[...new Set(failed.map((m) => m.error?.code))].join(', ') || '-'})`,
    `${'delivered to the chat twice'.padEnd(40)} ${twice}`,
    '',
  ].join('\n'));
  if (twice > 0) fail(`${twice} messages reached the chat twice`);
  step('drill passed: nothing committed was lost');
} catch (err) {
  exitCode = 1;
  if (!(err as { mismatch?: boolean }).mismatch) process.stdout.write(`drill: FAILED: ${(err as Error).stack}\n`);
} finally {
  await cleanup();
}
process.exit(exitCode);
