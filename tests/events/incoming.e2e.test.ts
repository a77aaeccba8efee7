// Incoming messages end to end: the Telegram emulator pushes messages to an account while no client
// listens; every one is stored (listed with direction=in) and a socket opened with since=0 gets
// exactly their message.received events, then live ones; a supervisor restart repeats nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { readEvents } from '../../src/store/events.ts';
import { listMessages } from '../../src/store/messages.ts';
import { newPhone, startStack, until } from '../helpers/stack.ts';
import { closeWs, connectedEvents, eventsServer, frameCount } from './helpers.ts';

let emu: Emulator;
test.before(async () => { emu = await startEmulator(); });
test.after(async () => { await emu.stop(); });

const countIn = async (sql: Parameters<typeof listMessages>[0], owner: string) => {
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await listMessages(sql, owner, { limit: 100, direction: 'in', ...(cursor && { cursor }) });
    n += page.items.length;
    cursor = page.nextCursor;
  } while (cursor);
  return n;
};

test('300 incoming messages while nobody listens: all stored, then replayed to a socket with since=0, then live', async () => {
  const s = await startStack({ emu });
  const owner = `erin-${process.pid}`;
  try {
    const phone = newPhone();
    const { userId } = await s.emu.createUser({ phone });
    const c = await s.connections.create(owner, { platform: 'telegram', kind: 'user', method: 'phone', phone });
    assert.is((await s.connections.submitCode(owner, c.id, s.emu.lastCode(phone)!.code)).status, 'active');
    const friend = (await s.emu.createUser({ phone: newPhone(), firstName: 'Friend' })).userId;
    const n = 300;
    for (let i = 0; i < n; i++) s.emu.pushUpdate({ to: phone, fromUserId: friend, text: `offline ${i}` });
    await until(async () => (await countIn(s.db.sql, owner)) >= n, `${n} incoming stored`, 30_000);
    assert.is(await countIn(s.db.sql, owner), n);
    const stored = (await readEvents(s.db.sql, owner, { afterPos: 0, limit: 10_000, types: ['message.received'] }));
    assert.is(stored.length, n, 'one message.received per message');

    const srv = await eventsServer(s.db.sql);
    try {
      const { ws, frames } = await connectedEvents(`${srv.base}/v1/events?since=0`, owner);
      await until(() => frames.filter((f) => f.type === 'message.received').length >= n, 'replayed', 20_000);
      s.emu.pushUpdate({ to: phone, fromUserId: friend, text: 'live one' });
      await until(() => frames.some((f) => f.type === 'message.received' && f.data.text === 'live one'), 'live frame', 20_000);
      const received = frames.filter((f) => f.type === 'message.received');
      assert.is(received.length, n + 1);
      assert.equal(received.slice(0, n).map((f) => f.data.text), Array.from({ length: n }, (_, i) => `offline ${i}`));
      assert.is(new Set(frames.map((f) => f.id)).size, frames.length, 'no frame twice');
      const last = received.at(-1)!;
      assert.is(last.connectionId, c.id);
      assert.ok(last.data.messageId && last.data.platformMessageId && last.data.from);

      // A new supervisor on the same database: the account reconnects; nothing is stored or sent again.
      await closeWs(ws);
      await s.restart();
      await until(() => s.supervisor.actor(c.id)?.state === 'active', 'active again', 20_000);
      s.emu.pushUpdate({ to: phone, fromUserId: friend, text: 'after restart' });
      await until(async () => (await countIn(s.db.sql, owner)) >= n + 2, 'after-restart message stored', 20_000);
      const again = await connectedEvents(`${srv.base}/v1/events?since=${last.pos}`, owner);
      await frameCount(again.ws, again.frames, 1);
      const mine = again.frames.filter((f) => f.type === 'message.received');
      assert.equal(mine.map((f) => f.data.text), ['after restart']);
      assert.is(await countIn(s.db.sql, owner), n + 2);
      await closeWs(again.ws);
    } finally {
      await srv.stop();
    }
    void userId;
  } finally {
    await s.close();
  }
});

test.run();
