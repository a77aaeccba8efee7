import postgres from 'postgres';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { transaction, transactionEndingWith } from '../../src/store/transaction.ts';
import { countWire, wireDelta } from '../bench/wire-counts.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

// postgres.js dispatches queries to connections in a fixed order, so "k plain queries, then a
// transaction" puts BEGIN at a connection's 100-query pipeline boundary for some k. With two
// connections (max 1 disables the check) that is k = 200, 201, 302, 403 on 3.4.9.
const pipelineLoad = async (sql: postgres.Sql, k: number, run: () => Promise<unknown>): Promise<string | undefined> => {
  await Promise.all([sql`select 1`, sql`select 1`]); // both connections open and idle
  let error: string | undefined;
  const ps: Promise<unknown>[] = [];
  for (let i = 0; i < k; i++) ps.push(sql`select ${i}::int`.catch((e: { code?: string }) => { error ??= `select: ${e.code}`; }));
  ps.push(run().catch((e: { code?: string; message?: string }) => { error ??= e.code ?? e.message; }));
  await Promise.all(ps);
  return error;
};

const idleInTransaction = async (sql: postgres.Sql) => {
  const [r] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and state like 'idle in transaction%'`;
  return r!.n;
};

let db: TestDatabase;
let sql: postgres.Sql;

test.before(async () => {
  db = await createTestDatabase({ migrate: false, max: 2 });
  sql = db.sql;
  await sql`create table t (k int not null, part int not null)`;
});
test.after(async () => {
  await db.drop();
});

test('control: sql.begin at the pipeline boundary fails with UNSAFE_TRANSACTION (postgres.js 3.4.9, porsager/postgres#1189)', async () => {
  // If this starts failing after a postgres.js upgrade, the driver is fixed; the helper stays correct.
  // A fresh pool for every k: the dispatch order depends on the pool's state (open, busy, closed).
  const failures: string[] = [];
  const ks = [195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 304, 401, 402, 403, 404, 405];
  for (const k of ks) {
    const pool = postgres(db.url, { max: 2, onnotice: () => undefined });
    try {
      const err = await pipelineLoad(pool, k, () => pool.begin((tx) => tx`insert into t values (${-k}, 1)`));
      if (err) failures.push(`${k}: ${err}`);
    } finally {
      // A BEGIN that skipped the reservation may have left its connection inside the transaction.
      await pool.end({ timeout: 1 });
    }
  }
  assert.ok(failures.some((f) => f.includes('UNSAFE_TRANSACTION')), `no UNSAFE_TRANSACTION: ${failures.join(', ')}`);
});

test('transaction() under the same pipeline pressure: every transaction commits, none leaks into the pool', async () => {
  await sql`truncate t`;
  const errors: string[] = [];
  for (let k = 190; k <= 410; k++) {
    const err = await pipelineLoad(sql, k, () => transaction(sql, async (tx) => {
      await tx`insert into t values (${k}, 1)`;
      await tx`insert into t values (${k}, 2)`;
    }));
    if (err) errors.push(`${k}: ${err}`);
    assert.is(await idleInTransaction(sql), 0, `connection left idle in a transaction at k=${k}`);
  }
  assert.equal(errors, []);
  const [r] = await sql<{ n: number; pairs: number }[]>`
    select count(*)::int as n, count(distinct k)::int as pairs from t`;
  assert.equal(r, { n: 2 * 221, pairs: 221 });
});

test('transaction() with socket backpressure: 40 concurrent transactions with 64 KiB parameters among big queries', async () => {
  await sql`truncate t`;
  const big = 'x'.repeat(64 * 1024);
  const ps: Promise<unknown>[] = [];
  for (let i = 0; i < 400; i++) {
    if (i % 10 === 0) {
      ps.push(transaction(sql, async (tx) => {
        await tx`insert into t select ${i}, length(${big})`;
        await tx`insert into t values (${i}, 2)`;
      }));
    } else ps.push(sql`select length(${big}) as n`);
  }
  await Promise.all(ps);
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from t`;
  assert.is(r!.n, 80);
  assert.is(await idleInTransaction(sql), 0);
});

