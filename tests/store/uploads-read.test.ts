import { createHash, randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkBytes, pieceBytes, readFile, saveFile } from '../../src/media/files.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

// A stored file is read back a piece (one MTProto part, 512 KiB) per statement, pieces never joined
// across chunks, each read only when the previous one was taken: a reader holds one piece, never the file.

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(() => db.drop());

const limits = { maxBytes: 50 * 1024 * 1024, retentionHours: 1, deadlineMs: 60_000 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const size of [1, pieceBytes - 1, pieceBytes, chunkBytes, chunkBytes + 1, 3 * chunkBytes + pieceBytes + 12_345]) {
  test(`a file of ${size} bytes reads back equal, in pieces of at most 512 KiB aligned to parts`, async () => {
    const bytes = randomBytes(size);
    // Written in odd-sized pieces so that chunk boundaries do not follow the writer's.
    const pieces = function* () { for (let at = 0; at < size; at += 300_001) yield bytes.subarray(at, at + 300_001); };
    const file = await saveFile(db.sql, 'reader', pieces(), { contentType: 'application/octet-stream', filename: 'f.bin' }, limits);
    const got: Buffer[] = [];
    for await (const piece of readFile(db.sql, file.id)) got.push(piece);
    assert.is(sha(Buffer.concat(got)), sha(bytes));
    assert.is(file.sha256, sha(bytes));
    // Every piece but the last is a whole part: a sender hands each on as it is, with no joining buffer.
    for (const p of got.slice(0, -1)) assert.is(p.length, pieceBytes);
    assert.ok(got.at(-1)!.length <= pieceBytes && got.at(-1)!.length > 0);
    assert.is(got.length, Math.ceil(size / pieceBytes));
  });
}

test('the reader asks the database for the next piece only when the previous one is taken', async () => {
  const bytes = randomBytes(2 * chunkBytes);
  const file = await saveFile(db.sql, 'reader', [bytes], { contentType: 'application/octet-stream', filename: 'f.bin' }, limits);
  const statements: string[] = [];
  // A Sql stand-in that records each statement's slice (its parameters) and passes it on.
  const spy = new Proxy(db.sql, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (key !== 'unsafe') return value;
      return (text: string, params: unknown[], options: unknown) => {
        statements.push(params.join(','));
        return (value as typeof db.sql.unsafe)(text, params as never, options as never);
      };
    },
  });
  const it = readFile(spy, file.id)[Symbol.asyncIterator]();
  const first = await it.next();
  assert.is(first.value.length, pieceBytes);
  assert.is(statements.length, 1, 'one statement for the first piece, none ahead of it');
  await it.next();
  assert.is(statements.length, 2);
  await it.return(undefined);
  assert.is(statements.length, 2, 'nothing read after the reader stopped');
});

test('an empty or missing file reads as nothing', async () => {
  const got: Buffer[] = [];
  for await (const piece of readFile(db.sql, '00000000-0000-4000-8000-000000000000')) got.push(piece);
  assert.equal(got, []);
});

test('a piece of every byte value reads back as it was stored (binary results, no text decoding)', async () => {
  const bytes = Buffer.alloc(3 * 256 + 7, 0).map((_, i) => i % 256);
  const file = await saveFile(db.sql, 'reader', [bytes], { contentType: 'application/octet-stream', filename: 'f.bin' }, limits);
  const got: Buffer[] = [];
  for await (const piece of readFile(db.sql, file.id, 100)) got.push(piece);
  assert.equal(got.map((p) => p.length), [...Array(7).fill(100), bytes.length - 700]);
  assert.ok(Buffer.concat(got).equals(bytes));
});

test.run();
