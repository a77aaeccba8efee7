// Issue 17's acceptance at scale: three daemons with the DEFAULT lease timings (TTL 20 s, deadline
// 12 s, renew 3 s, disconnect_delay 20 s, takeover grace 13 s), 300 logged-in accounts (sessions
// stored as a finished login leaves them) and 300 bots on the emulator, 64 shards.
//   1. spread: no node above ceil(64/3)+1 shards; every connection active exactly once (the
//      cluster-wide actor list names each once; emulator activeAuthKeys = accounts, duplicateAuthKeyUse 0);
//   2. a 10,000/min send through the live nodes; kill -9 of one node mid-send: the time until every
//      connection it ran is active on the others, then, once all is sent, lost / duplicated (by text,
//      in the emulator's delivered log) and AUTH_KEY_DUPLICATED (emulator + the survivors' metric).
// By default each daemon runs under a host name of its own (a UTS namespace; root), so the survivors
// treat the killed one as another machine's: they wait out the takeover grace, as across hosts. With
// --hosts one they share this host's name and skip the grace for a dead local pid.
// Flood limits are lifted in the emulator and the daemons' pacing (the run is about ownership, not
// 20 messages a minute per channel). Bot messages in flight at the kill -9 are failed "outcome
// unknown" by design (tests/delivery/faults.e2e.test.ts), counted apart from lost. The takeover is
// timed from the kill until the cluster-wide GET /admin/actors (asked once a second) shows every
// connection of the killed node active elsewhere.
// About 7 minutes here, most of it the rebalancing at start (one shard per 3 s round).
// Usage: npm run bench:cluster-scale -- [--accounts 300] [--bots 300] [--rate 10000] [--send-s 90] [--kill-at-s 20]
//        [--hosts separate|one] [--logs DIR]   (CLUSTER_LOG=info for the lease rounds in DIR/<node>.log)
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../../src/auth/token.ts';
import { openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { shardOf } from '../../src/shard.ts';
import { insertConnection, putSecret } from '../../src/store/connections.ts';
import { clusterView, metric, running, spawnDaemon, spread, stopDaemon, type Daemon } from '../helpers/cluster-daemons.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { control, pool, spawnEmulator } from './spawn-emulator.ts';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '300' },
    bots: { type: 'string', default: '300' },
    rate: { type: 'string', default: '10000' },
    'send-s': { type: 'string', default: '90' },
    'kill-at-s': { type: 'string', default: '20' },
    hosts: { type: 'string', default: 'separate' },
    logs: { type: 'string' },
  },
});
const nAccounts = Number(values.accounts);
const nBots = Number(values.bots);
const perMin = Number(values.rate);
const sendS = Number(values['send-s']);
const killAtS = Number(values['kill-at-s']);
const separateHosts = values.hosts === 'separate';
if (!['separate', 'one'].includes(values.hosts!)) throw new Error('--hosts is separate or one');
const shards = 64;
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const stamp = randomBytes(3).toString('hex');
const t0 = performance.now();
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---- services
const emu = await spawnEmulator([], ['--limits', JSON.stringify({ perChatPerSecond: 10_000, perGroupPerMinute: 1_000_000, perBotPerSecond: 10_000 })]);
const db = await createTestDatabase({ max: 10 });
const vhost = `bench-scale-${stamp}`;
const rabbitctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 60_000 });
rabbitctl('add_vhost', vhost);
rabbitctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
const amqpBase = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const dataDir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
const keyringKey = randomBytes(32);
const secret = randomBytes(32).toString('base64url');
const owner = `bench-scale-${stamp}`;
const token = mintToken({ secret, sub: owner, ttlSeconds: 7200 });
const admin = mintToken({ secret, sub: 'bench-admin', scopes: ['admin'], ttlSeconds: 7200 });
// No LEASE_* and no TELEGRAM_DISCONNECT_DELAY_S: the defaults are what is measured.
const env = {
  DATABASE_URL: db.url, AMQP_URL: `${amqpBase.replace(/\/+$/, '')}/${encodeURIComponent(vhost)}`, DATA_DIR: dataDir,
  KEYRING_KEY: keyringKey.toString('base64'), JWT_SECRET: secret, HOST: '127.0.0.1', LOG_LEVEL: process.env.CLUSTER_LOG ?? 'warn', LOG_TESTS: '1',
  TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'bench', TELEGRAM_DC: emu.mtproto, TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi,
  PACE_CHAT_PER_S: '1000', PACE_GROUP_PER_MIN: '60000', PACE_BOT_PER_S: '1000', QUOTA_CONNECTIONS_PER_OWNER: '100000',
  RATE_LIMIT_IP: '0', RATE_LIMIT_SEND: '1000000', RATE_LIMIT_CONNECT: '100000', RATE_LIMIT_STATUS: '1000000', RATE_LIMIT_MANAGE: '100000',
};
const daemons: Daemon[] = [];
const live = () => daemons.filter(running);
const start = async (name: string) => {
  const d = await spawnDaemon(name, env, separateHosts ? `host-${name}` : undefined);
  // --logs DIR: each daemon's log lines to DIR/<name>.log (CLUSTER_LOG=info shows the lease rounds).
  if (values.logs) {
    mkdirSync(values.logs, { recursive: true });
    const file = createWriteStream(join(values.logs, `${name}.log`));
    d.child.stdout!.on('data', (b: Buffer) => file.write(b));
    d.child.stderr!.on('data', (b: Buffer) => file.write(b));
  }
  daemons.push(d);
  return d;
};

