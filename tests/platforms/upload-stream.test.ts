import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../src/errors.ts';
import { ByteReader, FileReadError, putStream } from '../../src/platforms/upload-stream.ts';

// The streaming PUT the YouTube and TikTok drivers use (src/platforms/upload-stream.ts), against a
// plain node:http server: pieces are sliced across chunks without loss, an answer that comes before
// the body was read ends the PUT (no hang), a short file is PLATFORM_REJECTED, a failing source is a
// FileReadError (not a network failure to retry).

const MB = 1024 * 1024;
let server: Server;
let base: string;
let mode: 'count' | 'refuse' = 'count';

test.before(async () => {
  server = createServer((req, res) => {
    if (mode === 'refuse') {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"code":"invalid_file_upload"}}');
      return;
    }
    let n = 0;
    let sum = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
      for (const b of d) sum = (sum + b) % 65521;
    });
    req.on('end', () => res.writeHead(200).end(JSON.stringify({ n, sum, range: req.headers['content-range'] })));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});
test.after(() => { server.closeAllConnections(); server.close(); });

async function* pieces(total: number, step: number, failAt = Infinity): AsyncGenerator<Buffer> {
  for (let pos = 0; pos < total; pos += step) {
    if (pos >= failAt) throw new Error('disk on fire');
    const b = Buffer.alloc(Math.min(step, total - pos));
    for (let i = 0; i < b.length; i++) b[i] = (pos + i) % 251;
    yield b;
  }
}
const checksum = (from: number, to: number) => {
  let sum = 0;
  for (let i = from; i < to; i++) sum = (sum + (i % 251)) % 65521;
  return sum;
};

test('a file cut into chunks that straddle its pieces arrives whole, chunk by chunk', async () => {
  const total = 3 * MB + 12_345;
  const chunk = 1_000_003; // not a multiple of the 64 KiB pieces
  const file = new ByteReader(pieces(total, 64 * 1024));
  await file.passOver(chunk); // the platform already holds the first chunk
  for (let first = chunk; first < total; first += chunk) {
    const n = Math.min(chunk, total - first);
    const res = await putStream(base, { 'content-range': `bytes ${first}-${first + n - 1}/${total}` }, n, file.take(n), 5000);
    const got = JSON.parse(res.body);
    assert.is(got.n, n);
    assert.is(got.sum, checksum(first, first + n), `chunk at ${first}`);
  }
  await file.close();
});

test('an answer before the body was read ends the PUT with that answer', async () => {
  mode = 'refuse';
  try {
    const file = new ByteReader(pieces(64 * MB, MB));
    const res = await putStream(base, {}, 64 * MB, file.take(64 * MB), 5000);
    assert.is(res.status, 400);
    assert.match(res.body, /invalid_file_upload/);
    await file.close();
  } finally {
    mode = 'count';
  }
});

test('a file shorter than declared → PLATFORM_REJECTED; a failing read → FileReadError with its cause', async () => {
  const short = new ByteReader(pieces(MB, 64 * 1024));
  const err = await putStream(base, {}, 2 * MB, short.take(2 * MB), 5000).then(() => undefined, (e: unknown) => e);
  assert.ok(isAppError(err) && err.code === 'PLATFORM_REJECTED', String(err));
  const broken = new ByteReader(pieces(4 * MB, 64 * 1024, MB));
  const e2 = await putStream(base, {}, 4 * MB, broken.take(4 * MB), 5000).then(() => undefined, (e: unknown) => e);
  assert.instance(e2, FileReadError);
  assert.is(((e2 as Error).cause as Error).message, 'disk on fire');
});

test.run();
