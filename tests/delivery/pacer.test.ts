import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pacer, type PaceTarget } from '../../src/delivery/pacer.ts';
import type { Priority } from '../../src/delivery/types.ts';
import { FakeClock, flush } from './fake-clock.ts';

// Drives messages through the pacer the way a consumer does: go → "send" (recorded), deferred →
// come back at the promised slot and ask again.
function driver(pacer: Pacer, clock: FakeClock) {
  const sent: { id: string; chat: string; at: number; priority: Priority }[] = [];
  let defers = 0;
  const run = async (t: PaceTarget) => {
    for (;;) {
      const d = await pacer.acquire(t);
      if (d.go) {
        sent.push({ id: t.id, chat: t.chat, at: clock.now(), priority: t.priority });
        return;
      }
      defers++;
      await clock.sleep(d.until - clock.now());
    }
  };
  return { sent, run, defers: () => defers };
}

const target = (clock: FakeClock, id: string, chat: string, o: Partial<PaceTarget> = {}): PaceTarget => ({
  id, connectionId: 'c1', chat, kind: 'user', priority: 'normal', createdAt: clock.now(), ...o,
});

test('a burst of 50 into one chat is spread at ≤ 1/s while another chat flows', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const start = clock.now();
  const tasks = Array.from({ length: 50 }, (_, i) => d.run(target(clock, `a${i}`, '100')));
  tasks.push(d.run(target(clock, 'b0', '200')));
  await flush();
  await clock.advance(1500);
  tasks.push(d.run(target(clock, 'b1', '200')));
  await flush();
  await clock.advance(60_000, 50);
  await Promise.all(tasks);
  const a = d.sent.filter((s) => s.chat === '100');
  assert.is(a.length, 50);
  for (let i = 1; i < a.length; i++) assert.ok(a[i]!.at - a[i - 1]!.at >= 1000, `gap ${i}: ${a[i]!.at - a[i - 1]!.at} ms`);
  // No slot wasted beyond the 50 ms clock step: 49 gaps of ~1 s.
  assert.ok(a.at(-1)!.at - start <= 49 * 1100, `last at +${a.at(-1)!.at - start} ms`);
  // Order within one priority is kept: messages go in the order they arrived.
  assert.equal(a.map((s) => s.id), Array.from({ length: 50 }, (_, i) => `a${i}`));
  const b = d.sent.filter((s) => s.chat === '200');
  assert.is(b[0]!.at, start, 'other chat not held behind the burst');
  assert.is(b[1]!.at - start, 1500, 'other chat still flowing during the burst');
});

test('group chats: at most 20 per minute', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const tasks = Array.from({ length: 30 }, (_, i) => d.run(target(clock, `g${i}`, '-100123')));
  await flush();
  await clock.advance(120_000, 100);
  await Promise.all(tasks);
  assert.is(d.sent.length, 30);
  for (let i = 20; i < 30; i++) assert.ok(d.sent[i]!.at - d.sent[i - 20]!.at >= 60_000, `window at ${i}: ${d.sent.map((s) => s.at - d.sent[0]!.at).join(",")}`);
});

test('bot: at most 30 per second over all chats', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const tasks = Array.from({ length: 90 }, (_, i) => d.run(target(clock, `m${i}`, String(1000 + i), { kind: 'bot' })));
  await flush();
  await clock.advance(5000, 5);
  await Promise.all(tasks);
  assert.is(d.sent.length, 90);
  const times = d.sent.map((s) => s.at).sort((x, y) => x - y);
  for (let i = 30; i < times.length; i++) assert.ok(times[i]! - times[i - 30]! >= 1000, `bot window at ${i}`);
});

test('flood wait pauses that chat only; the refused message goes first after it', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const start = clock.now();
  await d.run(target(clock, 'x0', '1'));
  const slot = pacer.pause(target(clock, 'x0', '1'), 17, 'chat');
  assert.is(slot, start + 17_000);
  const tasks = [d.run(target(clock, 'x1', '1')), d.run(target(clock, 'y1', '2'))];
  await flush();
  await clock.advance(20_000, 100);
  await Promise.all(tasks);
  assert.is(d.sent.find((s) => s.id === 'y1')!.at, start, 'other chat unaffected');
  assert.ok(d.sent.find((s) => s.id === 'x1')!.at >= start + 18_000, 'same chat waits out the flood wait and the refused one');
});

test('connection-wide flood wait pauses every chat of that connection', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const start = clock.now();
  pacer.pause(target(clock, 'z', '1'), 5, 'connection');
  const tasks = [d.run(target(clock, 'p', '2')), d.run(target(clock, 'q', '3', { connectionId: 'c2' }))];
  await flush();
  await clock.advance(6000, 100);
  await Promise.all(tasks);
  assert.ok(d.sent.find((s) => s.id === 'p')!.at >= start + 5000);
  assert.is(d.sent.find((s) => s.id === 'q')!.at, start);
});

test('priority: high overtakes waiting normal and low in the same chat', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock, holdMs: 10_000 });
  const d = driver(pacer, clock);
  const tasks: Promise<void>[] = [];
  for (const p of ['low', 'low', 'normal', 'normal', 'high', 'high'] as Priority[]) {
    tasks.push(d.run(target(clock, `${p}${tasks.length}`, '1', { priority: p })));
    await flush();
    await clock.advance(10, 10);
  }
  await clock.advance(10_000, 50);
  await Promise.all(tasks);
  assert.equal(d.sent.map((s) => s.priority), ['low', 'high', 'high', 'normal', 'normal', 'low']);
});

test('priority also holds for deferred messages: a later high message goes before deferred normals', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const tasks = Array.from({ length: 10 }, (_, i) => d.run(target(clock, `n${i}`, '1')));
  await clock.advance(500, 50);
  tasks.push(d.run(target(clock, 'h', '1', { priority: 'high' })));
  await clock.advance(20_000, 50);
  await Promise.all(tasks);
  const pos = d.sent.findIndex((s) => s.id === 'h');
  assert.ok(pos <= 3, `high went at position ${pos}`);
});

test('idle buckets are dropped', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock, idleMs: 60_000 });
  const d = driver(pacer, clock);
  await Promise.all(Array.from({ length: 100 }, (_, i) => d.run(target(clock, `i${i}`, String(i)))));
  assert.is(pacer.size().buckets, 101);
  await clock.advance(61_000, 1000);
  await d.run(target(clock, 'late', 'x'));
  assert.is(pacer.size().buckets, 2);
});

test.run();
