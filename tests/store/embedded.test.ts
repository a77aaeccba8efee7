// Embedded mode end to end: PGlite 0.5.14 behind pglite-socket on a unix socket in DATA_DIR, reached
// through `postgres` with max 1. A fresh data dir costs ~6 s (initdb in WASM) and a reopen ~0.3 s, so the
// suites share one dir.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { openDatabase, type Database } from '../../src/store/db.ts';
import { EmbeddedDatabaseError } from '../../src/store/embedded.ts';
import { listeningTcpPorts } from '../helpers/proc.ts';

const log = winston.createLogger({ silent: true });
const root = mkdtempSync(join(tmpdir(), 'embedded-'));
const dataDir = join(root, 'nested', 'data'); // created by the first open
const socket = join(dataDir, 'pglite.sock');
const owner = `owner-${randomUUID()}`;
const connectionId = randomUUID();
let db: Database | undefined;

const open = () => openDatabase({ dataDir }, log);
const modeOf = (path: string) => lstatSync(path).mode & 0o777;
// Every path under dir whose mode is not owner-only (files 0600, directories 0700), as "mode path".
const notPrivate = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
  const path = join(dir, e.name);
  const want = e.isDirectory() ? 0o700 : 0o600;
  const own = modeOf(path) === want ? [] : [`${modeOf(path).toString(8)} ${path}`];
  return e.isDirectory() ? [...own, ...notPrivate(path)] : own;
});

test('opens, migrates, writes and reads', async () => {
  db = await open();
  assert.is(db.embedded, true);
  assert.ok(existsSync(join(dataDir, 'pglite')));
  assert.type(await db.ping(), 'number');
  const versions = await db.sql<{ version: number }[]>`select version from schema_migrations order by version`;
  assert.is(versions[0]?.version, 1);
  await db.sql.begin(async (tx) => {
    await tx`insert into connections (id, owner, platform, kind, shard, login) values (${connectionId}, ${owner}, 'telegram', 'user', 3, ${tx.json({ method: 'qr' })})`;
    await tx`insert into audit (owner, actor, action, target) values (${owner}, 'test', 'connection.create', ${connectionId})`;
  });
  const [row] = await db.sql<{ status: string; login: { method: string } }[]>`select status, login from connections where id = ${connectionId}`;
  assert.equal({ ...row }, { status: 'connecting', login: { method: 'qr' } });
});

test('the whole schema works on PGlite: generated tsvector + gin, partial indexes, bigserial, jsonb', async () => {
  const sql = db!.sql;
  for (const text of ['hello brave world', 'nothing here']) {
    await sql`insert into messages (id, owner, connection_id, chat, text, shard) values (${randomUUID()}, ${owner}, ${connectionId}, '@chan', ${text}, 3)`;
  }
  const found = await sql<{ text: string }[]>`select text from messages where owner = ${owner} and search @@ to_tsquery('simple', 'brave')`;
  assert.equal(found.map((r) => r.text), ['hello brave world']);
  // The planner must be able to use the gin and partial indexes (seq scans forbidden for the check).
  const plan = await sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    const gin = await tx<{ 'QUERY PLAN': string }[]>`explain select id from messages where search @@ to_tsquery('simple', 'brave')`;
    const pending = await tx<{ 'QUERY PLAN': string }[]>`explain select id from messages where status in ('queued', 'sending') and available_at < now()`;
    return [gin, pending].map((rows) => rows.map((r) => r['QUERY PLAN']).join('\n'));
  });
  assert.match(plan[0]!, /messages_search/);
  assert.match(plan[1]!, /messages_pending/);

  // Partial unique index: a bot token once per owner, users unconstrained.
  const bot = (kind: string) => sql`insert into connections (id, owner, platform, kind, shard, platform_user_id) values (${randomUUID()}, ${owner}, 'telegram', ${kind}, 1, '777')`;
  await bot('user');
  await bot('user');
  await bot('bot');
  try {
    await bot('bot');
    assert.unreachable('second bot with the same platform_user_id was accepted');
  } catch (err) {
    assert.is((err as { code?: string }).code, '23505');
  }

  const ids = await sql<{ id: string }[]>`select id from audit where owner = ${owner} order by id`;
  const next = await sql<{ id: string }[]>`insert into audit (owner, actor, action) values (${owner}, 'test', 'x') returning id`;
  assert.ok(BigInt(next[0]!.id) > BigInt(ids.at(-1)!.id), 'bigserial keeps counting');
  const qr = await sql<{ n: number }[]>`select count(*)::int as n from connections where owner = ${owner} and login ->> 'method' = 'qr'`;
  assert.is(qr[0]!.n, 1);

  // The plpgsql trigger of a withdrawn message-retention consent: the text goes when the message is sent.
  await sql`insert into consents (owner, purpose, version, granted) values (${owner}, 'message-retention', 'v1', false)`;
  const [m] = await sql<{ id: string }[]>`insert into messages (id, owner, connection_id, chat, text, shard)
    values (${randomUUID()}, ${owner}, ${connectionId}, '@chan', 'kept until sent', 3) returning id`;
  const [sent] = await sql<{ text: string }[]>`update messages set status = 'sent' where id = ${m!.id} returning text`;
  assert.is(sent!.text, '');
});

