// kill -9 of the daemon in the middle of 200 media sends, then in the middle of 200 edits and 50
// deletes of those messages, each time followed by a new daemon on the same database: 0 lost, 0
// duplicated (counted in the emulator's delivered log by caption), every file with its sha256, every
// edit applied once, every delete made. The daemon (fault-daemon.ts, startApp) runs with a private
// RabbitMQ node (the shared one on 5672 is never touched); the emulator and a file server for the media
// URLs live in this process and outlive every daemon. A bot message whose send was cut off is failed
// OUTCOME_UNKNOWN by design (the Bot API has no random_id): counted, asserted few, never delivered twice;
// it is then neither edited nor deleted.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mintToken } from '../../src/auth/token.ts';
import { openKeyring, secretContext } from '../../src/crypto/keyring.ts';
import { shardOf } from '../../src/shard.ts';
import { insertConnection, putSecret } from '../../src/store/connections.ts';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startPrivateRabbit, type PrivateRabbit } from '../helpers/private-services.ts';

const daemonFile = new URL('./fault-daemon.ts', import.meta.url).pathname;
const shards = 4;
const accounts = 4;
const bots = 4;
// Few chats, so that each phase lasts ~10 s at Telegram's 1 message a second per chat and the kill lands mid-way.
const chatsEach = 3;
const sends = Number(process.env.MEDIA_CRASH_N ?? 200);
const deletes = Math.round(sends / 4);

let emu: Emulator;
let rabbit: PrivateRabbit;
let db: TestDatabase;
let files: Server;
let filesBase = '';
const served = new Map<string, Buffer>();
const stamp = randomBytes(3).toString('hex');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const debug = (msg: string) => { if (process.env.FAULT_DEBUG) console.log(`    ${new Date().toISOString().slice(11, 23)} ${msg}`); };

