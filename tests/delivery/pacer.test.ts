import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pacer, type PaceTarget } from '../../src/delivery/pacer.ts';
import type { Priority } from '../../src/delivery/types.ts';
import { FakeClock, flush } from './fake-clock.ts';
import { telegramCapabilities } from './fixtures.ts';

// Telegram's published limits as its adapter declares them: 1/s per chat, 20/min per group, 30/s per bot.
const telegram = telegramCapabilities();
const windowsOf = (kind: 'user' | 'bot', chat: string) => telegram('telegram', kind)!.pacing(chat);

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

const target = (clock: FakeClock, id: string, chat: string, o: Partial<PaceTarget> & { kind?: 'user' | 'bot' } = {}): PaceTarget => {
  const { kind = 'user', ...rest } = o;
  return { id, connectionId: 'c1', chat, windows: windowsOf(kind, chat), priority: 'normal', createdAt: clock.now(), ...rest };
};

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

// WhatsApp's pair limit as its adapter declares it (45 per 270 s per customer) under its number's 80/s.
test('a burst into a chat whose window allows 45 is not spread at the average rate when the connection window is full', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = driver(pacer, clock);
  const windows = { chat: [{ n: 45, ms: 270_000 }], connection: [{ n: 80, ms: 1000 }] };
  const start = clock.now();
  // 500 messages to 50 customers (10 each) at once: the number's 80/s is the only limit that binds.
  const tasks = Array.from({ length: 500 }, (_, i) => d.run({ id: `m${i}`, connectionId: 'wa', chat: `c${i % 50}`, windows, priority: 'normal', createdAt: start }));
  await flush();
  await clock.advance(120_000, 50);
  await Promise.all(tasks);
  assert.is(d.sent.length, 500);
  // 500 at 80 per second (+ the 50 ms margin) is about 6.3 s; spaced at 270 s / 45 = 6 s per message
  // per customer, the 10th of each customer went 54 s after the first.
  const last = Math.max(...d.sent.map((s) => s.at)) - start;
  assert.ok(last <= 8000, `last message at +${last} ms`);
  for (let i = 80; i < d.sent.length; i++) {
    assert.ok(d.sent[i]!.at - d.sent[i - 80]!.at >= 1000, `81 calls within 1 s at ${i}`);
  }
  const perChat = new Map<string, number>();
  for (const s of d.sent) perChat.set(s.chat, (perChat.get(s.chat) ?? 0) + 1);
  assert.ok([...perChat.values()].every((n) => n === 10));
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
  for (let i = 20; i < 30; i++) assert.ok(d.sent[i]!.at - d.sent[i - 20]!.at >= 60_000, `window at ${i}: ${d.sent.map((s) => s.at - d.sent[0]!.at).join(',')}`);
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

// The consumer's real path: slot → `lag` (marking the row `sending`, a lagging event loop) → call
// gate → the call leaves → its answer comes back `rtt` later. Telegram saw each call somewhere
// between leaving and answering, so the check takes the worst case of that.
function callDriver(pacer: Pacer, clock: FakeClock) {
  const calls: { id: string; chat: string; at: number; answer: number }[] = [];
  const run = async (t: PaceTarget, lagMs: number, rttMs: number) => {
    for (;;) {
      const d = await pacer.acquire(t);
      if (!d.go) {
        await clock.sleep(d.until - clock.now());
        continue;
      }
      if (lagMs > 0) await clock.sleep(lagMs);
      const call = await pacer.beforeCall(t);
      if (!call.go) {
        await clock.sleep(call.until - clock.now());
        continue;
      }
      const c = { id: t.id, chat: t.chat, at: clock.now(), answer: Infinity };
      calls.push(c);
      if (rttMs > 0) await clock.sleep(rttMs);
      c.answer = clock.now();
      call.done();
      return;
    }
  };
  return { calls, run };
}

/** Largest number of calls Telegram may have counted in one window (n calls in windowMs), worst case. */
function worstInWindow(calls: { at: number; answer: number }[], windowMs: number): number {
  let worst = 0;
  for (const c of calls) {
    // every call that left no later than c and whose answer came back less than windowMs before c left
    const n = calls.filter((o) => o.at <= c.at && o.answer + windowMs > c.at).length;
    worst = Math.max(worst, n);
  }
  return worst;
}

test('call gate: a slot taken at t whose call leaves at t+600 holds the next call until that answer + 1 s', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = callDriver(pacer, clock);
  const t0 = clock.now();
  const a = d.run(target(clock, 'a', '1'), 600, 20);
  await flush();
  const b = d.run(target(clock, 'b', '1'), 0, 20); // its slot comes 1.05 s after a's, with no lag
  await flush();
  await clock.advance(5000, 10);
  await Promise.all([a, b]);
  const [ca, cb] = d.calls;
  assert.is(ca!.id, 'a');
  assert.is(ca!.at - t0, 600);
  // Without the gate b's call left at its slot, t+1050: 450 ms after a's call reached Telegram.
  assert.ok(cb!.at >= t0 + 600 + 1000, `b left at +${cb!.at - t0} ms`);
  assert.ok(cb!.at - ca!.answer >= 1000, `b left ${cb!.at - ca!.answer} ms after a's answer`);
});

