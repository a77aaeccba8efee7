// The operator CLI as a script runs it: a child process with --json against the daemon and the
// emulator. Bot connect, channel, send and wait for `sent` over the live events, an events tail,
// listing and deleting, errors as JSON with the API's code, the config file's 0600 rule.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from '../../helpers/stack.ts';
import { startDaemon, type Daemon } from './daemon.ts';

const root = new URL('../../../', import.meta.url).pathname;
const main = join(root, 'clients/typescript/src/cli/main.ts');

interface Run { code: number | null; stdout: string; stderr: string; json: any }

function cli(args: string[], env: Record<string, string>, opts: { onStderr?: (chunk: string) => void } = {}): Promise<Run> & { kill(): void } {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
    cwd: root, env: { PATH: process.env.PATH ?? '', HOME: mkdtempSync(join(tmpdir(), 'cli-home-')), ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => { stderr += d; opts.onStderr?.(String(d)); });
  const done = new Promise<Run>((resolve) => child.on('close', (code) => {
    let json: unknown;
    try { json = JSON.parse(stdout.trim().split('\n').at(-1) ?? ''); } catch { json = undefined; }
    resolve({ code, stdout, stderr, json });
  }));
  return Object.assign(done, { kill: () => child.kill('SIGINT') });
}

const test = suite<{ d: Daemon; env: Record<string, string> }>('cli e2e', {} as { d: Daemon; env: Record<string, string> });
test.before(async (ctx) => {
  ctx.d = await startDaemon();
  ctx.env = { INTEGRATION_URL: ctx.d.app.url, INTEGRATION_TOKEN: ctx.d.token('cli-user') };
});
test.after(async ({ d }) => { await d.stop(); });

test('login --bot → chats add → send --wait (sent, from the events) → events tail sees the next one', async ({ d, env }) => {
  const { token, username, chatId } = d.botWithChannel();
  const login = await cli(['--json', 'login', '--bot', token], env);
  assert.is(login.code, 0, login.stderr);
  assert.is(login.json.status, 'active');
  assert.not.match(login.stdout + login.stderr, token, 'the bot token is never printed');
  const id = login.json.id as string;

  const chat = await cli(['--json', 'chats', 'add', id, `@${username}`], env);
  assert.is(chat.code, 0, chat.stderr);
  assert.is(chat.json.canSend, true);
  const chats = await cli(['--json', 'chats', 'ls', id], env);
  assert.equal(chats.json.items.map((c: { id: string }) => c.id), [chat.json.id]);

  const sent = await cli(['--json', 'send', '--wait', id, `@${username}`, 'hello', 'from', 'the', 'cli'], env);
  assert.is(sent.code, 0, sent.stderr);
  assert.is(sent.json.status, 'sent');
  assert.is(sent.json.text, 'hello from the cli');
  assert.is(d.emu.delivered({ chatId }).filter((m) => m.text === 'hello from the cli').length, 1);

  let states = '';
  const tail = cli(['--json', 'events', 'tail', '--type', 'message.status', '--count', '3'], env, { onStderr: (c) => (states += c) });
  // Send once the tail's socket is open (it says so on stderr).
  await until(() => states.includes('"state":"open"'), 'tail listening', 20_000);
  assert.is((await cli(['--json', 'send', id, `@${username}`, 'tailed'], env)).code, 0);
  const t = await tail;
  assert.is(t.code, 0, t.stderr);
  const frames = t.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: { text: string; status: string } });
  assert.is(frames.length, 3);
  assert.ok(frames.every((f) => f.type === 'message.status' && f.data.text === 'tailed'));
  assert.equal(frames.map((f) => f.data.status), ['queued', 'sending', 'sent']);
});

test('connections ls/get/reconnect/rm, and a deleted one answers NOT_FOUND as JSON on stderr, exit 1', async ({ d, env }) => {
  const { token } = d.botWithChannel();
  const id = (await cli(['--json', 'login', '--bot', token], env)).json.id as string;
  const ls = await cli(['--json', 'connections', 'ls'], env);
  assert.ok(ls.json.items.some((c: { id: string }) => c.id === id));
  const human = await cli(['connections', 'ls'], env);
  assert.match(human.stdout, /^ID\s+PLATFORM\s+KIND\s+STATUS/m);
  assert.match(human.stdout, new RegExp(`${id}\\s+telegram\\s+bot\\s+active`));
  assert.is((await cli(['--json', 'connections', 'get', id], env)).json.id, id);
  const re = await cli(['--json', 'connections', 'reconnect', id], env);
  assert.is(re.code, 0, re.stderr);
  assert.is(re.json.id, id);
  assert.is((await cli(['--json', 'connections', 'rm', id], env)).json.deleted, true);
  const gone = await cli(['--json', 'connections', 'get', id], env);
  assert.is(gone.code, 1);
  assert.is(JSON.parse(gone.stderr).error.code, 'NOT_FOUND');
  const plain = await cli(['connections', 'get', id], env);
  assert.match(plain.stderr, /^error: NOT_FOUND \(HTTP 404\): /);
});

