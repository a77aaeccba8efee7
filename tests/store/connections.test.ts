import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runnablePages } from '../../src/store/connections.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const insert = async (shard: number, status: string) => {
  const id = randomUUID();
  await db.sql`insert into connections (id, owner, platform, kind, status, shard) values (${id}, 'o', 'telegram', 'user', ${status}, ${shard})`;
  return id;
};

test('runnablePages: every runnable row of the owned shards exactly once, a page at a time', async () => {
  const wanted: string[] = [];
  for (let i = 0; i < 7; i++) wanted.push(await insert(i % 2, i === 3 ? 'error' : 'active')); // error is still run (breakers, half-open)
  await insert(0, 'stopped');
  await insert(5, 'active'); // another process's shard
  const pages: string[][] = [];
  for await (const rows of runnablePages(db.sql, [0, 1], 3)) pages.push(rows.map((r) => r.id));
  assert.equal(pages.map((p) => p.length), [3, 3, 1]);
  const seen = pages.flat();
  assert.equal([...seen].sort(), [...wanted].sort());
  assert.equal(seen, [...seen].sort(), 'keyset order: ascending id');
});

test('runnablePages: an exact multiple of the page size ends without an empty page; none at all yields nothing', async () => {
  const fresh = await createTestDatabase();
  try {
    for (let i = 0; i < 4; i++) await fresh.sql`insert into connections (id, owner, platform, kind, status, shard) values (${randomUUID()}, 'o', 'telegram', 'bot', 'active', 0)`;
    const sizes: number[] = [];
    for await (const rows of runnablePages(fresh.sql, [0], 2)) sizes.push(rows.length);
    assert.equal(sizes, [2, 2]);
    let any = false;
    for await (const _ of runnablePages(fresh.sql, [9], 2)) any = true;
    assert.is(any, false);
  } finally {
    await fresh.drop();
  }
});

test.run();
