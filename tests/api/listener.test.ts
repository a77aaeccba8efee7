// Slow clients against a started server over real sockets: a body or a header block dribbled a byte
// at a time gets a 408 in the error envelope at the deadline and the socket is closed, instead of
// being held until the client finishes (or Node's 300 s default). No timing is asserted: what is
// asserted is that the answer came while the request was still incomplete.
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { shellServer } from './shell-server.ts';

const test = suite('listener limits');
let srv: Awaited<ReturnType<typeof shellServer>>;
let port = 0;

test.before(async () => {
  srv = await shellServer({ listener: { requestTimeoutMs: 1000 } });
  srv.server.route({ method: 'POST', path: '/v1/echo', handler: (request) => ({ got: request.payload }) });
  await srv.server.start();
  port = (srv.server.listener.address() as AddressInfo).port;
});
test.after(() => srv.server.stop());

interface Outcome { answer: string; sent: number; closedByServer: boolean }

/**
 * Writes `head`, then one byte of `trickle` every 50 ms until the server answers and closes, or the
 * trickle runs out (then waits for whatever the server does). 200 bytes take 10 s: far past the
 * 1 s deadline, short enough that a broken server fails the test rather than hanging it.
 */
function dribble(head: string, trickle = 'a'.repeat(200)): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    let closedByServer = false;
    socket.on('data', (d) => { answer += d; });
    socket.on('end', () => { closedByServer = true; });
    socket.on('error', () => undefined);
    socket.write(head);
    const timer = setInterval(() => {
      if (sent >= trickle.length || socket.destroyed || !socket.writable) return clearInterval(timer);
      socket.write(trickle[sent++]!);
    }, 50);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, sent, closedByServer });
    });
  });
}

const expect408 = (o: Outcome, total: number) => {
  assert.ok(o.sent < total, `answered only after the whole request arrived (${o.sent} of ${total} bytes)`);
  const [head = '', body = ''] = o.answer.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 408 /);
  assert.match(head, /\r\nconnection: close\r\n/i);
  assert.equal(JSON.parse(body), { error: { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time; send it again' } });
  assert.ok(o.closedByServer, 'the server closed the socket');
};

test('a body dribbled a byte at a time → 408 REQUEST_TIMEOUT at the deadline, socket closed, before the body is complete', async () => {
  const head = `POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token()}\r\nContent-Type: application/json\r\nContent-Length: 202\r\n\r\n"`;
  expect408(await dribble(head), 200);
  // The request log names it (Hapi logs the request it gave up on), never as a 2xx or 500. Hapi
  // writes that line when its side of the socket closes, which can be a few turns after the
  // client saw the close: wait for the line (up to 2 s) rather than read it at once.
  let line = srv.entries().find((e) => e.route === '/v1/echo');
  for (let i = 0; !line && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 10));
    line = srv.entries().find((e) => e.route === '/v1/echo');
  }
  assert.is(line?.http?.response?.status_code, 408);
});

test('the same without a token: the 401 comes at once and closes (nothing is read)', async () => {
  const o = await dribble('POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 202\r\n\r\n"');
  assert.match(o.answer, /^HTTP\/1\.1 401 /);
  assert.ok(o.sent < 200);
});

test('a header block that never ends → 408 with the envelope, socket closed', async () => {
  expect408(await dribble('GET /v1/echo HTTP/1.1\r\nHost: x\r\nX-Slow: '), 200);
});

test('a request that arrives in time is answered as usual', async () => {
  const res = await fetch(`http://127.0.0.1:${port}/v1/echo`, {
    method: 'POST', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json', authorization: `Bearer ${srv.token()}` },
  });
  assert.is(res.status, 200);
  assert.equal(await res.json(), { got: { a: 1 } });
});

test('MAX_CONNECTIONS: sockets past the cap are closed unanswered; a freed slot takes the next', async () => {
  // Its own server, with a deadline far away: the held sockets must stay held.
  const capped = await shellServer({ listener: { requestTimeoutMs: 60_000, maxConnections: 3 } });
  await capped.server.start();
  const port = (capped.server.listener.address() as AddressInfo).port;
  const hold = () => new Promise<Socket>((resolve) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => undefined);
    s.write('GET /health/live HTTP/1.1\r\nHost: x\r\n'); // headers open: the socket is busy until the deadline
  });
  const held = [await hold(), await hold(), await hold()];
  const refused = await new Promise<{ data: string }>((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ data }));
    s.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  assert.is(refused.data, '', 'the fourth socket got an answer');
  const freed = new Promise((r) => held[0]!.once('close', r));
  held[0]!.destroy();
  await freed;
  // The server counts the closed socket once its own side has closed: retry until the slot is seen free.
  let status = 0;
  while (status !== 200) status = await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.status, () => 0);
  for (const s of held) s.destroy();
  await capped.server.stop();
});

test.run();
