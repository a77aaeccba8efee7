// Webhooks across a crashed and a gracefully stopped daemon, end to end: the whole daemon (startApp in a
// child process: tests/delivery/fault-daemon.ts), 1,000 stored events pending for an endpoint created
// through the API, a receiver in this process that verifies every request with the `standardwebhooks`
// package. kill -9 mid-work, restart: every event arrives, repeats carry the same webhook-id and are
// counted. SIGTERM mid-work, restart: every event arrives exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Webhook } from 'standardwebhooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mintToken } from '../../src/auth/token.ts';
import { appendEvents } from '../../src/store/events.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const daemonFile = new URL('../delivery/fault-daemon.ts', import.meta.url).pathname;
const n = 1000;

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

async function stopDaemon(d: Daemon, signal: NodeJS.Signals): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill(signal);
  await exited;
}

async function waitFor(fn: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('kill -9 with 1,000 deliveries pending, then SIGTERM with 1,000 more: every event delivered and verified; repeats only after the kill, same webhook-id', async () => {
  let db: TestDatabase | undefined;
  const daemons: Daemon[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'webhooks-crash-'));
  // Receiver: each request verified with the endpoint's secret; counted by webhook-id. 10 ms per answer,
  // so a backlog is still pending when the daemon is stopped.
  let verifier: Webhook | undefined;
  const arrivals = new Map<string, number>();
  const unverified: string[] = [];
  let received = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id']);
      try {
        verifier!.verify(body, req.headers as IncomingHttpHeaders as Record<string, string>);
        arrivals.set(id, (arrivals.get(id) ?? 0) + 1);
      } catch (err) {
        unverified.push(`${id}: ${(err as Error).message}`);
      }
      received += 1;
      setTimeout(() => res.writeHead(204).end(), 10);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    db = await createTestDatabase();
    const secret = randomBytes(32).toString('base64url');
    const owner = `crash-${randomUUID()}`;
    const token = mintToken({ secret, sub: owner, ttlSeconds: 3600 });
    const env = {
      DATABASE_URL: db.url, DATA_DIR: dataDir, KEYRING_KEY: randomBytes(32).toString('base64'), JWT_SECRET: secret,
      HOST: '127.0.0.1', LOG_LEVEL: 'warn', EGRESS_ALLOW_HOSTS: `127.0.0.1:${port}`,
    };
    let daemon = await spawnDaemon(env);
    daemons.push(daemon);
    const res = await fetch(`${daemon.url}/v1/webhooks`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, events: ['*'] }),
    });
    const created = (await res.json()) as { id: string; secret: string };
    assert.is(res.status, 201);
    verifier = new Webhook(created.secret);

    const store = async () => (await appendEvents(db!.sql, Array.from({ length: n }, (_, i) => ({
      customerId: owner, type: 'message.status' as const, data: { i },
    })))).map((e) => e.id);
    const delivered = (ids: string[]) => ids.every((id) => arrivals.has(id));

    // Phase 1: kill -9 once a tenth has arrived.
    const first = await store();
    await waitFor(() => received >= n / 10, 'a tenth delivered before the kill', 60_000);
    await stopDaemon(daemon, 'SIGKILL');
    const [pending] = await db.sql<{ n: number; leased: number }[]>`
      select count(*)::int as n, count(lease_owner)::int as leased from webhook_deliveries where status = 'pending'`;
    assert.ok(pending!.n >= n / 2, `still pending at the kill: ${pending!.n}`);
    daemon = await spawnDaemon(env);
    daemons.push(daemon);
    // The killed daemon's leases run out (45 s: timeout 15 s + 30 s) before its rows are sent again.
    await waitFor(() => delivered(first), 'every event of phase 1', 90_000);
    const repeats1 = first.reduce((a, id) => a + arrivals.get(id)! - 1, 0);
    assert.ok(repeats1 <= pending!.leased, `repeats ${repeats1} only among the ${pending!.leased} rows the killed daemon held`);

    // Phase 2: a graceful stop with a backlog, then a restart: nothing lost, nothing twice.
    const second = await store();
    const before = received;
    await waitFor(() => received >= before + n / 10, 'a tenth of phase 2 delivered', 60_000);
    await stopDaemon(daemon, 'SIGTERM');
    const [left] = await db.sql<{ n: number; leased: number }[]>`
      select count(*)::int as n, count(lease_owner)::int as leased from webhook_deliveries where status = 'pending'`;
    assert.ok(left!.n > 0, 'a backlog was left at the stop');
    assert.is(left!.leased, 0, 'a graceful stop leaves no lease behind');
    daemon = await spawnDaemon(env);
    daemons.push(daemon);
    await waitFor(() => delivered(second), 'every event of phase 2', 60_000);
    const repeats2 = second.reduce((a, id) => a + arrivals.get(id)! - 1, 0);
    assert.is(repeats2, 0, 'no repeat after a graceful stop');
    assert.equal(unverified, [], 'every request verified with standardwebhooks');
    // The last answers are recorded a loop turn after the receiver saw them.
    const succeeded = async () => (await db!.sql<{ n: number }[]>`select count(*)::int as n from webhook_deliveries where status = 'succeeded'`)[0]!.n;
    await waitFor(async () => await succeeded() === 2 * n, 'every delivery recorded as succeeded', 30_000);
    const [rows] = await db.sql<{ n: number }[]>`select count(*)::int as n from webhook_deliveries`;
    assert.is(rows!.n, 2 * n, 'one delivery row per event');
    console.log(`  kill -9: ${pending!.n} pending (${pending!.leased} leased) at the kill, ${repeats1} repeats (same webhook-id); SIGTERM: ${left!.n} pending, ${repeats2} repeats`);
  } finally {
    for (const d of daemons) await stopDaemon(d, 'SIGKILL');
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
