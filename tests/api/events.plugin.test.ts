import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, type ClientOptions } from 'ws';
import { Redis } from 'ioredis';
import { redisTickets } from '../../src/api/event-tickets.ts';
import { eventsPlugin, type EventsPluginOptions } from '../../src/api/events.plugin.ts';
import { mintToken } from '../../src/auth/token.ts';
import { bus, type LiveEvent } from '../../src/events/bus.ts';
import { secret, shellServer } from './shell-server.ts';

// Real `ws` clients against a started server on a loopback port.

async function started(opts: EventsPluginOptions = {}, shellOpts: Parameters<typeof shellServer>[0] = {}) {
  const shell = await shellServer(shellOpts);
  await shell.server.register({ plugin: eventsPlugin, options: { logger: shell.logger, ...opts } });
  await shell.server.start();
  const { port } = shell.server.listener.address() as AddressInfo;
  return { ...shell, base: `ws://127.0.0.1:${port}` };
}

const token = (sub: string, o: { ttlSeconds?: number; now?: number } = {}) => mintToken({ secret, sub, ...o });

/** Opens a client; resolves with it once open, or with the refusal's status and body. */
async function open(url: string, opts: ClientOptions = {}, protocols?: string[]): Promise<{ ws: WebSocket; frames: LiveEvent[] } | { status: number; body: any; headers: IncomingMessage['headers'] }> {
  const ws = protocols ? new WebSocket(url, protocols, opts) : new WebSocket(url, opts);
  const frames: LiveEvent[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers }));
    });
    ws.once('error', reject);
  });
}

async function connected(url: string, opts: ClientOptions = {}, protocols?: string[]) {
  const r = await open(url, opts, protocols);
  if (!('ws' in r)) throw new Error(`refused with ${r.status}`);
  return r;
}

const event = (owner: string, type: LiveEvent['type'] = 'connection.status', data: unknown = { id: randomUUID(), status: 'active' }): LiveEvent =>
  ({ type, owner, at: new Date().toISOString(), data });

const e0 = () => new Date(0).toISOString();

/** Waits until `frames` has n entries (frames arrive in order on one socket). */
async function frameCount(ws: WebSocket, frames: unknown[], n: number): Promise<void> {
  while (frames.length < n) await once(ws, 'message');
}

// ---------------------------------------------------------------------------------------------
const auth = suite('events: authentication and scoping');

auth('Bearer header: own events arrive as { type, at, data }; another owner\'s never do', async () => {
  const t = await started();
  try {
    const alice = `u-${randomUUID()}`;
    const { ws, frames } = await connected(`${t.base}/v1/events`, { headers: { authorization: `Bearer ${token(alice)}` } });
    const mine = event(alice);
    const theirs = event(`u-${randomUUID()}`);
    const marker = event(alice, 'message.status', { id: randomUUID(), status: 'sent' });
    bus.publish(mine);
    bus.publish(theirs);
    bus.publish(marker);
    await frameCount(ws, frames, 2);
    assert.equal(frames, [
      { type: mine.type, at: mine.at, data: mine.data },
      { type: marker.type, at: marker.at, data: marker.data },
    ]);
    ws.close();
  } finally {
    await t.server.stop();
  }
});

auth('?access_token= still works for old clients (discouraged: URLs are logged by proxies); the token is never logged', async () => {
  const t = await started();
  try {
    const bob = `u-${randomUUID()}`;
    const tok = token(bob);
    const { ws, frames } = await connected(`${t.base}/v1/events?access_token=${encodeURIComponent(tok)}`);
    const e = event(bob, 'message.received', { connectionId: randomUUID(), chat: '-100123', from: 'x', text: '<b>hi</b>', platformMessageId: '7', date: e0() });
    bus.publish(e);
    await frameCount(ws, frames, 1);
    assert.equal(frames[0], { type: e.type, at: e.at, data: e.data });
    ws.close();
    await once(ws, 'close');
    assert.not.ok(t.lines.some((l) => l.includes(tok)), 'token in a log line');
  } finally {
    await t.server.stop();
  }
});