test('a failed transaction rolls back on the single session', async () => {
  const sql = db!.sql;
  try {
    await sql.begin(async (tx) => {
      await tx`insert into audit (owner, actor, action) values (${owner}, 'test', 'rolled-back')`;
      await tx`select no_such_column from audit`;
    });
    assert.unreachable('the transaction should have failed');
  } catch (err) {
    assert.is((err as { code?: string }).code, '42703');
  }
  const rows = await sql`select 1 from audit where action = 'rolled-back'`;
  assert.is(rows.length, 0);
  assert.type(await db!.ping(), 'number', 'the session is usable after the rollback');
});

test('served on a unix socket inside DATA_DIR, no TCP port listening (any local user could connect to one)', () => {
  assert.ok(lstatSync(socket).isSocket(), `${socket} is a unix socket`);
  assert.is(modeOf(socket), 0o600);
  // Before: pglite-socket listened on 127.0.0.1:<port> without a password.
  assert.equal(listeningTcpPorts(), [], 'this process listens on no TCP port');
  if (process.getuid?.() === 0) {
    // Another local user (nobody), with the directories above DATA_DIR open to it, is stopped by
    // DATA_DIR's 0700: connect() fails with EACCES.
    const script = `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
    const asNobody = () => execFileSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8' }).trim();
    chmodSync(root, 0o711);
    chmodSync(join(root, 'nested'), 0o711);
    try {
      assert.is(asNobody(), 'EACCES');
    } finally {
      chmodSync(root, 0o700);
      chmodSync(join(root, 'nested'), 0o700);
    }
  }
});

test('DATA_DIR is created 0700; every file in it is 0600 and every directory 0700 (PGlite writes 0666 files)', () => {
  assert.is(modeOf(join(root, 'nested')), 0o700);
  assert.is(modeOf(dataDir), 0o700);
  assert.ok(readdirSync(join(dataDir, 'pglite')).length > 10, 'PGlite wrote its files there');
  assert.equal(notPrivate(dataDir), []);
});

test('a DATA_DIR open to group/others is refused with the chmod that fixes it, before anything is written', async () => {
  const wide = mkdtempSync(join(tmpdir(), 'embedded-wide-'));
  chmodSync(wide, 0o755);
  try {
    await openDatabase({ dataDir: wide }, log);
    assert.unreachable('a 0755 DATA_DIR was accepted');
  } catch (err) {
    assert.instance(err, EmbeddedDatabaseError);
    assert.is((err as Error).message, `DATA_DIR ${wide} has mode 0755: it is readable by group/others, refusing to use it; run chmod -R go-rwx ${wide}`);
  } finally {
    assert.equal(readdirSync(wide), [], 'nothing written');
    rmSync(wide, { recursive: true, force: true });
  }
});

test('a second open of the same data dir is refused while the first is open', async () => {
  try {
    await open();
    assert.unreachable('second open succeeded');
  } catch (err) {
    assert.instance(err, EmbeddedDatabaseError);
    assert.is((err as Error).message, `embedded database ${join(dataDir, 'pglite')} is already open in process ${process.pid}`);
  }
  assert.type(await db!.ping(), 'number', 'the refused open did not disturb the open one');
});

test('close, reopen: the data persists and no migration runs twice', async () => {
  await db!.close();
  await db!.close();
  assert.not.ok(existsSync(join(dataDir, 'pglite.lock')));
  assert.not.ok(existsSync(socket), 'the socket is removed on close');
  // A lock and a socket left by a process that died (pid far above pid_max) must not block the next start.
  writeFileSync(join(dataDir, 'pglite.lock'), '99999999');
  writeFileSync(socket, '');
  // Files an older version left open to others (DATA_DIR itself was fixed with chmod 700) are narrowed.
  chmodSync(join(dataDir, 'pglite', 'PG_VERSION'), 0o666);
  chmodSync(join(dataDir, 'pglite', 'base'), 0o755);
  db = await open();
  assert.is(readFileSync(join(dataDir, 'pglite.lock'), 'utf8'), String(process.pid));
  assert.ok(lstatSync(socket).isSocket());
  assert.equal(notPrivate(dataDir), []);
  const [c] = await db.sql<{ owner: string }[]>`select owner from connections where id = ${connectionId}`;
  assert.is(c?.owner, owner);
  const migrations = await db.sql<{ n: number }[]>`select count(*)::int as n from schema_migrations where version = 1`;
  assert.is(migrations[0]!.n, 1);
  const audit = await db.sql`select 1 from audit where owner = ${owner} and action = 'connection.create'`;
  assert.is(audit.length, 1);
});

test.after(async () => {
  await db?.close();
  rmSync(root, { recursive: true, force: true });
});

test.run();