test('rollback: the body\'s error is rethrown as is, nothing is written, the connection goes back', async () => {
  await sql`truncate t`;
  const boom = new Error('boom');
  for (let i = 0; i < 5; i++) { // more times than the pool has connections: each one was released
    const err = await transaction(sql, async (tx) => {
      await tx`insert into t values (1, 1)`;
      throw boom;
    }).catch((e: unknown) => e);
    assert.is(err, boom);
  }
  const pgErr = await transaction(sql, async (tx) => {
    await tx`insert into t values (2, 1)`;
    await tx`insert into t values (null, 1)`;
  }).catch((e: { code?: string }) => e);
  assert.is((pgErr as { code?: string }).code, '23502'); // not_null_violation
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from t`;
  assert.is(r!.n, 0);
  assert.is(await transaction(sql, async (tx) => (await tx<{ x: number }[]>`select 7 as x`)[0]!.x), 7);
  assert.is(await idleInTransaction(sql), 0);
});

test('transactionEndingWith: the last statement goes with COMMIT; when it fails, everything rolls back and its error is thrown', async () => {
  await sql`truncate t`;
  for (let i = 0; i < 3; i++) { // more times than the pool has connections: each one went back clean
    const err = await transactionEndingWith(sql, async (tx) => {
      await tx`insert into t values (1, 1)`;
      return { result: 'x', last: tx`insert into t values (null, 1)` };
    }).catch((e: { code?: string }) => e);
    assert.is((err as { code?: string }).code, '23502', 'the last statement\'s error');
  }
  assert.is((await sql<{ n: number }[]>`select count(*)::int as n from t`)[0]!.n, 0, 'the COMMIT rolled back');
  assert.is(await idleInTransaction(sql), 0);
  const ok = await transactionEndingWith(sql, async (tx) => {
    await tx`insert into t values (1, 1)`;
    return { result: 7, last: tx`insert into t values (2, 1)` };
  });
  assert.is(ok, 7);
  assert.is((await sql<{ n: number }[]>`select count(*)::int as n from t`)[0]!.n, 2);
  assert.is(await idleInTransaction(sql), 0);
});

test('BEGIN goes out with the first statement: a one-statement transaction is two socket writes, not three', async () => {
  // Counted on a client opened after counting starts (the counter sets older connections aside).
  const wire = countWire({ pgPort: Number(new URL(db.url).port || 5432), amqpPort: -1, apiPort: () => undefined });
  const own = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    await own`select 1`; // the handshake, not counted below
    const before = wire.snapshot();
    await transaction(own, async (tx) => { await tx`insert into t values (9, 9)`; });
    await transaction(own, async (tx) => { await tx`insert into t values (9, 9)`; }, 'repeatable read');
    const c = wireDelta(before, wire.snapshot());
    assert.is(c.pgStatements, 6, 'statements: BEGIN, insert, COMMIT, twice');
    assert.is(c.writes.postgres, 4, 'socket writes: BEGIN with the insert, then COMMIT, twice');
  } finally {
    wire.stop();
    await own.end();
  }
  assert.is((await sql<{ n: number }[]>`select count(*)::int as n from t where k = 9`)[0]!.n, 2);
  assert.is(await idleInTransaction(sql), 0);
});

test('modes: repeatable read sees one snapshot; read only refuses writes', async () => {
  await sql`truncate t`;
  const seen = await transaction(sql, async (tx) => {
    const [a] = await tx<{ n: number }[]>`select count(*)::int as n from t`;
    await sql`insert into t values (1, 1)`; // another connection, committed at once
    const [b] = await tx<{ n: number }[]>`select count(*)::int as n from t`;
    const [iso] = await tx<{ i: string }[]>`select current_setting('transaction_isolation') as i`;
    return [a!.n, b!.n, iso!.i];
  }, 'repeatable read');
  assert.equal(seen, [0, 0, 'repeatable read']);
  const err = await transaction(sql, (tx) => tx`insert into t values (2, 1)`, 'repeatable read read only').catch((e: { code?: string }) => e);
  assert.is((err as { code?: string }).code, '25006'); // read_only_sql_transaction
});

test('the connection dies inside the transaction: rejects with the server\'s error, nothing commits, the pool carries on', async () => {
  const err = await transaction(sql, async (tx) => {
    await tx`insert into t values (99, 1)`;
    await tx`select pg_terminate_backend(pg_backend_pid())`; // FATAL 57P01, then the server closes
  }).catch((e: { code?: string }) => e);
  // 57P01 admin_shutdown, or the close that follows it, depending on which the driver sees first.
  assert.ok(['57P01', 'CONNECTION_CLOSED'].includes((err as { code?: string }).code ?? ''), String((err as { code?: string }).code));
  for (let i = 0; i < 4; i++) assert.is((await sql<{ x: number }[]>`select 1 as x`)[0]!.x, 1);
  const [r] = await sql<{ n: number }[]>`select count(*)::int as n from t where k = 99`;
  assert.is(r!.n, 0);
  assert.is(await transaction(sql, async (tx) => (await tx<{ x: number }[]>`select 2 as x`)[0]!.x), 2);
});

test.run();