auth('missing, bad, foreign-key and expired tokens → 401 with the error envelope, no upgrade', async () => {
  const t = await started();
  try {
    const sub = `u-${randomUUID()}`;
    const forged = mintToken({ secret: 'another-secret-0123456789-abcdefghij', sub });
    const expired = token(sub, { ttlSeconds: 60, now: Date.now() - 10 * 60_000 });
    const cases: [string, ClientOptions, string][] = [
      [`${t.base}/v1/events`, {}, 'authentication required'],
      [`${t.base}/v1/events?access_token=`, {}, 'authentication required'],
      [`${t.base}/v1/events?access_token=not.a.jwt`, {}, 'invalid token'],
      [`${t.base}/v1/events`, { headers: { authorization: `Bearer ${forged}` } }, 'invalid token'],
      [`${t.base}/v1/events?access_token=${expired}`, {}, 'token expired'],
    ];
    for (const [url, opts, message] of cases) {
      const r = await open(url, opts);
      assert.ok('status' in r, url);
      if (!('status' in r)) continue;
      assert.is(r.status, 401, url);
      assert.equal(r.body, { error: { code: 'UNAUTHORIZED', message } }, url);
      assert.is(r.headers['www-authenticate'], 'Bearer');
      assert.is(r.headers.upgrade, undefined);
    }
    const elsewhere = await open(`${t.base}/v1/other?access_token=${token(sub)}`);
    assert.ok('status' in elsewhere && elsewhere.status === 404);
  } finally {
    await t.server.stop();
  }
});

auth('a token that expires while connected closes the socket with 4001', async () => {
  const t = await started();
  try {
    // exp 5 s ago: inside the 30 s clock skew the auth strategy tolerates, so the upgrade succeeds
    // and the socket is closed at once because its token's lifetime is over.
    const tok = token(`u-${randomUUID()}`, { ttlSeconds: 60, now: Date.now() - 65_000 });
    const { ws } = await connected(`${t.base}/v1/events?access_token=${tok}`);
    const [code, reason] = await once(ws, 'close') as [number, Buffer];
    assert.is(code, 4001);
    assert.is(String(reason), 'token expired');
  } finally {
    await t.server.stop();
  }
});

auth('a plain GET without the upgrade is a 400; the route is in the OpenAPI description', async () => {
  const t = await started();
  try {
    const res = await t.server.inject({ method: 'GET', url: '/v1/events', headers: { authorization: `Bearer ${token('carol')}` } });
    assert.is(res.statusCode, 400);
    assert.is(JSON.parse(res.payload).error.code, 'VALIDATION_ERROR');
    const doc = JSON.parse((await t.server.inject('/openapi.json')).payload);
    assert.match(doc.paths['/v1/events'].get.description, /Reconnect with/);
    assert.ok(doc.paths['/v1/events'].get.responses['401']);
  } finally {
    await t.server.stop();
  }
});

auth.run();

// ---------------------------------------------------------------------------------------------
const hygiene = suite('events: the token out of the URL (subprotocol, ticket), and the limits');

hygiene('Sec-WebSocket-Protocol `bearer, <jwt>`: the server selects `bearer` (never the token) and scopes to the caller', async () => {
  const t = await started();
  try {
    const sub = `u-${randomUUID()}`;
    const tok = token(sub);
    const { ws, frames } = await connected(`${t.base}/v1/events`, {}, ['bearer', tok]);
    assert.is(ws.protocol, 'bearer');
    const e = event(sub);
    bus.publish(event(`u-${randomUUID()}`));
    bus.publish(e);
    await frameCount(ws, frames, 1);
    assert.equal(frames, [{ type: e.type, at: e.at, data: e.data }]);
    ws.close();
    const bad = await open(`${t.base}/v1/events`, {}, ['bearer', mintToken({ secret: 'another-secret-0123456789-abcdefghij', sub })]);
    assert.ok('status' in bad && bad.status === 401 && bad.body.error.message === 'invalid token');
    const alone = await open(`${t.base}/v1/events`, {}, ['bearer']);
    assert.ok('status' in alone && alone.status === 401 && alone.body.error.message === 'authentication required');
    assert.not.ok(t.lines.some((l) => l.includes(tok)), 'token in a log line');
  } finally {
    await t.server.stop();
  }
});

