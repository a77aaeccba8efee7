// File uploads as API.md describes `POST /v1/uploads` (raw body with Content-Type, `?filename=`,
// 201 `{ id, size, sha256, contentType, filename, expiresAt }`), against a small server that follows
// that contract: the route itself ships with issue 15, and cli.e2e.test.ts runs the CLI's upload
// against the real daemon for what it answers today.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiError, createClient } from '../../../clients/typescript/src/index.ts';

async function uploadsServer() {
  const seen: Array<{ url: string; type: string | undefined; auth: string | undefined; bytes: number }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ url: req.url ?? '', type: req.headers['content-type'], auth: req.headers.authorization, bytes: body.length });
      if (body.length > 256 * 1024) {
        res.writeHead(413, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'over UPLOAD_MAX_MB' } }));
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({
        id: 'up-1', size: body.length, sha256: createHash('sha256').update(body).digest('hex'), contentType: req.headers['content-type'],
        filename: url.searchParams.get('filename'), expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

test('a streamed file reaches the server whole, with its type and name, and progress is reported up to its size', async () => {
  const srv = await uploadsServer();
  try {
    const client = createClient({ baseUrl: srv.url, token: 't0k' });
    const data = Buffer.alloc(200 * 1024, 7);
    const progress: number[] = [];
    const body = Readable.toWeb(Readable.from([data.subarray(0, 65536), data.subarray(65536)])) as ReadableStream<Uint8Array>;
    const up = await client.uploads.create(body, { filename: 'report.pdf', contentType: 'application/pdf', onProgress: (sent) => progress.push(sent) });
    assert.is(up.size, data.length);
    assert.is(up.sha256, createHash('sha256').update(data).digest('hex'));
    assert.is(up.filename, 'report.pdf');
    assert.equal(srv.seen[0]!.type, 'application/pdf');
    assert.is(srv.seen[0]!.auth, 'Bearer t0k');
    assert.is(progress.at(-1), data.length);
    assert.ok(progress.length >= 2 && progress.every((v, i) => i === 0 || v > progress[i - 1]!), 'progress grows');
  } finally {
    await srv.close();
  }
});

test('a file over the limit is refused with the API code', async () => {
  const srv = await uploadsServer();
  try {
    const client = createClient({ baseUrl: srv.url, token: 't' });
    const err = await client.uploads.create(new Uint8Array(300 * 1024), { filename: 'big.bin' }).catch((e: unknown) => e);
    assert.instance(err, ApiError);
    assert.is((err as ApiError).code, 'PAYLOAD_TOO_LARGE');
    assert.is((err as ApiError).status, 413);
  } finally {
    await srv.close();
  }
});

test.run();