test('bad input and refusals carry the API code; usage errors exit 2; another caller sees nothing', async ({ d, env }) => {
  const bad = await cli(['--json', 'login', '--bot', 'not a token'], env);
  assert.is(bad.code, 1);
  assert.is(JSON.parse(bad.stderr).error.code, 'VALIDATION_ERROR');
  const invalid = await cli(['--json', 'login', '--bot', '123456:unknown'], env);
  assert.is(JSON.parse(invalid.stderr).error.code, 'TG_BOT_TOKEN_INVALID');
  assert.is((await cli(['send'], env)).code, 2);
  const nobody = await cli(['--json', 'connections', 'ls'], { ...env, INTEGRATION_TOKEN: d.token('somebody-else') });
  assert.equal(nobody.json.items, []);
  const admin = await cli(['--json', 'admin', 'actors'], env);
  assert.is(JSON.parse(admin.stderr).error.code, 'FORBIDDEN');
  const asAdmin = await cli(['--json', 'admin', 'actors'], { ...env, INTEGRATION_TOKEN: d.token('ops', ['admin']) });
  assert.is(asAdmin.code, 0, asAdmin.stderr);
  assert.ok(Array.isArray(asAdmin.json.items));
  const down = await cli(['--json', 'connections', 'ls'], { ...env, INTEGRATION_URL: 'http://127.0.0.1:1' });
  assert.is(down.code, 1);
  assert.is(JSON.parse(down.stderr).error.code, 'NETWORK_ERROR');
});

test('admin cluster: refused without the admin scope; with it, this node holding every shard, as JSON and as tables', async ({ d, env }) => {
  const refused = await cli(['--json', 'admin', 'cluster'], env);
  assert.is(refused.code, 1);
  assert.is(JSON.parse(refused.stderr).error.code, 'FORBIDDEN');
  const admin = { ...env, INTEGRATION_TOKEN: d.token('ops', ['admin']) };
  const node = d.config.cluster.nodeId;
  const shards = d.config.shards;
  // A single node takes every shard within a few renewals.
  const view = await until(async () => {
    const r = await cli(['--json', 'admin', 'cluster'], admin);
    assert.is(r.code, 0, r.stderr);
    return r.json.shards.every((s: { owner: string | null }) => s.owner === node) ? r.json : null;
  }, 'every shard held by the one node', 60_000);
  assert.is(view.node, node);
  assert.equal(view.nodes.map((n: { id: string }) => n.id), [node]);
  assert.equal([...view.nodes[0].shards].sort((a: number, b: number) => a - b), Array.from({ length: shards }, (_, i) => i));
  assert.equal(view.shards.map((s: { shard: number }) => s.shard), Array.from({ length: shards }, (_, i) => i));
  assert.ok(view.shards.every((s: { epoch: number; expiresAt: string }) => s.epoch >= 1 && Date.parse(s.expiresAt) > 0));

  const human = await cli(['admin', 'cluster'], admin);
  assert.is(human.code, 0, human.stderr);
  assert.match(human.stdout, `answered by ${node} · 1 live node · ${shards} of ${shards} shards held, 0 free`);
  assert.match(human.stdout, /^ID\s+STARTEDAT\s+LASTSEENAT\s+HELD\s+SHARDS$/m);
  assert.match(human.stdout, new RegExp(`^${node.replace(/[.]/g, '\\.')} \\*\\s+\\S+\\s+\\S+\\s+${shards}\\s+0-${shards - 1}$`, 'm'));
  assert.match(human.stdout, /^SHARD\s+OWNER\s+EPOCH\s+EXPIRESAT\s+EXPIRESIN$/m);
  assert.is(human.stdout.split('\n').filter((l) => new RegExp(`^\\d+\\s+${node.replace(/[.]/g, '\\.')}\\s+\\d+\\s`).test(l)).length, shards);
  const free = await cli(['--json', 'admin', 'cluster', '--free'], admin);
  assert.equal(free.json.shards, []);
});

test('token mint --save writes a 0600 config the next command uses; a config others can read is refused', async ({ d }) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-config-'));
  const config = join(dir, 'config.json');
  const minted = await cli(['--json', '--config', config, '--url', d.app.url, 'token', 'mint', '--sub', 'saved-user', '--save'], { JWT_SECRET: d.secret });
  assert.is(minted.code, 0, minted.stderr);
  assert.is(statSync(config).mode & 0o777, 0o600);
  const ls = await cli(['--json', '--config', config, 'connections', 'ls'], {});
  assert.is(ls.code, 0, ls.stderr);
  chmodSync(config, 0o644);
  const refused = await cli(['--json', '--config', config, 'connections', 'ls'], {});
  assert.is(refused.code, 2);
  assert.is(JSON.parse(refused.stderr).error.code, 'CONFIG_REFUSED');
  assert.match(refused.stderr, /chmod 600/);
  writeFileSync(join(dir, 'secret'), 'x'.repeat(40), { mode: 0o644 });
  const wide = await cli(['--json', 'token', 'mint', '--sub', 'a', '--secret-file', join(dir, 'secret')], {});
  assert.is(wide.code, 2);
  const long = await cli(['--json', 'token', 'mint', '--sub', 'a', '--ttl', '999999'], { JWT_SECRET: d.secret });
  assert.match(long.stderr, /JWT_MAX_LIFETIME_S/);
});

test('send --file uploads first (POST /v1/uploads, issue 15): until that route ships the CLI says so with the API code', async ({ d, env }) => {
  const { token, username } = d.botWithChannel();
  const id = (await cli(['--json', 'login', '--bot', token], env)).json.id as string;
  const file = join(mkdtempSync(join(tmpdir(), 'cli-file-')), 'note.pdf');
  writeFileSync(file, Buffer.alloc(64 * 1024, 1));
  const r = await cli(['--json', 'send', id, `@${username}`, '--file', file, 'a caption'], env);
  if (r.code === 0) {
    assert.ok(r.json.media?.uploadId, r.stdout); // the uploads route exists: the message carries the upload
  } else {
    assert.is(JSON.parse(r.stderr).error.code, 'NOT_FOUND', r.stderr);
  }
});

test.run();