test('call gate: a burst of 50 with lag and slow answers never puts two calls to one chat within 1 s', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const d = callDriver(pacer, clock);
  const start = clock.now();
  // lag 0–780 ms and answers 0–290 ms, varying per message (deterministic)
  const tasks = Array.from({ length: 50 }, (_, i) => d.run(target(clock, `a${i}`, '100'), ((i * 7) % 40) * 20, ((i * 13) % 30) * 10));
  await flush();
  await clock.advance(120_000, 10);
  await Promise.all(tasks);
  assert.is(d.calls.length, 50);
  assert.is(worstInWindow(d.calls, 1000), 1);
  // No time wasted: each call leaves at most 1.05 s + its own lag (≤ 780 ms) + a clock step after
  // the previous answer. (Slots follow answers, so the lag is not hidden: ≈ 1/(1.05 s + rtt + lag).)
  assert.ok(d.calls[0]!.at - start <= 800);
  for (let i = 1; i < 50; i++) {
    const gap = d.calls[i]!.at - d.calls[i - 1]!.answer;
    assert.ok(gap <= 1050 + 780 + 20, `call ${i} left ${gap} ms after the previous answer`);
  }
});

test('call gate: group chats stay within 20 per minute and bots within 30 per second under lag', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock });
  const g = callDriver(pacer, clock);
  const tasks = Array.from({ length: 45 }, (_, i) => g.run(target(clock, `g${i}`, '-100123'), ((i * 7) % 40) * 20, ((i * 11) % 30) * 10));
  const b = callDriver(pacer, clock);
  tasks.push(...Array.from({ length: 120 }, (_, i) => b.run(target(clock, `m${i}`, String(1000 + i), { connectionId: 'bot1', kind: 'bot' }), ((i * 7) % 40) * 20, ((i * 3) % 20) * 10)));
  await flush();
  await clock.advance(200_000, 10);
  await Promise.all(tasks);
  assert.is(g.calls.length, 45);
  assert.ok(worstInWindow(g.calls, 60_000) <= 20, `group window ${worstInWindow(g.calls, 60_000)}`);
  assert.is(b.calls.length, 120);
  assert.ok(worstInWindow(b.calls, 1000) <= 30, `bot window ${worstInWindow(b.calls, 1000)}`);
});

test('call gate: a call without an answer holds the next one for callHoldMs at most; an abort lets it go at once', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock, callHoldMs: 3000 });
  const t0 = clock.now();
  const gate = async (id: string, signal?: AbortSignal) => {
    const call = await pacer.beforeCall(target(clock, id, '1'), signal);
    assert.ok(call.go);
    return call.done;
  };
  const hung = await gate('h'); // never answered (yet)
  let left = 0;
  const next = gate('n').then((done) => { left = clock.now(); return done; });
  await flush();
  await clock.advance(2900, 100);
  assert.is(left, 0, 'held while the first call is unanswered');
  await clock.advance(200, 100);
  assert.is(left - t0, 3000);
  const ac = new AbortController();
  let aborted = 0;
  const third = gate('x', ac.signal).then((done) => { aborted = clock.now(); return done; });
  await flush();
  ac.abort();
  await flush();
  assert.is(aborted, clock.now());
  hung();
  hung(); // a second call is ignored
  (await next)();
  (await third)();
});

test('call gate: a flood wait that came in after the slot holds the call, or defers it when longer than the hold', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock, callHoldMs: 3000 });
  const t0 = clock.now();
  // x's slot is taken; before its call leaves, the chat's previous message got FLOOD_WAIT_2.
  assert.ok((await pacer.acquire(target(clock, 'x', '1'))).go);
  pacer.pause(target(clock, 'prev', '1'), 2, 'chat');
  let left = 0;
  const x = pacer.beforeCall(target(clock, 'x', '1')).then((c) => { left = clock.now(); return c; });
  await flush();
  await clock.advance(3000, 100);
  const cx = await x;
  assert.ok(cx.go);
  assert.ok(left - t0 >= 2000, `x left at +${left - t0} ms, inside the flood wait`);
  cx.done();
  // A 30 s flood wait is not held in memory: the message comes back after it (and after prev).
  pacer.pause(target(clock, 'prev2', '1'), 30, 'chat');
  const cy = await pacer.beforeCall(target(clock, 'y', '1'));
  assert.ok(!cy.go && cy.until >= clock.now() + 30_000, JSON.stringify(cy));
});

test('call gate: memory stays bounded and finished chats are dropped when idle', async () => {
  const clock = new FakeClock();
  const pacer = new Pacer({ clock, idleMs: 60_000 });
  const d = callDriver(pacer, clock);
  const tasks = Array.from({ length: 200 }, (_, i) => d.run(target(clock, `i${i}`, String(i % 20), { kind: 'bot' }), 0, 10));
  await flush();
  await clock.advance(30_000, 10);
  await Promise.all(tasks);
  assert.is(d.calls.length, 200);
  assert.is(pacer.size().buckets, 21);
  await clock.advance(61_000, 1000);
  await d.run(target(clock, 'late', 'x'), 0, 0);
  assert.is(pacer.size().buckets, 2);
});

test.run();
