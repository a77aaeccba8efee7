// `npm run demo` as a newcomer runs it: it starts, a bot connects with what it prints, Ctrl-C stops
// it cleanly, and a second run starts fresh (no connection left from the first, pointing at an
// emulator that is gone) and works again.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../', import.meta.url).pathname;

async function runDemo(dataDir: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/demo/main.ts'], {
    cwd: root, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 60_000;
  while (!/export INTEGRATION_TOKEN=\S+/.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the demo did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = /export INTEGRATION_URL=(\S+)/.exec(out)![1]!;
  const token = /export INTEGRATION_TOKEN=(\S+)/.exec(out)![1]!;
  const botToken = /login --bot (\S+)/.exec(out)![1]!;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: await res.json() as any };
  };
  return { call, botToken, output: () => out, stop: async () => { child.kill('SIGINT'); return exited; } };
}

test('the demo runs, connects a bot, stops on Ctrl-C, and runs again from fresh data', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'demo-'));
  try {
    const first = await runDemo(dataDir);
    const bot = await first.call('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: first.botToken });
    assert.is(bot.status, 201, JSON.stringify(bot.body));
    assert.is(bot.body.status, 'active');
    assert.is(await first.stop(), 0, first.output());

    const second = await runDemo(dataDir);
    const list = await second.call('GET', '/v1/connections');
    assert.equal(list.body.items, [], 'no connection left over from the first run');
    const again = await second.call('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: second.botToken });
    assert.is(again.body.status, 'active');
    assert.is(await second.stop(), 0, second.output());
    assert.not.match(second.output(), /"log.level":"error"/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
