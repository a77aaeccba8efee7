import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { purgeExpired, startRetention } from '../../src/jobs/retention.ts';
import { makeConnection } from '../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const day = 86_400_000;
const now = new Date('2026-06-30T12:00:00Z');
const ago = (days: number) => new Date(now.getTime() - days * day);
const silent = winston.createLogger({ silent: true });

async function message(owner: string, conn: string, status: string, at: Date, sentAt: Date | null = null) {
  const id = randomUUID();
  await db.sql`insert into messages (id, owner, connection_id, chat, text, status, shard, created_at, updated_at, sent_at)
               values (${id}, ${owner}, ${conn}, '@c', 'secret text', ${status}, 0, ${at}, ${at}, ${sentAt})`;
  return id;
}

async function audit(owner: string, at: Date) {
  const [r] = await db.sql<{ id: string }[]>`insert into audit (owner, actor, action, at) values (${owner}, ${owner}, 'x', ${at}) returning id::text`;
  return r!.id;
}

test('deletes audit entries and ended messages older than the window; keeps recent ones and anything still owed', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const oldAudit = await audit(owner, ago(31));
  const newAudit = await audit(owner, ago(29));
  const oldSent = await message(owner, conn, 'sent', ago(40), ago(31));
  const sentLate = await message(owner, conn, 'sent', ago(40), ago(29)); // created long ago, sent recently
  const oldFailed = await message(owner, conn, 'failed', ago(31));
  const oldQueued = await message(owner, conn, 'queued', ago(90));
  const oldSending = await message(owner, conn, 'sending', ago(90));
  const result = await purgeExpired(db.sql, { days: 30, now });
  assert.equal(result, { audit: 1, messages: 2 });
  const audits = (await db.sql<{ id: string }[]>`select id::text from audit where owner = ${owner}`).map((r) => r.id);
  assert.equal(audits, [newAudit]);
  assert.not.ok(audits.includes(oldAudit));
  const left = (await db.sql<{ id: string }[]>`select id from messages where owner = ${owner} order by id`).map((r) => r.id).sort();
  assert.equal(left, [sentLate, oldQueued, oldSending].sort());
  assert.not.ok(left.includes(oldSent) || left.includes(oldFailed));
  assert.equal(await purgeExpired(db.sql, { days: 30, now }), { audit: 0, messages: 0 }, 'idempotent');
});

test('works through more rows than one batch', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await db.sql`insert into audit (owner, actor, action, at) select ${owner}, ${owner}, 'bulk', ${ago(100)}::timestamptz from generate_series(1, 25)`;
  await db.sql`insert into messages (id, owner, connection_id, chat, text, status, shard, created_at, updated_at)
               select gen_random_uuid(), ${owner}, ${conn}, '@c', 't', 'failed', 0, ${ago(100)}::timestamptz, ${ago(100)}::timestamptz from generate_series(1, 12)`;
  const result = await purgeExpired(db.sql, { days: 30, now, batch: 5 });
  assert.equal(result, { audit: 25, messages: 12 });
});

test('runner: purges at start and on every tick of the injected timer; stop cancels it', async () => {
  const owner = `o-${randomUUID()}`;
  const ticks: { run: () => void; ms: number; cancelled: boolean }[] = [];
  const schedule = (run: () => void, ms: number) => {
    const tick = { run, ms, cancelled: false };
    ticks.push(tick);
    return () => { tick.cancelled = true; };
  };
  await audit(owner, ago(31));
  const runner = startRetention({ sql: db.sql, days: 30, intervalMs: 60_000, schedule, now: () => now, logger: silent });
  // The first purge runs at once; the next tick is scheduled when it ends.
  while (ticks.length === 0) await new Promise((r) => setImmediate(r));
  assert.is(ticks[0]!.ms, 60_000);
  assert.is((await db.sql`select 1 from audit where owner = ${owner}`).length, 0);
  await audit(owner, ago(31));
  ticks[0]!.run();
  while (ticks.length === 1) await new Promise((r) => setImmediate(r));
  assert.is((await db.sql`select 1 from audit where owner = ${owner}`).length, 0);
  assert.equal(await runner.runNow(), { audit: 0, messages: 0 });
  await runner.stop();
  assert.ok(ticks.at(-1)!.cancelled);
});

test('runner: a failed run is logged and the next tick still comes', async () => {
  const lines: string[] = [];
  const logger = winston.createLogger({ transports: [new winston.transports.Stream({ stream: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) })] });
  // A real pool aimed at a port nobody listens on: every query fails with ECONNREFUSED.
  const down = postgres('postgres://postgres@127.0.0.1:1/none', { max: 1, connect_timeout: 1 });
  const ticks: (() => void)[] = [];
  const runner = startRetention({ sql: down, days: 30, schedule: (run) => { ticks.push(run); return () => undefined; }, logger });
  while (ticks.length === 0) await new Promise((r) => setImmediate(r));
  assert.ok(lines.some((l) => l.includes('retention purge failed')));
  await runner.stop();
  await down.end();
});

test.run();
