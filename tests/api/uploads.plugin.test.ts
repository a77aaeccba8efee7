// POST /v1/uploads over real sockets: raw and multipart bodies streamed to Postgres in chunks with
// their sha256; over the limit (declared or not) 413 with nothing stored; a body cut off leaves
// nothing; an upload may take longer than REQUEST_TIMEOUT_MS but not longer than its own deadline;
// other callers' ids are 404.
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { uploadDeadline, uploadsPlugin } from '../../src/api/uploads.plugin.ts';
import { readFile } from '../../src/media/files.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { shellServer } from './shell-server.ts';

const MB = 1024 * 1024;
let db: TestDatabase;
let srv: Awaited<ReturnType<typeof shellServer>>;
let base = '';
let port = 0;

test.before(async () => {
  db = await createTestDatabase();
  // REQUEST_TIMEOUT_MS 1 s for every other request; an upload has 10 s (the 50 MB cases took over 4 s at load 20).
  srv = await shellServer({ listener: { requestTimeoutMs: 1000, longRequest: uploadDeadline(10_000) }, rateLimit: { connect: 1000, send: 1000, status: 1000 } });
  await srv.server.register({ plugin: uploadsPlugin, options: { sql: db.sql, media: { maxBytes: 50 * MB, retentionHours: 24, uploadTimeoutMs: 10_000 } } });
  await srv.server.start();
  port = (srv.server.listener.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});
test.after(async () => {
  await srv.server.stop();
  await db.drop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const auth = (sub = 'alice') => ({ authorization: `Bearer ${srv.token(sub)}` });
const stored = async () => {
  const [u] = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads`;
  const [c] = await db.sql<{ n: number }[]>`select count(*)::int as n from upload_chunks`;
  return { uploads: u!.n, chunks: c!.n };
};
const readBack = async (id: string) => {
  const parts: Buffer[] = [];
  for await (const chunk of readFile(db.sql, id)) parts.push(chunk);
  return Buffer.concat(parts);
};

function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: Buffer | string }>) {
  const boundary = `b${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n`
      + `${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

test('a raw 3 MB body → 201 with size, sha256, type and name; stored in 1 MiB chunks that read back equal', async () => {
  const file = randomBytes(3 * MB + 123);
  const res = await fetch(`${base}/v1/uploads?filename=report.pdf`, { method: 'POST', body: file, headers: { ...auth(), 'content-type': 'application/pdf' } });
  assert.is(res.status, 201);
  const body = await res.json() as Record<string, any>;
  assert.is(body.size, file.length);
  assert.is(body.sha256, sha(file));
  assert.is(body.contentType, 'application/pdf');
  assert.is(body.filename, 'report.pdf');
  assert.is(res.headers.get('location'), `/v1/uploads/${body.id}`);
  assert.ok(Date.parse(body.expiresAt) - Date.now() > 23 * 3600_000, 'kept UPLOAD_RETENTION_HOURS');
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from upload_chunks where upload_id = ${body.id}`;
  assert.is(n, 4, '3 MiB + 123 bytes in 1 MiB chunks');
  assert.ok((await readBack(body.id)).equals(file));
  const again = await fetch(`${base}/v1/uploads/${body.id}`, { headers: auth() });
  assert.equal(await again.json(), body);
});

test('multipart: the part named "file" is the file, its name and type kept; ?filename= overrides the name', async () => {
  const file = randomBytes(200_000);
  const m = multipart([{ name: 'file', filename: 'C:\\photos\\cat.jpg', type: 'image/jpeg', data: file }]);
  const res = await fetch(`${base}/v1/uploads`, { method: 'POST', body: m.body, headers: { ...auth(), 'content-type': m.type } });
  assert.is(res.status, 201);
  const body = await res.json() as Record<string, any>;
  assert.equal([body.filename, body.contentType, body.size, body.sha256], ['cat.jpg', 'image/jpeg', file.length, sha(file)]);
  assert.ok((await readBack(body.id)).equals(file));
  const named = await fetch(`${base}/v1/uploads?filename=kitten.jpg`, { method: 'POST', body: m.body, headers: { ...auth(), 'content-type': m.type } });
  assert.is(((await named.json()) as { filename: string }).filename, 'kitten.jpg');
});

test('multipart without one "file" part, or with a field beside it → 400, nothing stored', async () => {
  const before = await stored();
  for (const parts of [
    [{ name: 'other', filename: 'a.bin', data: 'xx' }],
    [{ name: 'file', filename: 'a.bin', data: 'xx' }, { name: 'caption', data: 'hello' }],
    [{ name: 'caption', data: 'hello' }, { name: 'file', filename: 'a.bin', data: 'xx' }],
    [{ name: 'file', filename: 'a.bin', data: 'xx' }, { name: 'file', filename: 'b.bin', data: 'yy' }],
  ]) {
    const m = multipart(parts);
    const res = await fetch(`${base}/v1/uploads`, { method: 'POST', body: m.body, headers: { ...auth(), 'content-type': m.type } });
    assert.is(res.status, 400, JSON.stringify(parts.map((p) => p.name)));
    assert.is(((await res.json()) as any).error.code, 'VALIDATION_ERROR');
  }
  const broken = await fetch(`${base}/v1/uploads`, { method: 'POST', body: '--x\r\ngarbage', headers: { ...auth(), 'content-type': 'multipart/form-data; boundary=x' } });
  assert.is(broken.status, 400);
  assert.equal(await stored(), before);
});

test('malformed input: a Content-Type that is not type/subtype, a file name with a path → 400', async () => {
  const bad = await fetch(`${base}/v1/uploads`, { method: 'POST', body: 'abc', headers: { ...auth(), 'content-type': 'not a type' } });
  assert.is(bad.status, 400);
  const path = await fetch(`${base}/v1/uploads?filename=../etc/passwd`, { method: 'POST', body: 'abc', headers: { ...auth(), 'content-type': 'text/plain' } });
  assert.is(path.status, 400);
  const noToken = await fetch(`${base}/v1/uploads`, { method: 'POST', body: 'abc', headers: { 'content-type': 'text/plain' } });
  assert.is(noToken.status, 401);
});

/** Sends `total` bytes of a body (declared or chunked) over a raw request and reads whatever answer comes. */
function bigUpload(total: number, declared: boolean): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const req = httpRequest(`${base}/v1/uploads`, {
      method: 'POST', headers: { ...auth(), 'content-type': 'video/mp4', ...(declared ? { 'content-length': String(total) } : {}) },
    }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, sent }));
    });
    req.on('error', reject);
    const piece = randomBytes(MB);
    const pump = () => {
      while (sent < total) {
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

test('60 MB declared in Content-Length → 413 before the body is read; nothing stored', async () => {
  const before = await stored();
  const r = await bigUpload(60 * MB, true);
  assert.is(r.status, 413);
  assert.is(JSON.parse(r.body).error.code, 'PAYLOAD_TOO_LARGE');
  assert.equal(await stored(), before);
});

test('60 MB chunked (no length) → 413 once 50 MB passed, the chunks stored so far removed', async () => {
  const before = await stored();
  const r = await bigUpload(60 * MB, false);
  assert.is(r.status, 413);
  assert.match(JSON.parse(r.body).error.message, /larger than 50 MB/);
  assert.equal(await stored(), before, 'no upload row, no chunk left behind');
});

test('a body cut off half-way leaves nothing', async () => {
  const before = await stored();
  await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(`POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth().authorization}\r\nContent-Type: application/zip\r\nContent-Length: ${5 * MB}\r\n\r\n`);
    socket.write(randomBytes(2 * MB + 10), () => setTimeout(() => { socket.destroy(); resolve(); }, 300));
  });
  // The handler removes the partial file when the stream fails: wait for it rather than for a time.
  for (let i = 0; i < 100 && (await stored()).chunks !== before.chunks; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await stored(), before);
});

/** Writes the head, then `bytes` body bytes one every 50 ms; resolves with the answer when the server closes or answers. */
function dribbleUpload(declared: number, bytes: number): Promise<{ answer: string; sent: number }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    socket.on('data', (d) => { answer += d; if (/\r\n\r\n\{.*\}$/s.test(answer)) socket.end(); });
    socket.on('error', () => undefined);
    socket.write(`POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth().authorization}\r\nContent-Type: text/plain\r\nContent-Length: ${declared}\r\n\r\n`);
    const timer = setInterval(() => {
      if (sent >= bytes || socket.destroyed || !socket.writable) return clearInterval(timer);
      socket.write('a');
      sent++;
    }, 50);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, sent });
    });
  });
}

test('an upload may take longer than REQUEST_TIMEOUT_MS (1 s here) within its own deadline (10 s)', async () => {
  const r = await dribbleUpload(40, 40); // ~2 s
  assert.match(r.answer, /^HTTP\/1\.1 201 /);
  assert.is(JSON.parse(r.answer.split('\r\n\r\n')[1]!).size, 40);
});

test('an upload still arriving at its own deadline → 408, socket closed, nothing stored', async () => {
  const before = await stored();
  const r = await dribbleUpload(300, 300); // would take 15 s
  assert.ok(r.sent < 300, 'answered before the body was complete');
  assert.match(r.answer, /^HTTP\/1\.1 408 /);
  for (let i = 0; i < 100 && (await stored()).uploads !== before.uploads; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(await stored(), before);
});

test('tenancy: another caller\'s upload is 404 to read or delete; a malformed id is 404', async () => {
  const res = await fetch(`${base}/v1/uploads`, { method: 'POST', body: 'mine', headers: { ...auth('owner-a'), 'content-type': 'text/plain' } });
  const { id } = await res.json() as { id: string };
  for (const method of ['GET', 'DELETE']) {
    const other = await fetch(`${base}/v1/uploads/${id}`, { method, headers: auth('owner-b') });
    assert.is(other.status, 404, method);
    assert.is(((await other.json()) as any).error.code, 'NOT_FOUND');
  }
  assert.is((await fetch(`${base}/v1/uploads/not-a-uuid`, { headers: auth('owner-a') })).status, 404);
  assert.is((await fetch(`${base}/v1/uploads/${id}`, { headers: auth('owner-a') })).status, 200, 'still there for its owner');
  const del = await fetch(`${base}/v1/uploads/${id}`, { method: 'DELETE', headers: auth('owner-a') });
  assert.is(del.status, 204);
  assert.is((await fetch(`${base}/v1/uploads/${id}`, { headers: auth('owner-a') })).status, 404);
});

test.run();