hygiene('POST /v1/events/ticket: a single-use ticket opens the caller\'s socket once; reused, unknown or without a token → 401', async () => {
  const t = await started();
  try {
    const sub = `u-${randomUUID()}`;
    const res = await t.server.inject({ method: 'POST', url: '/v1/events/ticket', headers: { authorization: `Bearer ${token(sub)}` } });
    assert.is(res.statusCode, 201);
    const { ticket, expiresAt } = JSON.parse(res.payload) as { ticket: string; expiresAt: string };
    assert.match(ticket, /^[\w-]{43}$/);
    const ttl = Date.parse(expiresAt) - Date.now();
    assert.ok(ttl > 0 && ttl <= 30_000, `expires in ${ttl} ms`);
    assert.is(res.headers['cache-control'], 'no-store');

    const { ws, frames } = await connected(`${t.base}/v1/events?ticket=${ticket}`);
    const e = event(sub);
    bus.publish(event(`u-${randomUUID()}`));
    bus.publish(e);
    await frameCount(ws, frames, 1);
    assert.equal(frames, [{ type: e.type, at: e.at, data: e.data }]);
    ws.close();

    for (const bad of [ticket, 'x'.repeat(43), 'not-a-ticket']) {
      const r = await open(`${t.base}/v1/events?ticket=${bad}`);
      assert.ok('status' in r && r.status === 401 && r.body.error.message === 'invalid or used ticket', bad);
    }
    const anonymous = await t.server.inject({ method: 'POST', url: '/v1/events/ticket' });
    assert.is(anonymous.statusCode, 401);
    const withBody = await t.server.inject({ method: 'POST', url: '/v1/events/ticket', payload: { sub: 'someone-else' }, headers: { authorization: `Bearer ${token(sub)}` } });
    assert.is(withBody.statusCode, 400);
    assert.is(JSON.parse(withBody.payload).error.code, 'VALIDATION_ERROR');
  } finally {
    await t.server.stop();
  }
});

hygiene('a ticket\'s socket closes with 4001 when the token that asked for it expires', async () => {
  const t = await started();
  try {
    // exp 5 s ago, inside the 30 s skew: the ticket is issued, and its socket closes at once.
    const tok = token(`u-${randomUUID()}`, { ttlSeconds: 60, now: Date.now() - 65_000 });
    const res = await t.server.inject({ method: 'POST', url: '/v1/events/ticket', headers: { authorization: `Bearer ${tok}` } });
    const { ws } = await connected(`${t.base}/v1/events?ticket=${JSON.parse(res.payload).ticket}`);
    const [code] = await once(ws, 'close') as [number];
    assert.is(code, 4001);
  } finally {
    await t.server.stop();
  }
});

hygiene('tickets in Redis: one replica issues, another opens; each works once', async () => {
  const redis = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
  await once(redis, 'ready');
  const prefix = `test:ticket:${randomUUID()}:`;
  const a = await started({ tickets: redisTickets(redis, 30_000, prefix) });
  const b = await started({ tickets: redisTickets(redis, 30_000, prefix) });
  try {
    const sub = `u-${randomUUID()}`;
    const res = await a.server.inject({ method: 'POST', url: '/v1/events/ticket', headers: { authorization: `Bearer ${token(sub)}` } });
    const { ticket } = JSON.parse(res.payload) as { ticket: string };
    const { ws } = await connected(`${b.base}/v1/events?ticket=${ticket}`);
    ws.close();
    const again = await open(`${a.base}/v1/events?ticket=${ticket}`);
    assert.ok('status' in again && again.status === 401);
  } finally {
    await a.server.stop();
    await b.server.stop();
    await redis.quit();
  }
});

hygiene('opening a socket counts in the caller\'s status budget, and per address before the token is read: 429 with Retry-After', async () => {
  const t = await started({}, { rateLimit: { connect: 10, send: 100, status: 2, perAddress: 1000 } });
  try {
    const tok = token(`u-${randomUUID()}`);
    for (let i = 0; i < 2; i++) (await connected(`${t.base}/v1/events`, {}, ['bearer', tok])).ws.close();
    const third = await open(`${t.base}/v1/events`, {}, ['bearer', tok]);
    assert.ok('status' in third);
    if (!('status' in third)) return;
    assert.is(third.status, 429);
    assert.is(third.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(third.headers['retry-after']) > 0 && Number(third.headers['retry-after']) <= 60);
    assert.is(third.body.error.retryAfter, Number(third.headers['retry-after']));
  } finally {
    await t.server.stop();
  }
  const u = await started({}, { rateLimit: { connect: 10, send: 100, status: 1000, perAddress: 2 } });
  try {
    for (let i = 0; i < 2; i++) await open(`${u.base}/v1/events?access_token=not.a.jwt`); // refused 401, yet counted
    const flood = await open(`${u.base}/v1/events?access_token=not.a.jwt`);
    assert.ok('status' in flood && flood.status === 429 && flood.body.error.code === 'RATE_LIMITED');
  } finally {
    await u.server.stop();
  }
});