interface EmuStats { activeAuthKeys: number; duplicateAuthKeyUse: number; delivered: number; connections: number }
const emuStats = () => control<EmuStats>(emu.control, 'GET', '/stats');

async function call(d: Daemon, method: string, path: string, body?: unknown, bearer = token) {
  const res = await fetch(d.url + path, {
    method, headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json().catch(() => ({}))) as any };
}
// Setup calls: a 503 while a shard changes hands (or a loaded node sheds) is tried again.
async function must<T>(method: string, path: string, body?: unknown): Promise<T> {
  for (let i = 0; ; i++) {
    const d = live()[i % live().length]!;
    const r = await call(d, method, path, body).catch((err: Error) => ({ status: 0, json: { message: err.message } }));
    if (r.status >= 200 && r.status < 300) return r.json as T;
    if ((r.status !== 503 && r.status !== 0 && r.status !== 409) || i > 180) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

async function until(fn: () => Promise<boolean>, what: string, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!(await fn().catch(() => false))) {
    if (performance.now() - started > timeoutMs) {
      const logs = live().map((d) => `--- ${d.name}:\n${d.out.slice(-15).join('')}`).join('\n');
      throw new Error(`timed out after ${secs(timeoutMs)} waiting for ${what}\n${JSON.stringify(await emuStats())}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return performance.now() - started;
}

interface Actor { id: string; kind: string; state: string; node?: string }
// The cluster-wide actor list, asked of each live node in turn (a loaded one may shed the call).
async function actors(nodes = live()): Promise<Actor[]> {
  for (const d of nodes) {
    const r = await call(d, 'GET', '/admin/actors', undefined, admin).catch(() => undefined);
    if (r?.status === 200 && !r.json.unreachableNodes) return r.json.items as Actor[];
  }
  throw new Error('no node answered the whole actor list');
}
/** Every connection listed exactly once, every one active, none on `except`. */
const onceActive = (list: Actor[], except?: string) => {
  const ids = new Set(list.map((a) => a.id));
  return ids.size === list.length && list.length === nAccounts + nBots && list.every((a) => a.state === 'active' && a.node !== except);
};

async function run(): Promise<boolean> {
  // ---- setup: accounts stored as a finished login leaves them (any node could restore them)
  const asSavedByDaemon = (made: string): string => {
    // The emulator's /sessions says port 443; the daemon saves the DC's real address after a login.
    // StringSession layout: '1' + base64(dc u8, address length u16, address, port u16, auth key).
    const raw = Buffer.from(made.slice(1), 'base64');
    const key = raw.subarray(3 + raw.readUInt16BE(1) + 2);
    const [host, port] = [emu.mtproto.slice(0, emu.mtproto.lastIndexOf(':')), Number(emu.mtproto.slice(emu.mtproto.lastIndexOf(':') + 1))];
    const head = Buffer.alloc(3);
    head.writeUInt8(raw.readUInt8(0), 0);
    head.writeUInt16BE(Buffer.byteLength(host), 1);
    const p = Buffer.alloc(2);
    p.writeUInt16BE(port, 0);
    return `1${Buffer.concat([head, Buffer.from(host), p, key]).toString('base64')}`;
  };
  const keyring = await openKeyring({ keyringKey, keyringFile: join(dataDir, 'keyring.json') });
  const users: { id: string; userId: number }[] = [];
  await pool(Array.from({ length: nAccounts }, (_, i) => i), 16, async (i) => {
    const phone = `+1996${stamp.slice(0, 3).replace(/\D/g, '0')}${String(i).padStart(4, '0')}`;
    const { userId } = await control<{ userId: number }>(emu.control, 'POST', '/users', { phone, firstName: `Scale ${i}` });
    const { session } = await control<{ session: string }>(emu.control, 'POST', '/sessions', { phone });
    const id = randomUUID();
    await insertConnection(db.sql, { id, owner, platform: 'telegram', kind: 'user', shard: shardOf(id, shards), machineVersion: 1 }, 100_000);
    await putSecret(db.sql, id, 'session', await keyring.encrypt(asSavedByDaemon(session), secretContext(id, 'session')));
    users.push({ id, userId });
  });
  await keyring.close();
  log(`setup: ${nAccounts} accounts stored in ${secs(performance.now() - t0)}; starting 3 daemons (${separateHosts ? 'each under its own host name' : 'one host'})`);

  // ---- 1. three daemons, the spread, every connection once
  const tStart = performance.now();
  await Promise.all(['s1', 's2', 's3'].map((n) => start(n)));
  const names = live().map((d) => d.name);
  await until(async () => spread(await clusterView(live()[0]!, admin), names, shards), 'the shards spread over three nodes', 600_000);
  const spreadAt = performance.now() - tStart;
  const accountsMs = await until(async () => (await actors()).filter((a) => a.kind !== 'bot' && a.state === 'active').length === nAccounts, 'every account active', 300_000);
  log(`three daemons started and the shards spread ${secs(spreadAt)} after the spawn; every account active ${secs(accountsMs)} later`);

  const bots: { id: string; userId: number }[] = [];
  await pool(Array.from({ length: nBots }, (_, i) => i), 8, async (i) => {
    const bot = await control<{ botId: number; token: string }>(emu.control, 'POST', '/bots', { username: `s${stamp}${i}_bot` });
    bots.push({ id: (await must<{ id: string }>('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token })).id, userId: bot.botId });
  });
  const targets: { connectionId: string; chat: string; kind: 'user' | 'bot' }[] = [];
  await pool([...users.map((c) => ({ c, kind: 'user' as const })), ...bots.map((c) => ({ c, kind: 'bot' as const }))], 12, async ({ c, kind }) => {
    const username = `s${stamp}${kind[0]}${c.id.slice(0, 8)}`;
    await control(emu.control, 'POST', '/chats', {
      type: 'channel', title: username, username,
      members: [{ id: c.userId, role: kind === 'user' ? 'creator' : 'admin', ...(kind === 'bot' ? { rights: { postMessages: true } } : {}) }],
    });
    const chat = await must<{ id: string }>('POST', `/v1/connections/${c.id}/chats`, { chat: `@${username}` });
    targets.push({ connectionId: c.id, chat: chat.id, kind });
  });
  await until(async () => onceActive(await actors()), 'every connection active exactly once', 300_000);
  const v = await clusterView(live()[0]!, admin);
  const s1 = await emuStats();
  const perNode = v.nodes.map((n) => `${n.id} ${n.shards.length}`).join(', ');
  const list1 = await actors();
  const byNode = new Map<string, number>();
  for (const a of list1) byNode.set(a.node ?? '?', (byNode.get(a.node ?? '?') ?? 0) + 1);
  log(`spread: shards per node ${perNode} (max allowed ${Math.ceil(shards / 3) + 1}); connections per node ${[...byNode].map(([n, c]) => `${n} ${c}`).join(', ')}`);
  log(`every connection active exactly once: ${list1.length} actors listed, ${new Set(list1.map((a) => a.id)).size} distinct, all active; emulator activeAuthKeys ${s1.activeAuthKeys} (accounts ${nAccounts}), duplicateAuthKeyUse ${s1.duplicateAuthKeyUse}`);
  const spreadOk = v.nodes.every((n) => n.shards.length <= Math.ceil(shards / 3) + 1) && s1.activeAuthKeys === nAccounts && s1.duplicateAuthKeyUse === 0;

  // ---- 2. a 10,000/min send; kill -9 of one node during it
  const prefix = `scale:${stamp}:`;
  const perTick = perMin / 600; // every 100 ms
  const total = Math.round((perMin / 60) * sendS);
  const answers = new Map<string, number>();
  let accepted = 0;
  let unanswered = 0;
  let retried = 0;
  let seq = 0;
  let sending = true;
  const posts = new Set<Promise<void>>();
  // A client as API.md asks: a batch refused with a retryable answer (409 CONNECTION_NOT_ACTIVE while
  // a connection moves, 503 with Retry-After) or left without one (the killed node had it open) is
  // sent again to a live node a second later, for up to 60 s after the last new batch. Every message
  // carries an idempotency key, so a batch the killed node had stored is answered, not stored twice.
  const post = async (messages: unknown[]): Promise<void> => {
    const nodes = live();
    const d = nodes[Math.floor(Math.random() * nodes.length)]!;
    try {
      const r = await call(d, 'POST', '/v1/messages/batch', { messages });
      const key = `${r.status}${r.status >= 300 ? ` ${r.json?.error?.code}` : ''}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
      // 200: a retried batch the killed node had stored, answered from the idempotency keys.
      if (r.status === 202 || r.status === 200) accepted += messages.length;
      else if ((r.status === 409 || r.status === 503) && sending) {
        retried++;
        await new Promise((res) => setTimeout(res, 1000));
        return post(messages);
      }
    } catch {
      unanswered++;
      if (sending) {
        retried++;
        await new Promise((res) => setTimeout(res, 1000));
        return post(messages);
      }
    }
  };
  const victim = live()[2]!;
  const sender = (async () => {
    const started = performance.now();
    while (seq < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 100 + 1) * perTick));
      const messages = [];
      for (; seq < due; seq++) {
        const t = targets[seq % targets.length]!;
        messages.push({ connectionId: t.connectionId, chat: t.chat, text: `${prefix}${seq}`, idempotencyKey: `${prefix}${seq}` });
      }
      if (messages.length > 0) {
        const p = post(messages).finally(() => posts.delete(p));
        posts.add(p);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const postedMs = performance.now() - started;
    // Refused batches are retried for up to 60 s more.
    const stopRetrying = setTimeout(() => { sending = false; }, 60_000);
    while (posts.size > 0) await Promise.all(posts);
    clearTimeout(stopRetrying);
    sending = false;
    return postedMs;
  })();

  await new Promise((r) => setTimeout(r, killAtS * 1000));
  const victimIds = list1.filter((a) => a.node === victim.name).map((a) => a.id);
  const victimAccounts = list1.filter((a) => a.node === victim.name && a.kind !== 'bot').length;
  log(`kill -9 ${victim.name} (${victimIds.length} connections: ${victimAccounts} accounts, ${victimIds.length - victimAccounts} bots) after ${seq} messages`);
  const killedAt = performance.now();
  await stopDaemon(victim, 'SIGKILL');
  const survivors = live();
  // Asked once a second: the cluster-wide list costs the survivors 600 summaries and a peer call
  // while they are busy reconnecting, so the figure is to the second.
  let asked = 0;
  await until(async () => {
    if (performance.now() - asked < 1000) return false;
    asked = performance.now();
    return onceActive(await actors(survivors), victim.name) && (await emuStats()).activeAuthKeys === nAccounts;
  }, `${victim.name}'s connections active on the others`, 180_000);
  const takeover = performance.now() - killedAt;
  log(`takeover: every connection of ${victim.name} active on ${survivors.map((d) => d.name).join(' + ')} ${secs(takeover)} after the kill`);
  const driveMs = await sender;
  log(`send: ${total} messages offered in ${secs(driveMs)} (${Math.round((total / driveMs) * 60_000)}/min; ${perMin}/min asked), ${retried} batches retried; waiting for every one to be final`);
  await until(async () => {
    const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
    return r!.n === 0;
  }, 'every message sent or failed', 900_000);

  // ---- counts
  const rows = await db.sql<{ text: string; status: string; kind: string; code: string | null; message: string | null }[]>`
    select m.text, m.status, c.kind, m.error->>'code' as code, m.error->>'message' as message from messages m join connections c on c.id = m.connection_id`;
  const delivered = await control<{ text: string }[]>(emu.control, 'GET', '/messages');
  const seen = new Map<string, number>();
  for (const m of delivered) if (m.text?.startsWith(prefix)) seen.set(m.text, (seen.get(m.text) ?? 0) + 1);
  const inDoubt = rows.filter((r) => r.status === 'failed' && r.kind === 'bot' && /outcome unknown/.test(r.message ?? ''));
  const failedOther = rows.filter((r) => r.status === 'failed' && !inDoubt.includes(r));
  const lost = rows.filter((r) => r.status !== 'failed' && !seen.has(r.text));
  const duplicated = [...seen.values()].filter((n) => n > 1).length;
  const s2 = await emuStats();
  let daemonDup = 0;
  for (const d of survivors) daemonDup += await metric(d, 'integration_auth_key_duplicated_total').catch(() => 0);
  const [expired] = await db.sql<{ n: number }[]>`select count(*)::int as n from connections where status = 'error' and error->>'code' = 'TG_SESSION_EXPIRED'`;
  const failedCodes = new Map<string, number>();
  for (const r of failedOther) failedCodes.set(r.code ?? '?', (failedCodes.get(r.code ?? '?') ?? 0) + 1);

  log(`answers: ${JSON.stringify(Object.fromEntries(answers))}, ${unanswered} unanswered (requests the killed node had open; retried elsewhere); ${accepted} of ${total} messages acknowledged`);
  log(`messages: ${accepted} acknowledged, ${rows.length} stored, ${seen.size} delivered; lost ${lost.length + Math.max(0, accepted - rows.length)}, duplicated ${duplicated}, bot in doubt at the kill ${inDoubt.length}, failed otherwise ${failedOther.length}${failedCodes.size ? ` ${JSON.stringify(Object.fromEntries(failedCodes))}` : ''}`);
  log(`AUTH_KEY_DUPLICATED: emulator duplicateAuthKeyUse ${s2.duplicateAuthKeyUse}, survivors' integration_auth_key_duplicated_total ${daemonDup}, accounts in error TG_SESSION_EXPIRED ${expired!.n}; activeAuthKeys ${s2.activeAuthKeys}`);
  return spreadOk && takeover <= 40_000 && lost.length === 0 && accepted <= rows.length && duplicated === 0 && s2.duplicateAuthKeyUse === 0 && daemonDup === 0 && expired!.n === 0;
}

let ok = false;
try {
  ok = await run();
} catch (err) {
  log(`FAILED: ${(err as Error).stack ?? err}`);
} finally {
  for (const d of daemons) await stopDaemon(d, 'SIGKILL');
  await emu.stop();
  await db.drop();
  try { rabbitctl('delete_vhost', vhost); } catch { /* best effort */ }
  rmSync(dataDir, { recursive: true, force: true });
}
log(`RESULT ${ok ? 'PASS' : 'FAIL'} (spread, every connection once, takeover <= 40 s, 0 lost, 0 duplicated, 0 AUTH_KEY_DUPLICATED)`);
process.exit(ok ? 0 : 1);
