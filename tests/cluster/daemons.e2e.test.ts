// Several daemons on one database, as processes (tests/delivery/fault-daemon.ts: the whole startApp),
// with real Postgres and the emulator over real sockets, short lease timings (TTL 6 s, deadline
// 3.6 s, renew 0.6 s: a loaded 2-core machine stalls a starting daemon's loop for over a second). Accounts are stored as a finished login leaves them, so every daemon could
// restore any of them: the leases alone decide who runs each one.
//   - three daemons spread the shards (none above ceil(16/3)+1) and every account is active exactly
//     once (emulator: activeAuthKeys = accounts, duplicateAuthKeyUse 0);
//   - kill -9 of one: its accounts come up on the other two, still exactly once;
//   - SIGSTOP of one past its deadline: the other takes every shard at new epochs; after SIGCONT the
//     frozen one has fenced itself (it says so) and rejoins with a share.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mintToken } from '../../src/auth/token.ts';
import { openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { shardOf } from '../../src/shard.ts';
import { insertConnection, putSecret } from '../../src/store/connections.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { clusterView, spawnDaemon as startDaemon, spread as spreadOver, stopDaemon, type ClusterView, type Daemon } from '../helpers/cluster-daemons.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const shards = 16;
const accounts = 12;

let emu: Emulator;
let db: TestDatabase;
let dataDir: string;
const daemons: Daemon[] = [];

test.before(async () => {
  [emu, db] = await Promise.all([startEmulator(), createTestDatabase()]);
  dataDir = mkdtempSync(join(tmpdir(), 'cluster-'));
});

test.after(async () => {
  for (const d of daemons) await stopDaemon(d, 'SIGKILL');
  await emu?.stop();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const keyringKey = randomBytes(32);
const secret = randomBytes(32).toString('base64url');
const admin = mintToken({ secret, sub: 'cluster-admin', scopes: ['admin'], ttlSeconds: 3600 });

function spawnDaemon(name: string): Promise<Daemon> {
  return startDaemon(name, {
    DATABASE_URL: db.url, DATA_DIR: dataDir, KEYRING_KEY: keyringKey.toString('base64'), JWT_SECRET: secret,
    HOST: '127.0.0.1', LOG_LEVEL: process.env.CLUSTER_LOG ?? 'warn', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'cluster', TELEGRAM_DC: emu.mtproto,
    TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: String(shards),
    LEASE_TTL_MS: '6000', LEASE_DEADLINE_MS: '3600', LEASE_RENEW_MS: '600', RATE_LIMIT_IP: '0', LOG_TESTS: '1',
  }).then((d) => { daemons.push(d); return d; });
}

const view = (d: Daemon) => clusterView(d, admin);

async function waitFor(fn: () => Promise<boolean> | boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) {
      const logs = daemons.map((d) => `--- ${d.name}:\n${d.out.slice(-40).join('\n')}`).join('\n');
      const rows = await db.sql`select status, shard, error, snapshot is not null as snap from connections`;
      const leases = await db.sql`select owner, count(*)::int as n from shard_leases group by owner`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${JSON.stringify([...rows])}\n${JSON.stringify([...leases])}\n${JSON.stringify(emu.stats())}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const activeAccounts = async () => {
  const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from connections where kind = 'user' and status = 'active'`;
  return r!.n;
};

const spread = (v: ClusterView, names: string[]) => spreadOver(v, names, shards);

test('three daemons share the shards, every account runs once; kill -9 and SIGSTOP move them without running any twice', async () => {
  const sql = db.sql;
  const keyring = await openKeyring({ keyringKey, keyringFile: join(dataDir, 'keyring.json') });
  const stamp = String(process.pid % 1000).padStart(3, '0');
  for (let i = 0; i < accounts; i++) {
    const phone = `+1998${stamp}${String(i).padStart(4, '0')}`;
    await emu.createUser({ phone, firstName: `Cluster ${i}` });
    const session = await emu.createSession(phone);
    const id = randomUUID();
    await insertConnection(sql, { id, owner: 'cluster-e2e', platform: 'telegram', kind: 'user', shard: shardOf(id, shards), machineVersion: 1 });
    await putSecret(sql, id, 'session', await keyring.encrypt(session, secretContext(id, 'session')));
  }
  await keyring.close();

  // The first alone (it sets SHARDS up), then two together.
  const n1 = await spawnDaemon('n1');
  await waitFor(async () => (await activeAccounts()) === accounts, 'every account active on the lone node', 30_000);
  assert.equal((await view(n1)).nodes.map((n) => n.shards.length), [shards], 'a lone node holds every shard');
  const [n2, n3] = await Promise.all([spawnDaemon('n2'), spawnDaemon('n3')]);
  await waitFor(async () => spread(await view(n2), ['n1', 'n2', 'n3']), 'the shards spread over three nodes', 30_000);
  await waitFor(async () => (await activeAccounts()) === accounts && emu.stats().activeAuthKeys === accounts, 'every account active once more', 30_000);
  assert.is(emu.stats().duplicateAuthKeyUse, 0, 'no auth key used by two connections at once');

  // kill -9: the leases of n1 expire (TTL) and the others take its shards and accounts.
  n1.child.kill('SIGKILL');
  await new Promise((r) => n1.child.once('exit', r));
  await waitFor(async () => spread(await view(n2), ['n2', 'n3']), 'n1\'s shards taken over', 30_000);
  await waitFor(async () => (await activeAccounts()) === accounts && emu.stats().activeAuthKeys === accounts, 'every account active after the kill', 30_000);
  assert.is(emu.stats().duplicateAuthKeyUse, 0, 'still no auth key used twice');

  // SIGSTOP past the deadline and the TTL: n3 takes everything; n2, woken, has fenced itself and rejoins.
  n2.child.kill('SIGSTOP');
  await waitFor(async () => spread(await view(n3), ['n3']), 'the frozen node\'s shards taken over', 30_000);
  const epochs = new Map((await view(n3)).shards.map((s) => [s.shard, s.epoch]));
  n2.child.kill('SIGCONT');
  await waitFor(() => n2.out.some((l) => l.includes('lease deadline passed without a renewal')), 'the woken node reports its self-fence', 10_000);
  await waitFor(async () => spread(await view(n3), ['n2', 'n3']), 'the woken node rejoins with a share', 30_000);
  const after = await view(n2);
  for (const s of after.shards.filter((x) => x.owner === 'n2')) assert.ok(s.epoch > epochs.get(s.shard)!, 'what n2 holds again it holds at a new epoch');
  // The frozen node's sockets were dropped by the emulator (ping_delay_disconnect) before n3 used the
  // same keys: n3 waited out the takeover grace (frozen.e2e.test.ts covers this with sends).
  assert.is(emu.stats().duplicateAuthKeyUse, 0, 'no auth key used twice across the freeze');
});

test.run();
