// Shared keys across daemon processes (src/main.ts as `npm start` runs it) on one real Postgres: two
// daemons started together with the same KEYRING_KEY end with one key version and one log-subjects
// key (the one that lost the race decrypts the winner's), and a third with another KEYRING_KEY stops
// at start with a sentence that names the cause and no key material.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { freePort } from '../helpers/private-services.ts';

const repo = new URL('../..', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'shared-keyring-daemons-'));
const cleanups: (() => Promise<unknown>)[] = [];

interface Daemon { name: string; child: ChildProcess; out: () => string; exited: Promise<number | null>; url: string }

async function daemon(name: string, db: TestDatabase, keyringKey: string): Promise<Daemon> {
  const port = await freePort();
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: repo,
    env: {
      PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: db.url, KEYRING_KEY: keyringKey,
      JWT_SECRET: randomBytes(32).toString('hex'), DATA_DIR: join(root, name), LOG_FORMAT: 'json',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { name, child, out: () => out, exited, url: `http://127.0.0.1:${port}` };
}

// Bounded so a hang fails the test instead of stalling the run.
async function started(d: Daemon, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!d.out().includes('integration service started')) {
    if (d.child.exitCode !== null) throw new Error(`${d.name} exited ${d.child.exitCode}:\n${d.out()}`);
    if (Date.now() > deadline) throw new Error(`${d.name} not started within ${ms} ms:\n${d.out()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exitCode(d: Daemon, ms = 120_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${d.name} still running after ${ms} ms:\n${d.out()}`)), ms);
  });
  try {
    return await Promise.race([d.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('two daemons with one KEYRING_KEY share the keyring; a third with another key refuses to start', async () => {
  // Not migrated: the daemons race the migrations too, as a first deployment of several replicas does.
  const db = await createTestDatabase({ migrate: false });
  cleanups.push(() => db.drop());
  const key = randomBytes(32).toString('base64');
  const [a, b] = await Promise.all([daemon('a', db, key), daemon('b', db, key)]);
  await Promise.all([started(a), started(b)]);

  const versions = await db.sql<{ version: number; source: string }[]>`select version, source from keyring_versions order by version`;
  assert.equal(versions.map((v) => [v.version, v.source]), [[1, 'created']]);
  const purposeKeys = await db.sql<{ ciphertext: string }[]>`select ciphertext from purpose_keys`;
  assert.is(purposeKeys.length, 1, 'one log-subjects key, decrypted by both');
  assert.match(purposeKeys[0]!.ciphertext, /^local:v1:/);
  for (const d of [a, b]) assert.is((await fetch(`${d.url}/health/live`)).status, 200, d.out());

  const wrongKey = randomBytes(32).toString('base64');
  const c = await daemon('c', db, wrongKey);
  assert.is(await exitCode(c), 1, c.out());
  assert.ok(c.out().includes('every node must start with the same KEYRING_KEY'), c.out());
  const [row] = await db.sql<{ wrapped_key: string }[]>`select wrapped_key from keyring_versions`;
  for (const material of [key, wrongKey, row!.wrapped_key, purposeKeys[0]!.ciphertext]) {
    assert.not.ok(c.out().includes(material), 'no key material in the output');
  }
  assert.is((await db.sql`select 1 from keyring_versions`).length, 1);

  for (const d of [a, b]) d.child.kill('SIGTERM');
  assert.equal(await Promise.all([exitCode(a), exitCode(b)]), [0, 0]);
});

test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

test.run();
