// Delivery under faults, end to end: the daemon (startApp, in a child process: fault-daemon.ts) with
// real RabbitMQ and Postgres, the emulator in this process (it outlives every daemon), N messages
// accepted over HTTP into many channels of bots and user accounts, then, mid-run, one of:
//   - kill -9 of the daemon and a new one on the same database;
//   - the RabbitMQ node stopped and started again (a private node: the shared one is never touched);
//   - the Postgres cluster stopped and started again (a private cluster).
// Counted in the emulator's delivered log by text (each text is unique): 0 lost, 0 duplicated. A bot
// message caught between "sending" and "sent", or whose Bot API call got no answer, is failed by
// design as "outcome unknown" (the Bot API has no random_id to make a resend safe): counted
// separately, asserted few and never delivered twice.
// FAULT_N (default 2000 for kill -9, 1000 for the restarts) scales a run; FAULT_DEBUG=1 prints progress.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mintToken } from '../../src/auth/token.ts';
import { openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { shardOf } from '../../src/shard.ts';
import { insertConnection, putSecret } from '../../src/store/connections.ts';
import { migrate } from '../../src/store/migrate.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { testServerUrl } from '../helpers/db.ts';
import { startPrivatePostgres, startPrivateRabbit, type PrivatePostgres, type PrivateRabbit } from '../helpers/private-services.ts';

const daemonFile = new URL('./fault-daemon.ts', import.meta.url).pathname;
const shards = 4;
// 8 bots × 20 channels + 8 accounts × 10 channels = 240 channels at 1 msg/s each; bots 30/s each.
const bots = 8;
const botChats = 20;
const accounts = 8;
const accountChats = 10;

let emu: Emulator;
let rabbit: PrivateRabbit;
let pg: PrivatePostgres;
let uniq = 0;
const stamp = randomBytes(3).toString('hex');

test.before(async () => {
  try {
    [emu, rabbit, pg] = await Promise.all([startEmulator(), startPrivateRabbit(), startPrivatePostgres()]);
  } catch (err) {
    console.error('fault test setup failed', err); // uvu hides an error thrown by a hook
    throw err;
  }
});

test.after(async () => {
  await emu?.stop();
  await rabbit?.close();
  await pg?.close();
});

interface Daemon { child: ChildProcess; url: string; stderr: string[] }

function spawnDaemon(env: Record<string, string>): Promise<Daemon> {
  const child = spawn(process.execPath, ['--import', 'tsx', daemonFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); if (stderr.length > 200) stderr.shift(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not listening after 60 s: ${stderr.join('')}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{"url"')) { stderr.push(line + '\n'); if (stderr.length > 200) stderr.shift(); return; }
      clearTimeout(timer);
      resolve({ child, url: (JSON.parse(line) as { url: string }).url, stderr });
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited early (${code}): ${stderr.join('')}`)); });
  });
}

async function stopDaemon(d: Daemon, signal: NodeJS.Signals): Promise<void> {
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

interface Run {
  name: string;
  dbUrl: string;
  amqpUrl: string;
  n: number;
  /** runs once a quarter of the messages reached the emulator; may replace the daemon */
  fault(ctx: { daemon: Daemon; respawn(): Promise<Daemon> }): Promise<Daemon>;
}

const debug = (msg: string) => { if (process.env.FAULT_DEBUG) console.log(`    ${new Date().toISOString().slice(11, 23)} ${msg}`); };

async function scenario(r: Run) {
  const t0 = Date.now();
  const sql = postgres(r.dbUrl, { max: 4, onnotice: () => undefined });
  const dataDir = mkdtempSync(join(tmpdir(), 'faults-'));
  const keyringKey = randomBytes(32);
  const secret = randomBytes(32).toString('base64url');
  const owner = `faults-${randomUUID()}`;
  const token = mintToken({ secret, sub: owner, ttlSeconds: 3600 });
  const adminToken = mintToken({ secret, sub: 'faults-admin', scopes: ['admin'], ttlSeconds: 3600 });
  const env = {
    DATABASE_URL: r.dbUrl, AMQP_URL: r.amqpUrl, DATA_DIR: dataDir, KEYRING_KEY: keyringKey.toString('base64'), JWT_SECRET: secret,
    HOST: '127.0.0.1', LOG_LEVEL: 'warn', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'faults', TELEGRAM_DC: emu.mtproto,
    TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: String(shards),
    RATE_LIMIT_SEND: '100000', RATE_LIMIT_CONNECT: '100000', RATE_LIMIT_STATUS: '100000', RATE_LIMIT_MANAGE: '100000', RATE_LIMIT_IP: '0', BACKOFF_BASE_MS: '200', BACKOFF_CAP_MS: '2000',
  };
  const daemons: Daemon[] = [];
  const respawn = async () => { const d = await spawnDaemon(env); daemons.push(d); return d; };
  let daemon: Daemon | undefined;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(daemon!.url + path, {
      method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  try {
    await migrate(sql);
    // Accounts: users with saved sessions in the emulator, rows + encrypted secrets here (what a
    // finished login leaves behind), so the daemon brings them up at start.
    const keyring = await openKeyring({ keyringKey, keyringFile: join(dataDir, 'keyring.json') });
    const accountUsers: { id: string; userId: number }[] = [];
    for (let i = 0; i < accounts; i++) {
      const phone = `+1999${String(process.pid % 1000).padStart(3, '0')}${String(uniq++).padStart(4, '0')}`;
      const { userId } = await emu.createUser({ phone, firstName: `Fault ${i}` });
      const session = await emu.createSession(phone);
      const id = randomUUID();
      await insertConnection(sql, { id, owner, platform: 'telegram', kind: 'user', shard: shardOf(id, shards), machineVersion: 1 });
      await putSecret(sql, id, 'session', await keyring.encrypt(session, secretContext(id, 'session')));
      accountUsers.push({ id, userId });
    }
    await keyring.close();
    debug(`${r.name}: ${accounts} accounts stored`);
    daemon = await respawn();
    debug('daemon listening');
    await waitFor(async () => {
      const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from connections where kind = 'user' and status = 'active'`;
      return n === accounts;
    }, 'accounts active', 60_000);
    debug('accounts active');
    const botConns: { id: string; userId: number }[] = [];
    for (let i = 0; i < bots; i++) {
      const bot = emu.createBot({ username: `f${stamp}${uniq++}_bot` });
      const c = await call('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
      assert.is(c.status, 'active');
      botConns.push({ id: c.id, userId: bot.botId });
    }
    // Channels, each registered over HTTP: their ids are what messages name.
    const chats: { connectionId: string; chat: string }[] = [];
    const addChats = async (c: { id: string; userId: number }, k: number, role: 'creator' | 'admin') => {
      for (let j = 0; j < k; j++) {
        const username = `f${stamp}c${uniq++}`;
        emu.createChat({ type: 'channel', title: username, username, members: [{ id: c.userId, role, ...(role === 'admin' ? { rights: { postMessages: true } } : {}) }] });
        const chat = await call('POST', `/v1/connections/${c.id}/chats`, { chat: `@${username}` });
        chats.push({ connectionId: c.id, chat: chat.id });
      }
    };
    await Promise.all([...accountUsers.map((c) => addChats(c, accountChats, 'creator')), ...botConns.map((c) => addChats(c, botChats, 'admin'))]);

    debug(`${chats.length} chats`);
    const prefix = `${r.name}:${stamp}:`;
    const ids: string[] = [];
    for (let i = 0; i < r.n; i += 500) {
      const batch = Array.from({ length: Math.min(500, r.n - i) }, (_, j) => ({ ...chats[(i + j) % chats.length]!, text: `${prefix}${i + j}` }));
      const res = await call('POST', '/v1/messages/batch', { messages: batch });
      ids.push(...(res.items as { id: string }[]).map((m) => m.id));
    }
    const tAccepted = Date.now();
    const deliveredTexts = () => emu.delivered().filter((m) => m.text.startsWith(prefix)).map((m) => m.text);
    await waitFor(() => deliveredTexts().length >= r.n / 4, 'a quarter delivered', 60_000);
    const atFault = deliveredTexts().length;
    debug(`accepted ${ids.length}; fault at ${atFault} delivered`);
    daemon = await r.fault({ daemon, respawn });
    debug('fault done');
    await waitFor(async () => {
      const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
      return n === 0;
    }, 'every message sent or failed', Number(process.env.FAULT_WAIT_MS ?? 90_000)).catch(async (err) => {
      const left = await sql`
        select m.status, c.kind, c.status as connection, m.attempts, m.error->>'code' as error, (m.published_at is not null) as published,
               min(m.available_at) as due, now() as now, count(*)::int as n, min(m.error->>'message') as message
        from messages m join connections c on c.id = m.connection_id where m.status in ('queued', 'sending') group by 1, 2, 3, 4, 5, 6`;
      // What the daemon's supervisor says of the connections still holding messages (state, last error, transitions).
      const actors = await fetch(`${daemon!.url}/admin/actors`, { headers: { authorization: `Bearer ${adminToken}` } })
        .then(async (res) => ((await res.json()) as { items?: { state: string }[] }).items?.filter((a) => a.state !== 'active'))
        .catch((e: unknown) => String(e));
      throw new Error(`${(err as Error).message}; left: ${JSON.stringify(left)}; actors not active: ${JSON.stringify(actors)}; queues: ${rabbit.queues(r.name)}; daemon: ${daemon!.stderr.join('').slice(-1500)}`);
    });
    const tDone = Date.now();

    const rows = await sql<{ id: string; text: string; status: string; kind: string; error: { code: string; message: string } | null }[]>`
      select m.id, m.text, m.status, c.kind, m.error from messages m join connections c on c.id = m.connection_id`;
    const seen = new Map<string, number>();
    for (const t of deliveredTexts()) seen.set(t, (seen.get(t) ?? 0) + 1);
    const inDoubt = rows.filter((x) => x.status === 'failed');
    const lost = rows.filter((x) => x.status !== 'failed' && !seen.has(x.text));
    const duplicated = rows.filter((x) => (seen.get(x.text) ?? 0) > 1);
    const sentNotDelivered = rows.filter((x) => x.status === 'sent' && !seen.has(x.text));
    console.log(`  ${r.name}: ${ids.length} accepted, ${atFault} delivered at the fault, ${seen.size} delivered, `
      + `lost ${lost.length}, duplicated ${duplicated.length}, bot in doubt (failed) ${inDoubt.length}; `
      + `accept→all final ${((tDone - tAccepted) / 1000).toFixed(1)} s, scenario ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.is(rows.length, r.n);
    assert.is(new Set(ids).size, r.n);
    assert.equal(lost.map((x) => x.text), [], 'lost');
    assert.equal(duplicated.map((x) => x.text), [], 'duplicated');
    assert.equal(sentNotDelivered.map((x) => x.text), [], 'sent rows reached the chat');
    assert.ok(inDoubt.every((x) => x.kind === 'bot' && /outcome unknown/.test(x.error?.message ?? '')), `only bot messages in doubt fail: ${JSON.stringify(inDoubt.slice(0, 3))}`);
    // In doubt: at most what was in flight at the fault (prefetch-bounded), far below N.
    assert.ok(inDoubt.length <= Math.max(50, r.n / 20), `few in doubt (${inDoubt.length})`);
    for (const d of daemons.slice(0, -1)) assert.ok(d.child.exitCode !== null || d.child.signalCode !== null);
    await stopDaemon(daemon, 'SIGTERM');
    assert.is(daemon.child.exitCode, 0, `graceful stop: ${daemon.stderr.join('').slice(-500)}`);
  } finally {
    for (const d of daemons) await stopDaemon(d, 'SIGKILL');
    await sql.end({ timeout: 5 });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// Measured on 2 loaded cores: kill -9 at N=5000 took 92 s, each restart at N=2000 about 65 s, 4.5 min
// in all, over tests/run.ts's 240 s per file; at 3000/1000 the file took 127-190 s and once passed
// 240 s next to other suites. 2000/1000 leaves margin. FAULT_N=5000 runs every scenario at 5000.
// FAULT_ONLY=kill|rabbit|pg runs one scenario (debugging a failure).
const only = (name: string) => !process.env.FAULT_ONLY || process.env.FAULT_ONLY === name;
const nKill = Number(process.env.FAULT_N ?? 2000);
const nRestart = Number(process.env.FAULT_N ?? 1000);

(only('kill') ? test : test.skip)('kill -9 of the daemon mid-run: 0 lost, 0 duplicated', async () => {
  const name = `f_${stamp}_kill`;
  const dbUrl = await pg.createDatabase(name);
  await scenario({
    name, dbUrl, amqpUrl: rabbit.addVhost(name), n: nKill,
    async fault({ daemon, respawn }) {
      await stopDaemon(daemon, 'SIGKILL');
      return respawn();
    },
  });
});

(only('rabbit') ? test : test.skip)('RabbitMQ stopped and started mid-run: 0 lost, 0 duplicated', async () => {
  const name = `f_${stamp}_rabbit`;
  // The shared Postgres server: only the broker is restarted here.
  const admin = postgres(testServerUrl, { max: 1, onnotice: () => undefined });
  await admin`create database ${admin(name)}`;
  await admin.end();
  const url = new URL(testServerUrl);
  url.pathname = `/${name}`;
  try {
    await scenario({
      name, dbUrl: url.toString(), amqpUrl: rabbit.addVhost(name), n: nRestart,
      async fault({ daemon }) {
        await rabbit.stop();
        await new Promise((r) => setTimeout(r, 3000));
        await rabbit.start();
        return daemon;
      },
    });
  } finally {
    const drop = postgres(testServerUrl, { max: 1, onnotice: () => undefined });
    await drop`drop database if exists ${drop(name)} with (force)`;
    await drop.end();
  }
});

(only('pg') ? test : test.skip)('Postgres stopped and started mid-run: 0 lost, 0 duplicated', async () => {
  const name = `f_${stamp}_pg`;
  const dbUrl = await pg.createDatabase(name);
  await scenario({
    name, dbUrl, amqpUrl: rabbit.addVhost(name), n: nRestart,
    async fault({ daemon }) {
      await pg.stop();
      await new Promise((r) => setTimeout(r, 3000));
      await pg.start();
      return daemon;
    },
  });
});

test.run();
