import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { World } from './world/world.ts';
import { ManualClock } from './support/gramjs.ts';

// The World alone (no sockets): the bounded memories that keep a long benchmark flat — the
// random_id dedupe window and the delivered log — keep their rules at their edges.

async function world(opts: ConstructorParameters<typeof World>[0] = {}) {
  const clock = new ManualClock();
  const w = new World({ clock, ...opts });
  const from = await w.createUser({ phone: '+447700100001' });
  const to = await w.createUser({ phone: '+447700100002' });
  // One second between sends: the per-chat pacing (1 msg/s) never refuses.
  const send = (text: string, randomId: string | null) => {
    clock.advance(1000);
    return w.send(from, { type: 'user', id: to.id }, text, randomId);
  };
  return { w, send };
}

test('random_id dedupe remembers the newest maxRandomIds, forgetting the oldest first', async () => {
  const { w, send } = await world({ maxRandomIds: 3 });
  const first = send('a', '1').message;
  send('b', '2');
  send('c', '3');
  assert.ok(send('a again', '1').duplicate, 'still remembered: 3 ids fit');
  assert.is(send('a again', '1').message, first);
  send('d', '4'); // pushes 1 out
  assert.not.ok(send('e', '1').duplicate, 'the oldest id is forgotten and delivered anew');
  assert.ok(send('d again', '4').duplicate);
  assert.ok(send('c again', '3').duplicate, 'newer ids survive the eviction');
  assert.is(w.counters.delivered, 5);
  assert.equal(w.delivered().map((m) => m.text), ['a', 'b', 'c', 'd', 'e']);
});

test('the delivered log shows exactly the newest maxMessages while it trims in chunks', async () => {
  const { w, send } = await world({ maxMessages: 10 });
  for (let i = 0; i < 37; i++) {
    send(`m${i}`, String(i));
    const shown = w.delivered();
    assert.is(shown.length, Math.min(10, i + 1));
    assert.is(shown[shown.length - 1]!.text, `m${i}`);
  }
  assert.equal(w.delivered().map((m) => m.text), Array.from({ length: 10 }, (_, i) => `m${27 + i}`));
  assert.is(w.counters.delivered, 37);
});

test.run();
