// GET /v1/events?since=: stored events replayed, then live ones, with no gap and no duplicate at the
// seam, while other writers keep committing; real ws clients, real Postgres.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendEvent, eventsCommitted, readEvents, type StoredEvent } from '../../src/store/events.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { until } from '../helpers/stack.ts';
import { closeWs, connectedEvents, eventsServer, frameCount, openEvents } from './helpers.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase({ max: 8 }); });
test.after(async () => { await db.drop(); });

const append = async (customerId: string, n: number, tag = 'x'): Promise<StoredEvent[]> => {
  const out: StoredEvent[] = [];
  for (let i = 0; i < n; i++) out.push(await appendEvent(db.sql, { customerId, type: 'message.status', data: { tag, i } }));
  eventsCommitted();
  return out;
};

test('since=<pos>: the missing events, then live ones written during the replay; none twice, none missing, in pos order', async () => {
  const alice = `a-${randomUUID()}`;
  const bob = `b-${randomUUID()}`;
  // A small replay page (7) makes the replay take many reads while the writers below commit.
  const s = await eventsServer(db.sql, { replayBatch: 7 });
  try {
    const before = await append(alice, 60, 'before');
    await append(bob, 5, 'bob');
    const resumeAfter = before[9]!;
    const { ws, frames } = await connectedEvents(`${s.base}/v1/events?since=${resumeAfter.pos}`, alice);
    // Live writes race the replay: some land in pages, some arrive live, some both.
    const during = await Promise.all([append(alice, 40, 'during'), append(bob, 10, 'bob')]);
    const after = await append(alice, 10, 'after');
    const expected = [...before.slice(10), ...during[0], ...after].map((e) => e.id);
    await frameCount(ws, frames, expected.length);
    // One more event proves nothing extra was queued behind.
    const [marker] = await append(alice, 1, 'marker');
    await frameCount(ws, frames, expected.length + 1);
    assert.equal(frames.map((f) => f.id), [...expected, marker!.id]);
    for (let i = 1; i < frames.length; i++) assert.ok(frames[i]!.pos > frames[i - 1]!.pos, 'strictly increasing pos');
    const f = frames[0]!;
    assert.equal(Object.keys(f).sort(), ['at', 'data', 'id', 'occurredAt', 'pos', 'type']);
    assert.is(f.type, 'message.status');
    assert.equal(f.data, { tag: 'before', i: 10 });
    await closeWs(ws);
  } finally {
    await s.stop();
  }
});

test('resume by event id; a socket without since gets only new events', async () => {
  const alice = `a-${randomUUID()}`;
  const s = await eventsServer(db.sql);
  try {
    const old = await append(alice, 5);
    const live = await connectedEvents(`${s.base}/v1/events`, alice);
    const byId = await connectedEvents(`${s.base}/v1/events?since=${old[2]!.id}`, alice);
    await frameCount(byId.ws, byId.frames, 2);
    const fresh = await append(alice, 3);
    await frameCount(live.ws, live.frames, 3);
    await frameCount(byId.ws, byId.frames, 5);
    assert.equal(live.frames.map((f) => f.id), fresh.map((e) => e.id));
    assert.equal(byId.frames.map((f) => f.id), [...old.slice(3), ...fresh].map((e) => e.id));
    await closeWs(live.ws);
    await closeWs(byId.ws);
  } finally {
    await s.stop();
  }
});

test('a reconnect with the last pos received continues exactly where the first socket stopped', async () => {
  const alice = `a-${randomUUID()}`;
  const s = await eventsServer(db.sql);
  try {
    const first = await connectedEvents(`${s.base}/v1/events?since=0`, alice);
    const a = await append(alice, 4);
    await frameCount(first.ws, first.frames, 4);
    await closeWs(first.ws);
    const missed = await append(alice, 6);
    const second = await connectedEvents(`${s.base}/v1/events?since=${first.frames.at(-1)!.pos}`, alice);
    await frameCount(second.ws, second.frames, 6);
    assert.equal(second.frames.map((f) => f.id), missed.map((e) => e.id));
    assert.equal(first.frames.map((f) => f.id), a.map((e) => e.id));
    await closeWs(second.ws);
  } finally {
    await s.stop();
  }
});

test('another caller\'s events are never replayed; their event id is 404; a malformed since is 400, before upgrading', async () => {
  const alice = `a-${randomUUID()}`;
  const bob = `b-${randomUUID()}`;
  const s = await eventsServer(db.sql);
  try {
    const bobs = await append(bob, 3);
    const mine = await append(alice, 2);
    const r = await openEvents(`${s.base}/v1/events?since=${bobs[0]!.id}`, alice);
    assert.ok('status' in r);
    if ('status' in r) {
      assert.is(r.status, 404);
      assert.is(r.body.error.code, 'NOT_FOUND');
    }
    for (const bad of ['abc', '-1', '1.5', `${'9'.repeat(20)}`, 'DROP TABLE events']) {
      const b = await openEvents(`${s.base}/v1/events?since=${encodeURIComponent(bad)}`, alice);
      assert.ok('status' in b, bad);
      if ('status' in b) {
        assert.is(b.status, 400, bad);
        assert.is(b.body.error.code, 'VALIDATION_ERROR');
      }
    }
    const ok = await connectedEvents(`${s.base}/v1/events?since=0`, alice);
    await frameCount(ok.ws, ok.frames, 2);
    assert.equal(ok.frames.map((f) => f.id), mine.map((e) => e.id));
    assert.is((await readEvents(db.sql, alice, { afterPos: 0, limit: 100 })).length, 2);
    await closeWs(ok.ws);
  } finally {
    await s.stop();
  }
});

test('events committed after the replay\'s last read but before it goes live are delivered once (the seam held open)', async () => {
  const alice = `a-${randomUUID()}`;
  const seam: StoredEvent[] = [];
  let feedPos = () => 0;
  const s = await eventsServer(db.sql, {
    replayBatch: 5,
    // On the last (short) page: commit more events and wait until the live feed has handed them out,
    // all before the socket switches from replay to live.
    afterReplayPage: async (sent) => {
      if (sent === 5 || seam.length > 0) return;
      seam.push(...await append(alice, 4, 'seam'));
      while (feedPos() < seam.at(-1)!.pos) await new Promise((r) => setTimeout(r, 5));
    },
  });
  feedPos = () => s.feed.pos;
  try {
    const old = await append(alice, 12, 'old');
    const { ws, frames } = await connectedEvents(`${s.base}/v1/events?since=0`, alice);
    await until(() => frames.length >= 16, 'the replay and the seam events', 5000).catch(() => undefined);
    const after = await append(alice, 1, 'after');
    await until(() => frames.some((f) => f.id === after[0]!.id), 'the live event after the seam');
    assert.equal(frames.map((f) => f.id), [...old, ...seam, ...after].map((e) => e.id));
    await closeWs(ws);
  } finally {
    await s.stop();
  }
});

test.run();