test.before(async () => {
  try {
    [emu, rabbit, db] = await Promise.all([startEmulator(), startPrivateRabbit(), createTestDatabase({ max: 4 })]);
    files = createServer((req, res) => {
      const body = served.get(req.url ?? '');
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    filesBase = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  } catch (err) {
    console.error('media crash setup failed', err); // uvu hides an error thrown by a hook
    throw err;
  }
});

test.after(async () => {
  await emu?.stop();
  await rabbit?.close();
  await db?.drop();
  files?.close();
});

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

async function stop(d: Daemon, signal: NodeJS.Signals): Promise<void> {
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

test(`kill -9 mid-way through ${sends} media sends, then through ${sends} edits and ${deletes} deletes: 0 lost, 0 duplicated, edits applied once`, async () => {
  const t0 = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'media-crash-'));
  const keyringKey = randomBytes(32);
  const secret = randomBytes(32).toString('base64url');
  const owner = `media-crash-${randomUUID()}`;
  const token = mintToken({ secret, sub: owner, ttlSeconds: 3600 });
  const env = {
    DATABASE_URL: db.url, AMQP_URL: rabbit.addVhost(`m_${stamp}`), DATA_DIR: dataDir, KEYRING_KEY: keyringKey.toString('base64'), JWT_SECRET: secret,
    HOST: '127.0.0.1', LOG_LEVEL: 'warn', TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'media-crash', TELEGRAM_DC: emu.mtproto,
    TELEGRAM_SERVER_KEYS: emu.serverKeys, TELEGRAM_BOT_API_URL: emu.botApi, SHARDS: String(shards), EGRESS_ALLOW_HOSTS: new URL(filesBase).host,
    RATE_LIMIT_SEND: '100000', RATE_LIMIT_CONNECT: '100000', RATE_LIMIT_STATUS: '100000', RATE_LIMIT_MANAGE: '100000', RATE_LIMIT_IP: '0',
    BACKOFF_BASE_MS: '200', BACKOFF_CAP_MS: '2000',
  };
  const daemons: Daemon[] = [];
  let daemon: Daemon | undefined;
  const respawn = async () => { const d = await spawnDaemon(env); daemons.push(d); return d; };
  const call = async (method: string, path: string, body?: unknown, raw?: { data: Buffer; type: string }) => {
    const res = await fetch(daemon!.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(raw ? { 'content-type': raw.type } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }), ...(raw ? { body: raw.data } : {}),
    });
    const json = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  try {
    const { migrate } = await import('../../src/store/migrate.ts');
    await migrate(db.sql);
    // Accounts as a finished login leaves them (rows + encrypted sessions); bots and chats over HTTP.
    const keyring = await openKeyring({ keyringKey, keyringFile: join(dataDir, 'keyring.json') });
    const accountUsers: { id: string; userId: number }[] = [];
    for (let i = 0; i < accounts; i++) {
      const phone = `+1999${String(process.pid % 1000).padStart(3, '0')}${String(5000 + i)}`;
      const { userId } = await emu.createUser({ phone, firstName: `Media ${i}` });
      const id = randomUUID();
      await insertConnection(db.sql, { id, owner, platform: 'telegram', kind: 'user', shard: shardOf(id, shards), machineVersion: 1 });
      await putSecret(db.sql, id, 'session', await keyring.encrypt(await emu.createSession(phone), secretContext(id, 'session')));
      accountUsers.push({ id, userId });
    }
    await keyring.close();
    daemon = await respawn();
    await waitFor(async () => {
      const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from connections where kind = 'user' and status = 'active'`;
      return n === accounts;
    }, 'accounts active', 60_000);
    const botConns: { id: string; userId: number }[] = [];
    for (let i = 0; i < bots; i++) {
      const bot = emu.createBot({ username: `m${stamp}${i}_bot` });
      const c = await call('POST', '/v1/connections', { platform: 'telegram', kind: 'bot', token: bot.token });
      botConns.push({ id: c.id, userId: bot.botId });
    }
    const chats: { connectionId: string; chat: string; bot: boolean }[] = [];
    let k = 0;
    for (const c of [...accountUsers, ...botConns]) {
      const isBot = botConns.includes(c);
      for (let j = 0; j < chatsEach; j++) {
        const username = `m${stamp}c${k++}`;
        emu.createChat({ type: 'channel', title: username, username, members: [{ id: c.userId, role: isBot ? 'admin' : 'creator' }] });
        chats.push({ connectionId: c.id, chat: (await call('POST', `/v1/connections/${c.id}/chats`, { chat: `@${username}` })).id, bot: isBot });
      }
    }
    // Four files (a photo and documents of 40-120 KiB) uploaded once, used by many messages; a quarter by URL.
    const blobs = [randomBytes(40 * 1024), randomBytes(120 * 1024 + 7), randomBytes(64 * 1024), randomBytes(90 * 1024 + 1)];
    const uploads: { id: string }[] = [];
    for (const [i, b] of blobs.entries()) {
      served.set(`/f${i}.bin`, b);
      uploads.push(await call('POST', `/v1/uploads?filename=f${i}.bin`, undefined, { data: b, type: i === 0 ? 'image/jpeg' : 'application/octet-stream' }));
    }
    debug(`setup done: ${chats.length} chats`);

    // ---- phase 1: media sends ----
    const prefix = `${stamp}:`;
    const items = Array.from({ length: sends }, (_, i) => {
      const f = i % blobs.length;
      const media = { type: f === 0 ? 'photo' : 'document', ...(i % 4 === 3 ? { url: `${filesBase}/f${f}.bin` } : { uploadId: uploads[f].id }) };
      return { ...chats[i % chats.length]!, text: `${prefix}${i}`, media, file: blobs[f]!, isBot: chats[i % chats.length]!.bot };
    });
    const accepted = await call('POST', '/v1/messages/batch', { messages: items.map(({ connectionId, chat, text, media }) => ({ connectionId, chat, text, media })) });
    const ids = (accepted.items as { id: string }[]).map((m) => m.id);
    const delivered = () => emu.delivered().filter((m) => m.text.startsWith(prefix));
    await waitFor(() => delivered().length >= sends / 4, 'a quarter delivered', 60_000);
    debug(`kill at ${delivered().length} delivered`);
    await stop(daemon, 'SIGKILL');
    daemon = await respawn();
    await waitFor(async () => {
      const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
      return n === 0;
    }, 'every send final', 120_000);
    const rows = await db.sql<{ id: string; text: string; status: string; error: { code: string } | null }[]>`
      select id, text, status, error from messages where owner = ${owner} and op is null`;
    const seen = new Map<string, typeof delivered extends () => (infer T)[] ? T[] : never>();
    for (const d of delivered()) seen.set(d.text, [...(seen.get(d.text) ?? []), d]);
    const byText = new Map(items.map((it) => [it.text, it]));
    const lost = rows.filter((r) => r.status === 'sent' && !seen.has(r.text));
    const duplicated = [...seen].filter(([, ds]) => ds.length > 1).map(([t]) => t);
    const wrongFile = [...seen].filter(([t, ds]) => ds[0]!.media?.sha256 !== sha(byText.get(t)!.file)).map(([t]) => t);
    const inDoubt = rows.filter((r) => r.status === 'failed');
    console.log(`  sends: ${rows.length} accepted, ${seen.size} reached the chat, lost ${lost.length}, duplicated ${duplicated.length}, bot in doubt (failed) ${inDoubt.length}`);
    assert.is(rows.length, sends);
    assert.equal(lost.map((r) => r.text), [], 'lost');
    assert.equal(duplicated, [], 'duplicated');
    assert.equal(wrongFile, [], 'a file that is not the one sent');
    assert.ok(inDoubt.every((r) => byText.get(r.text)!.isBot && r.error?.code === 'OUTCOME_UNKNOWN'), `only bot messages in doubt: ${JSON.stringify(inDoubt.slice(0, 3))}`);
    assert.ok(inDoubt.length <= sends / 10, `few in doubt (${inDoubt.length})`);

    // ---- phase 2: edits of every sent message, deletes of a quarter of them ----
    const sentRows = rows.filter((r) => r.status === 'sent');
    const byId = new Map(sentRows.map((r) => [r.id, r]));
    const edited = ids.filter((id) => byId.has(id));
    const deleted = edited.filter((_, i) => i % 4 === 0).slice(0, deletes);
    // Many requests at once, the edits before the deletes (a message's operations apply in the order requested).
    const inParallel = async (list: string[], fn: (id: string) => Promise<unknown>) => {
      const queue = [...list];
      await Promise.all(Array.from({ length: 32 }, async () => { for (let id = queue.shift(); id; id = queue.shift()) await fn(id); }));
    };
    await inParallel(edited, (id) => call('PATCH', `/v1/messages/${id}`, { text: `${byId.get(id)!.text}:e` }));
    await inParallel(deleted, (id) => call('DELETE', `/v1/messages/${id}`));
    const editsApplied = () => emu.delivered().filter((m) => m.text.startsWith(prefix) && m.text.endsWith(':e')).length;
    await waitFor(() => editsApplied() >= edited.length / 4, 'a quarter of the edits applied', 60_000);
    const atKill = editsApplied();
    debug(`kill at ${atKill} edits applied`);
    await stop(daemon, 'SIGKILL');
    daemon = await respawn();
    await waitFor(async () => {
      const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
      return n === 0;
    }, 'every edit and delete final', 120_000);
    const ops = await db.sql<{ op: string; status: string; error: unknown }[]>`select op, status, error from messages where owner = ${owner} and op is not null`;
    // The messages the service holds as sent (a bot message failed in doubt may be in the chat, unedited).
    const sentTexts = new Set(sentRows.map((r) => r.text));
    const after = delivered().filter((m) => sentTexts.has(m.text.replace(/:e$/, '')));
    const deletedSet = new Set(deleted.map((id) => byId.get(id)!.text));
    const notOnce = after.filter((m) => m.edits !== 1).map((m) => `${m.text} (${m.edits ?? 0} edits)`);
    const wrongText = after.filter((m) => !m.text.endsWith(':e'));
    const notDeleted = after.filter((m) => deletedSet.has(m.text.slice(0, -2)) !== (m.deleted === true));
    const api = await db.sql<{ n: number; e: number; d: number }[]>`
      select count(*)::int as n, count(edited_at)::int as e, count(deleted_at)::int as d from messages where owner = ${owner} and op is null and status = 'sent'`;
    console.log(`  edits and deletes: ${ops.length} operations (${ops.filter((o) => o.status === 'sent').length} done), ${atKill} edits applied at the kill, `
      + `edited once ${after.length - notOnce.length}/${after.length}, deleted ${after.filter((m) => m.deleted).length}/${deleted.length}; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.is(after.length, sentRows.length);
    assert.is(ops.length, edited.length + deleted.length);
    assert.equal(ops.filter((o) => o.status !== 'sent'), [], 'every operation done');
    assert.equal(notOnce, [], 'each edit applied once');
    assert.equal(wrongText.map((m) => m.text), []);
    assert.equal(notDeleted.map((m) => m.text), [], 'exactly the deleted ones deleted');
    assert.equal(api[0], { n: sentRows.length, e: sentRows.length, d: deleted.length }, 'the rows say the same');
    await stop(daemon, 'SIGTERM');
    assert.is(daemon.child.exitCode, 0, `graceful stop: ${daemon.stderr.join('').slice(-500)}`);
  } finally {
    for (const d of daemons) await stop(d, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
