// The client's event stream against a small server that follows API.md's "Events that are not lost"
// contract (frames with increasing `id`, `?since=` replays what came after, then live). The real
// daemon's side of that contract is being built (issue 15); client.e2e.test.ts runs the same stream
// against the real daemon for what it serves today.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocketServer, type WebSocket } from 'ws';
import { EventStream, type LiveEvent } from '../../../clients/typescript/src/index.ts';
import { until } from '../../helpers/stack.ts';

interface Fake {
  url: string; server: Server; wss: WebSocketServer; sockets: Set<WebSocket>;
  stored: LiveEvent[]; opened: Array<{ since: string | null; protocols: string[] }>;
  emit(type: string, data: unknown): LiveEvent; closeAll(code?: number): void;
}

/** A fake of the events route: stores every event with the next id; `?since=` replays, then live. */
async function fakeEventsServer(token: string): Promise<Fake> {
  const server = createServer((_req, res) => res.writeHead(400).end());
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has('bearer') ? 'bearer' : false) });
  const sockets = new Set<WebSocket>();
  const stored: LiveEvent[] = [];
  const opened: Fake['opened'] = [];
  server.on('upgrade', (req, socket, head) => {
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (protocols[0] !== 'bearer' || protocols[1] !== token) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const since = new URL(req.url ?? '/', 'http://x').searchParams.get('since');
    opened.push({ since, protocols });
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      for (const e of stored) if (since !== null && Number(e.id) > Number(since)) ws.send(JSON.stringify(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/v1/events`, server, wss, sockets, stored, opened,
    emit(type, data) {
      const e = { id: String(stored.length + 1), type, at: new Date().toISOString(), data };
      stored.push(e);
      for (const ws of sockets) ws.send(JSON.stringify(e));
      return e;
    },
    closeAll(code = 1001) { for (const ws of sockets) ws.close(code, 'test'); },
  };
}

const test = suite<{ fake: Fake }>('event stream', {} as { fake: Fake });
const token = 'header.payload.signature';

test.before(async (ctx) => { ctx.fake = await fakeEventsServer(token); });
test.after(async ({ fake }) => {
  for (const ws of fake.sockets) ws.terminate();
  await new Promise((r) => fake.server.close(r));
});

test('the token goes in the bearer subprotocol, never in the URL; frames arrive in order', async ({ fake }) => {
  const got: LiveEvent[] = [];
  const stream = new EventStream({ url: fake.url, token, onEvent: (e) => got.push(e) });
  await stream.start();
  fake.emit('message.status', { id: 'm1', status: 'queued' });
  fake.emit('message.status', { id: 'm1', status: 'sent' });
  await until(() => got.length === 2, 'two frames');
  const last = fake.opened.at(-1)!;
  assert.equal(last.protocols, ['bearer', token]);
  assert.is(last.since, null, 'a fresh stream asks for no replay');
  assert.equal(got.map((e) => (e.data as { status: string }).status), ['queued', 'sent']);
  assert.is(stream.lastId, got[1]!.id);
  stream.close();
});

test('a dropped connection resumes with ?since=<last id>: what was stored meanwhile arrives once, nothing twice', async ({ fake }) => {
  const got: string[] = [];
  const states: string[] = [];
  const stream = new EventStream({
    url: fake.url, token, backoff: { baseMs: 20, capMs: 40 },
    onEvent: (e) => got.push(e.id!), onState: (s) => states.push(s),
  });
  await stream.start();
  const first = fake.emit('connection.status', { status: 'active' });
  await until(() => got.includes(first.id!), 'first live frame');
  const opens = fake.opened.length;
  fake.closeAll(1001); // the daemon restarts
  // While the client is away: stored, not pushed to it.
  const missed = [fake.emit('message.status', { status: 'sending' }), fake.emit('message.status', { status: 'sent' })];
  await until(() => fake.opened.length > opens, 'reconnect');
  assert.is(fake.opened.at(-1)!.since, first.id, 'resumed after the last id it saw');
  await until(() => missed.every((m) => got.includes(m.id!)), 'replayed frames');
  const live = fake.emit('message.status', { status: 'sent', n: 2 });
  await until(() => got.includes(live.id!), 'live after replay');
  assert.equal(got, [first.id, ...missed.map((m) => m.id), live.id], 'in order, no gap, no duplicate');
  assert.ok(states.includes('reconnecting'));
  stream.close();
});

test('a frame at or before the last id (the replay seam) is dropped', async ({ fake }) => {
  const got: string[] = [];
  const before = fake.emit('message.status', { status: 'queued' });
  const stream = new EventStream({ url: fake.url, token, since: before.id!, onEvent: (e) => got.push(e.id!) });
  await stream.start();
  // The server repeats the seam frame (a replay and a live push racing): the stream must not.
  for (const ws of fake.sockets) ws.send(JSON.stringify(before));
  const next = fake.emit('message.status', { status: 'sent' });
  await until(() => got.includes(next.id!), 'next frame');
  assert.equal(got, [next.id]);
  stream.close();
});

test('for await reads frames; close() ends the loop', async ({ fake }) => {
  const stream = new EventStream({ url: fake.url, token, since: fake.stored.at(-1)!.id! });
  const seen: string[] = [];
  const loop = (async () => { for await (const e of stream) { seen.push(e.type); if (seen.length === 2) stream.close(); } })();
  await stream.start();
  fake.emit('a.one', {});
  fake.emit('a.two', {});
  await loop;
  assert.equal(seen, ['a.one', 'a.two']);
});

test('a refused token stops the stream with UNAUTHORIZED instead of retrying forever', async ({ fake }) => {
  const stream = new EventStream({ url: fake.url, token: 'wrong', backoff: { baseMs: 10, capMs: 10 } });
  const err = await stream.start().then(() => undefined, (e: unknown) => e as { code?: string; status?: number });
  assert.is(err?.code, 'UNAUTHORIZED');
  assert.is(err?.status, 401);
});

test('close 4001 (token expired) with a token function: one retry with a fresh token, then it goes on', async ({ fake }) => {
  let calls = 0;
  const got: string[] = [];
  const stream = new EventStream({ url: fake.url, token: () => { calls++; return token; }, backoff: { baseMs: 10, capMs: 10 }, onEvent: (e) => got.push(e.id!) });
  await stream.start();
  const opens = fake.opened.length;
  fake.closeAll(4001);
  await until(() => fake.opened.length > opens, 'reopened with a fresh token');
  assert.is(calls, 2);
  const e = fake.emit('x', {});
  await until(() => got.includes(e.id!), 'frames after the new token');
  stream.close();
});

test.run();
