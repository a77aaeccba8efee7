// The daemon as `npm start` runs it (src/main.ts, embedded defaults), with stdout a pipe as under a
// service manager or a log collector: it starts, serves, prints no token, keeps DATA_DIR owner-only,
// listens on its HTTP port only, and stops on SIGTERM. Also: a DATA_DIR open to others stops the start.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listeningTcpPorts } from './helpers/proc.ts';
import { freePort } from './helpers/private-services.ts';

const run = promisify(execFile);
const repo = new URL('..', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'main-'));
const jwtShape = /eyJ[\w-]*\.[\w-]+\.[\w-]+/;
const modeOf = (path: string) => lstatSync(path).mode & 0o777;

interface Daemon { child: ChildProcess; out: () => string; exited: Promise<number | null> }

function daemon(env: Record<string, string>): Daemon {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: repo, env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

// Bounded so a hang fails the test instead of stalling the run; the start itself takes ~10 s (initdb in WASM).
async function until(d: Daemon, text: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!d.out().includes(text)) {
    if (d.child.exitCode !== null) throw new Error(`daemon exited ${d.child.exitCode}:\n${d.out()}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" within ${ms} ms:\n${d.out()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The exit code, or a failure (and SIGKILL) when the daemon is still running after ms.
async function exitCode(d: Daemon, ms = 60_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      d.child.kill('SIGKILL');
      reject(new Error(`daemon still running after ${ms} ms:\n${d.out()}`));
    }, ms);
  });
  try {
    return await Promise.race([d.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('a DATA_DIR open to group/others stops the start with the chmod that fixes it (with or without JWT_SECRET)', async () => {
  for (const [name, env] of [['no-secret', {}], ['secret', { JWT_SECRET: 'x'.repeat(40) }]] as const) {
    const wide = join(root, name);
    mkdirSync(wide);
    chmodSync(wide, 0o755);
    const d = daemon({ DATA_DIR: wide, PORT: String(await freePort()), ...env });
    assert.is(await exitCode(d), 1, d.out());
    assert.ok(d.out().includes(`DATA_DIR ${wide} has mode 0755: it is readable by group/others, refusing to use it; run chmod -R go-rwx ${wide}`), d.out());
    assert.equal(readdirSync(wide), [], 'nothing written');
  }
});

test('embedded start, stdout not a terminal: serves, prints no token, DATA_DIR 0700, only the HTTP port listens', async () => {
  const dataDir = join(root, 'data');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const d = daemon({ DATA_DIR: dataDir, PORT: String(port) });
  try {
    await until(d, `API docs: ${url}/docs`);
    assert.ok(d.out().includes('npm run token -- --sub alice --scope admin'), d.out());
    assert.not.match(d.out(), jwtShape, 'no token in the output');
    assert.ok(d.out().includes(`Console:  ${url}/ (sign in with a token)`));

    assert.is(modeOf(dataDir), 0o700);
    assert.is(modeOf(join(dataDir, 'jwt-secret')), 0o600);
    assert.ok(lstatSync(join(dataDir, 'pglite.sock')).isSocket());
    assert.equal(listeningTcpPorts(d.child.pid!), [port], 'the database is not on a TCP port');

    // The printed command works and its token is accepted.
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/token.ts', '--sub', 'alice', '--scope', 'admin'], {
      cwd: repo, env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir },
    });
    const token = stdout.trim();
    assert.is((await fetch(`${url}/health/ready`)).status, 200);
    const list = await fetch(`${url}/v1/connections`, { headers: { authorization: `Bearer ${token}` } });
    assert.is(list.status, 200, await list.clone().text());
    assert.equal(((await list.json()) as { items: unknown[] }).items, []);

    d.child.kill('SIGTERM');
    assert.is(await exitCode(d), 0, d.out());
    assert.not.match(d.out(), jwtShape, 'no token in the logs either');
  } finally {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  }
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
