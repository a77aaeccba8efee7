import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LogSubjects, memorySubjects, subjectHash } from '../../src/observability/subjects.ts';
import { deleteSalt, saltOf } from '../../src/store/log-salts.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const key = randomBytes(32);
const node = (now: () => number = Date.now) => new LogSubjects(key, {
  saltOf: (sub) => saltOf(db.sql, sub),
  deleteSalt: (sub) => deleteSalt(db.sql, sub),
}, { now, cacheMs: 60_000 });
const storedSalt = async (sub: string) => (await db.sql<{ salt: Buffer }[]>`select salt from log_salts where sub = ${sub}`)[0]?.salt;

test('the hash is HMAC(key, salt ‖ sub) with a salt stored on first use; nodes sharing the key and the table agree', async () => {
  const sub = `s-${randomBytes(4).toString('hex')}`;
  const [a, b] = [node(), node()];
  const hashes = await Promise.all([a.hashOf(sub), b.hashOf(sub), a.hashOf(sub)]);
  const salt = (await storedSalt(sub))!;
  assert.is(salt.length, 16);
  assert.equal(hashes, Array(3).fill(subjectHash(key, salt, sub)));
  assert.match(hashes[0]!, /^[0-9a-f]{32}$/);
  // Neither the sub nor its unsalted HMAC: a guessed sub cannot be checked without the salt.
  assert.is.not(hashes[0], createHmac('sha256', key).update(sub).digest('hex').slice(0, 32));
  assert.is.not(await a.hashOf(`${sub}x`), hashes[0]);
});

test('erasure deletes the salt: the old hash cannot be made again; the caller gets a new, unrelated one', async () => {
  const sub = `s-${randomBytes(4).toString('hex')}`;
  let now = 1_000_000;
  const [a, b] = [node(() => now), node(() => now)];
  const before = await a.hashOf(sub);
  await b.hashOf(sub);
  await a.erase(sub);
  assert.is(await storedSalt(sub), undefined);
  const after = await a.hashOf(sub);
  assert.is.not(after, before);
  assert.is(after, subjectHash(key, (await storedSalt(sub))!, sub));
  // Another node keeps its cached hash at most cacheMs (60 s), then reads the new salt.
  assert.is(await b.hashOf(sub), before);
  now += 60_000;
  assert.is(await b.hashOf(sub), after);
});

test('the cache is bounded: the entry made longest ago goes first', async () => {
  let reads = 0;
  const s = new LogSubjects(key, { saltOf: async () => { reads += 1; return Buffer.alloc(16); }, deleteSalt: async () => undefined }, { cacheMax: 2 });
  await s.hashOf('a');
  await s.hashOf('b');
  await s.hashOf('a');
  assert.is(reads, 2, 'a hit');
  await s.hashOf('c'); // evicts a
  await s.hashOf('b');
  assert.is(reads, 3, 'b still cached');
  await s.hashOf('a');
  assert.is(reads, 4, 'a was evicted');
});

test('in-memory subjects (servers without a database) never give the sub and forget on erasure', async () => {
  const s = memorySubjects();
  const h = await s.hashOf('alice');
  assert.is(await s.hashOf('alice'), h);
  await s.erase('alice');
  assert.is.not(await s.hashOf('alice'), h);
});

test.run();
