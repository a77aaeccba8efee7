// Embedded mode end to end: PGlite 0.5.14 behind pglite-socket, reached through `postgres` with max 1.
// A fresh data dir costs ~6 s (initdb in WASM) and a reopen ~0.3 s, so the suites share one dir.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { openDatabase, type Database } from '../../src/store/db.ts';
import { EmbeddedDatabaseError } from '../../src/store/embedded.ts';

const log = winston.createLogger({ silent: true });
const dataDir = mkdtempSync(join(tmpdir(), 'embedded-'));
const owner = `owner-${randomUUID()}`;
const connectionId = randomUUID();
let db: Database | undefined;

const open = () => openDatabase({ dataDir }, log);

test('opens, migrates, writes and reads', async () => {
  db = await open();
  assert.is(db.embedded, true);
  assert.ok(existsSync(join(dataDir, 'pglite')));
  assert.type(await db.ping(), 'number');
  const versions = await db.sql<{ version: number }[]>`select version from schema_migrations order by version`;
  assert.is(versions[0]?.version, 1);
  await db.sql.begin(async (tx) => {
    await tx`insert into connections (id, owner, kind, shard, login) values (${connectionId}, ${owner}, 'user', 3, ${tx.json({ method: 'qr' })})`;
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
  const bot = (kind: string) => sql`insert into connections (id, owner, kind, shard, platform_user_id) values (${randomUUID()}, ${owner}, ${kind}, 1, '777')`;
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
  // A lock left by a process that died (pid far above pid_max) must not block the next start.
  writeFileSync(join(dataDir, 'pglite.lock'), '99999999');
  db = await open();
  assert.is(readFileSync(join(dataDir, 'pglite.lock'), 'utf8'), String(process.pid));
  const [c] = await db.sql<{ owner: string }[]>`select owner from connections where id = ${connectionId}`;
  assert.is(c?.owner, owner);
  const migrations = await db.sql<{ n: number }[]>`select count(*)::int as n from schema_migrations where version = 1`;
  assert.is(migrations[0]!.n, 1);
  const audit = await db.sql`select 1 from audit where owner = ${owner} and action = 'connection.create'`;
  assert.is(audit.length, 1);
});

test.after(async () => {
  await db?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test.run();
