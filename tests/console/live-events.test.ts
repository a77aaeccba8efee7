import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { eventsProtocols, eventsUrl, LiveEvents, type LiveState, type SocketLike } from '../../src/console/app/live-events.ts';
import type { LiveFrame } from '../../src/console/app/types.ts';

// The console's live socket against a real WebSocket server (ws), with a hand-driven clock for the
// reconnect delays: what is scheduled is recorded and run by the test, never slept through.
test('reconnects after drops with growing delays, re-reads on every open, and stops for good', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const { port } = wss.address() as AddressInfo;

  const states: string[] = [];
  const frames: LiveFrame[] = [];
  const scheduled: { fn: () => void; ms: number }[] = [];
  let opens = 0;
  let tokens = 0;
  const offered: string[] = [];
  wss.on('connection', (_ws, req) => offered.push(String(req.headers['sec-websocket-protocol']).replace(/,\s*/g, ' ')));
  let cancelled = 0;
  const waiters: { state: LiveState; resolve: () => void }[] = [];
  const reach = (state: LiveState) => new Promise<void>((resolve) => waiters.push({ state, resolve }));

  const live = new LiveEvents({
    url: () => `ws://127.0.0.1:${port}/v1/events`,
    protocols: () => ['bearer', `t${++tokens}`],
    onFrame: (f) => frames.push(f),
    onState: (s, ms) => {
      states.push(ms === undefined ? s : `${s} ${ms}`);
      for (const w of waiters.splice(0)) (w.state === s ? w.resolve() : waiters.push(w));
    },
    onOpen: () => opens++,
    // A browser socket reports a refused connection as error + close; ws throws on an unheard 'error'.
    connect: (url, protocols) => new WebSocket(url, protocols).on('error', () => undefined) as unknown as SocketLike,
    schedule: (fn, ms) => scheduled.push({ fn, ms }),
    cancel: () => cancelled++,
    random: () => 1,
  });

  let opened = reach('open');
  const firstClient = new Promise<WebSocket>((r) => wss.once('connection', r));
  live.start();
  await opened;
  const server = await firstClient;
  const got = new Promise<void>((resolve) => {
    const check = () => (frames.length >= 1 ? resolve() : setImmediate(check));
    check();
  });
  server.send('not json');
  server.send(JSON.stringify({ type: 'connection.status' })); // no data: ignored
  server.send(JSON.stringify({ type: 'connection.status', at: '2026-01-01T00:00:00Z', data: { id: 'c1' } }));
  await got;
  assert.equal(frames.map((f) => (f.data as { id: string }).id), ['c1']);

  // A drop: one retry after 1 s, then open again and the app re-reads (onOpen).
  let waiting = reach('waiting');
  server.terminate();
  await waiting;
  assert.equal(scheduled.map((s) => s.ms), [1000]);
  opened = reach('open');
  scheduled.shift()!.fn();
  await opened;
  assert.is(opens, 2);
  // Each attempt offers the token of its time (read again after a sign-in would have changed it).
  assert.equal(offered, ['bearer t1', 'bearer t2']);

  // The server goes away: every failed attempt doubles the delay.
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(r));
  for (const expected of [1000, 2000, 4000]) {
    if (scheduled.length === 0) await reach('waiting');
    const next = scheduled.shift()!;
    assert.is(next.ms, expected);
    waiting = reach('waiting');
    next.fn();
    await waiting;
  }
  assert.is(scheduled.at(-1)!.ms, 8000);

  live.stop();
  assert.is(cancelled, 1);
  assert.is(states[0], 'connecting');
  assert.ok(states.includes('open'));
});

test('the socket URL follows the page (ws for http, wss for https) and never carries the token', () => {
  assert.is(eventsUrl({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/v1/events');
  assert.is(eventsUrl({ protocol: 'https:', host: 'console.example' }), 'wss://console.example/v1/events');
  assert.equal(eventsProtocols('eyJ.a-b_c'), ['bearer', 'eyJ.a-b_c']);
});

test.run();