hygiene.run();

// ---------------------------------------------------------------------------------------------
const life = suite('events: liveness, back-pressure and shutdown');

life('pings keep an answering client open', async () => {
  const t = await started({ pingMs: 20 });
  try {
    const { ws } = await connected(`${t.base}/v1/events?access_token=${token('dave')}`);
    // Each ping after the first checks the previous pong: three pings mean two checks passed. A drop
    // fails at once instead of waiting for pings that never come.
    const dropped = once(ws, 'close').then(([code]) => { throw new Error(`dropped with ${code}`); });
    await Promise.race([(async () => { for (let i = 0; i < 3; i++) await once(ws, 'ping'); })(), dropped]);
    dropped.catch(() => undefined);
    assert.is(ws.readyState, WebSocket.OPEN);
    ws.close();
  } finally {
    await t.server.stop();
  }
});

life('a client that does not answer pings is dropped', async () => {
  const t = await started({ pingMs: 20 });
  try {
    const { ws } = await connected(`${t.base}/v1/events?access_token=${token('erin')}`, { autoPong: false });
    const [code] = await once(ws, 'close') as [number];
    assert.is(code, 1006, 'terminated without a close frame');
  } finally {
    await t.server.stop();
  }
});

life('a client that stops reading is dropped once its send buffer passes the bound', async () => {
  const t = await started({ maxBufferedBytes: 256 * 1024 });
  try {
    const sub = `u-${randomUUID()}`;
    const { ws, frames } = await connected(`${t.base}/v1/events?access_token=${token(sub)}`);
    // Stall the client: its kernel buffers fill, then the server's userland buffer grows.
    const raw = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    const big = 'x'.repeat(64 * 1024);
    const total = 400; // 25 MiB: far beyond loopback socket buffers
    for (let i = 0; i < total; i++) bus.publish(event(sub, 'message.status', { i, big }));
    raw.resume();
    const [code] = await once(ws, 'close') as [number];
    assert.is(code, 1006);
    assert.ok(frames.length < total, `received ${frames.length} of ${total}`);
    assert.ok(t.entries().some((e) => e.message === 'live events socket dropped: client not reading'));
  } finally {
    await t.server.stop();
  }
});

life('server stop closes open sockets with 1001 and refuses new upgrades meanwhile', async () => {
  const t = await started();
  const sub = `u-${randomUUID()}`;
  const a = await connected(`${t.base}/v1/events?access_token=${token(sub)}`);
  const b = await connected(`${t.base}/v1/events`, { headers: { authorization: `Bearer ${token(sub)}` } });
  const closes = Promise.all([a.ws, b.ws].map((ws) => once(ws, 'close') as Promise<[number, Buffer]>));
  const t0 = Date.now();
  await t.server.stop({ timeout: 5000 });
  const codes = (await closes).map(([code]) => code);
  assert.equal(codes, [1001, 1001]);
  assert.ok(Date.now() - t0 < 2000, `stop took ${Date.now() - t0} ms`);
  assert.is(bus.listenerCount('event'), 0, 'bus listener removed');
});

life('too many sockets for one caller → 429 before upgrading', async () => {
  const t = await started({ maxSocketsPerCaller: 2 });
  try {
    const url = `${t.base}/v1/events?access_token=${token('frank')}`;
    const a = await connected(url);
    const b = await connected(url);
    const c = await open(url);
    assert.ok('status' in c && c.status === 429 && c.body.error.code === 'RATE_LIMITED');
    const other = await connected(`${t.base}/v1/events?access_token=${token('grace')}`);
    for (const ws of [a.ws, b.ws, other.ws]) ws.close();
  } finally {
    await t.server.stop();
  }
});

life.run();
