import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { readEvents } from '../../src/store/events.ts';
import { purgeExpired, startRetention } from '../../src/jobs/retention.ts';
import { checkQueueRoom } from '../../src/store/quotas.ts';
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
  assert.equal(result, { audit: 1, messages: 2, expired: 0, auditPruned: 0, serviceWindows: 0 });
  const audits = (await db.sql<{ id: string }[]>`select id::text from audit where owner = ${owner}`).map((r) => r.id);
  assert.equal(audits, [newAudit]);
  assert.not.ok(audits.includes(oldAudit));
  const left = (await db.sql<{ id: string }[]>`select id from messages where owner = ${owner} order by id`).map((r) => r.id).sort();
  assert.equal(left, [sentLate, oldQueued, oldSending].sort());
  assert.not.ok(left.includes(oldSent) || left.includes(oldFailed));
  assert.equal(await purgeExpired(db.sql, { days: 30, now }), { audit: 0, messages: 0, expired: 0, auditPruned: 0, serviceWindows: 0 }, 'idempotent');
});

test('works through more rows than one batch', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await db.sql`insert into audit (owner, actor, action, at) select ${owner}, ${owner}, 'bulk', ${ago(100)}::timestamptz from generate_series(1, 25)`;
  await db.sql`insert into messages (id, owner, connection_id, chat, text, status, shard, created_at, updated_at)
               select gen_random_uuid(), ${owner}, ${conn}, '@c', 't', 'failed', 0, ${ago(100)}::timestamptz, ${ago(100)}::timestamptz from generate_series(1, 12)`;
  const result = await purgeExpired(db.sql, { days: 30, now, batch: 5 });
  assert.equal(result, { audit: 25, messages: 12, expired: 0, auditPruned: 0, serviceWindows: 0 });
});

test('service windows: a customer\'s last-message time older than the window is forgotten; a recent one stays', async () => {
  const conn = await makeConnection(db.sql, `o-${randomUUID()}`);
  await db.sql`insert into service_windows (connection_id, peer, last_inbound_at) values
               (${conn}, '+15550000001', ${ago(31)}), (${conn}, '+15550000002', ${ago(29)})`;
  const result = await purgeExpired(db.sql, { days: 30, now });
  assert.is(result.serviceWindows, 1);
  const left = await db.sql<{ peer: string }[]>`select peer from service_windows where connection_id = ${conn}`;
  assert.equal(left.map((r) => r.peer), ['+15550000002']);
});

const hour = 3_600_000;

test('queue expiry: queued past the TTL ends failed MESSAGE_EXPIRED and is announced; younger, sending and ended ones are left', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const at = (hours: number) => new Date(now.getTime() - hours * hour);
  const stale = [await message(owner, conn, 'queued', at(73)), await message(owner, conn, 'queued', at(200))];
  const young = await message(owner, conn, 'queued', at(71));
  const sending = await message(owner, conn, 'sending', at(200));
  const sent = await message(owner, conn, 'sent', at(200), at(199));
  const result = await purgeExpired(db.sql, { days: 30, queueTtlHours: 72, now, batch: 1 }); // batch 1: the loop, too
  assert.ok(result.expired >= 2, 'counted (the database is shared with the other tests: at least these two)');
  // Stored with the change, in the same statement (src/store/messages.ts expireQueued).
  const events = await readEvents(db.sql, owner, { afterPos: 0, limit: 100 });
  const rows = await db.sql<{ id: string; status: string; error: { code: string; message: string } | null }[]>`
    select id, status, error from messages where owner = ${owner}`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const id of stale) {
    assert.is(byId.get(id)!.status, 'failed');
    assert.is(byId.get(id)!.error!.code, 'MESSAGE_EXPIRED');
    assert.match(byId.get(id)!.error!.message, /not sent within 72 h/);
  }
  assert.equal([byId.get(young)!.status, byId.get(sending)!.status, byId.get(sent)!.status], ['queued', 'sending', 'sent']);
  // Announced like any other status change: the API's Message shape, status failed, with the code.
  assert.equal(events.map((e) => [e.type, (e.data as { id: string }).id]).sort(), stale.map((id) => ['message.status', id]).sort());
  for (const e of events) {
    const m = e.data as { status: string; error: { code: string } };
    assert.equal([m.status, m.error.code], ['failed', 'MESSAGE_EXPIRED']);
  }
  assert.is((await purgeExpired(db.sql, { days: 30, queueTtlHours: 72, now })).expired, 0, 'each message expires once');
});

test('queue expiry frees the quota of queued messages', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await message(owner, conn, 'queued', new Date(now.getTime() - 100 * hour));
  await message(owner, conn, 'queued', new Date(now.getTime() - 100 * hour));
  const full = await db.sql.begin((tx) => checkQueueRoom(tx, owner, 2, 1)).catch((e: unknown) => e);
  assert.is((full as { code?: string }).code, 'QUOTA_EXCEEDED');
  await purgeExpired(db.sql, { days: 30, queueTtlHours: 72, now });
  await db.sql.begin((tx) => checkQueueRoom(tx, owner, 2, 2)); // resolves: both slots are free again
});

test('audit cap: an owner over the cap keeps the newest rows and an audit.pruned entry, exactly the cap; others are untouched', async () => {
  const big = `o-${randomUUID()}`;
  const small = `o-${randomUUID()}`;
  const recent = new Date(now.getTime() - hour);
  await db.sql`insert into audit (owner, actor, action, at, details)
               select ${big}, ${big}, 'bulk', ${recent}::timestamptz, jsonb_build_object('n', n) from generate_series(1, 23) n`;
  await db.sql`insert into audit (owner, actor, action, at) select ${small}, ${small}, 'bulk', ${recent}::timestamptz from generate_series(1, 10)`;
  const result = await purgeExpired(db.sql, { days: 30, auditMaxRowsPerOwner: 10, now, batch: 4 });
  assert.is(result.auditPruned, 14, '23 rows → the newest 9 kept, plus the pruning entry');
  const rows = await db.sql<{ action: string; actor: string; details: Record<string, unknown> }[]>`
    select action, actor, details from audit where owner = ${big} order by id`;
  assert.is(rows.length, 10);
  assert.equal(rows.slice(0, 9).map((r) => r.details.n), [15, 16, 17, 18, 19, 20, 21, 22, 23], 'the newest are kept');
  const pruned = rows[9]!;
  assert.equal([pruned.action, pruned.actor, pruned.details.removed, pruned.details.cap], ['audit.pruned', 'system', 14, 10]);
  assert.is((await db.sql`select 1 from audit where owner = ${small}`).length, 10, 'at the cap is not over it');
  assert.is((await purgeExpired(db.sql, { days: 30, auditMaxRowsPerOwner: 10, now })).auditPruned, 0, 'the next run finds the owner at the cap');
});

test('audit cap: owners silent for more than a day are not scanned', async () => {
  const quiet = `o-${randomUUID()}`;
  await db.sql`insert into audit (owner, actor, action, at) select ${quiet}, ${quiet}, 'bulk', ${ago(2)}::timestamptz from generate_series(1, 30)`;
  assert.is((await purgeExpired(db.sql, { days: 30, auditMaxRowsPerOwner: 10, now })).auditPruned, 0);
  await audit(quiet, now); // writes again: checked, and pruned
  assert.is((await purgeExpired(db.sql, { days: 30, auditMaxRowsPerOwner: 10, now })).auditPruned, 22);
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
  assert.equal(await runner.runNow(), { audit: 0, messages: 0, expired: 0, auditPruned: 0, serviceWindows: 0 });
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
