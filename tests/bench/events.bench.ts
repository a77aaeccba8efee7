// Events: how fast they are stored, how soon a committed event reaches an open socket, and how fast
// a reconnecting client is replayed what it missed. Real Postgres (a fresh database), the events
// plugin on a loopback port with its feed, real ws clients.
// Usage: npm run bench:events -- [--write 20000] [--writers 8] [--live 1000] [--replay 100000]
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { appendEvent, appendEvents, eventsCommitted } from '../../src/store/events.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { closeWs, connectedEvents, eventsServer } from '../events/helpers.ts';
import { percentile, pool } from './spawn-emulator.ts';

const { values } = parseArgs({
  options: {
    write: { type: 'string', default: '20000' },
    writers: { type: 'string', default: '8' },
    live: { type: 'string', default: '1000' },
    replay: { type: 'string', default: '100000' },
  },
});
const nWrite = Number(values.write);
const writers = Number(values.writers);
const nLive = Number(values.live);
const nReplay = Number(values.replay);

const db = await createTestDatabase({ max: writers + 4 });
const server = await eventsServer(db.sql);
try {
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  // 1. Written: one appendEvent per statement (as a status change or an incoming message writes it),
  // from `writers` concurrent writers: the pos lock serialises them from append to commit.
  const owner = `w-${randomUUID()}`;
  const data = { id: randomUUID(), status: 'sent', text: 'x'.repeat(120) };
  let t0 = performance.now();
  await pool(Array.from({ length: nWrite }, (_, i) => i), writers, async () => {
    await appendEvent(db.sql, { customerId: owner, type: 'message.status', data });
  });
  let s = (performance.now() - t0) / 1000;
  console.log(`written: ${nWrite} events by ${writers} writers in ${s.toFixed(2)} s = ${Math.round(nWrite / s)} events/s`);

  // 2. Live: commit → frame on an open socket, one event at a time (the latency a console sees).
  const liveOwner = `l-${randomUUID()}`;
  const live = await connectedEvents(`${server.base}/v1/events`, liveOwner);
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  let waiting: (() => void) | undefined;
  live.ws.on('message', (d) => {
    const f = JSON.parse(String(d)) as { id: string };
    const at = committedAt.get(f.id);
    if (at !== undefined) latencies.push(performance.now() - at);
    waiting?.();
  });
  for (let i = 0; i < nLive; i++) {
    const got = new Promise<void>((r) => (waiting = r));
    const e = await appendEvent(db.sql, { customerId: liveOwner, type: 'message.status', data: { i } });
    committedAt.set(e.id, performance.now());
    eventsCommitted();
    await got;
  }
  latencies.sort((a, b) => a - b);
  console.log(`live commit→frame over ${latencies.length} events: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
  await closeWs(live.ws);

  // 3. Replay: a client reconnecting with since=0 after nReplay events were stored for it.
  const replayOwner = `r-${randomUUID()}`;
  for (let i = 0; i < nReplay; i += 1000) {
    await appendEvents(db.sql, Array.from({ length: Math.min(1000, nReplay - i) }, (_, j) => ({ customerId: replayOwner, type: 'message.status' as const, data: { i: i + j, ...data } })));
  }
  t0 = performance.now();
  const r = await connectedEvents(`${server.base}/v1/events?since=0`, replayOwner);
  let count = 0;
  await new Promise<void>((resolve) => {
    r.ws.on('message', () => { if (++count === nReplay) resolve(); });
    if (r.frames.length >= nReplay) resolve();
  });
  s = (performance.now() - t0) / 1000;
  console.log(`replay: ${nReplay} events over one socket in ${s.toFixed(2)} s = ${Math.round(nReplay / s)} events/s`);
  await closeWs(r.ws);
  console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  await server.stop();
  await db.drop();
}
