// A connection whose client sent FIN stops holding its auth key at once, not when the socket's 'close'
// comes (after this side's pending writes, a loop turn or more later on a busy emulator). A new owner of
// the key connecting in between was answered AUTH_KEY_DUPLICATED once in tests/cluster/rolling.e2e.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { MtprotoConnection } from './mtproto/connection.ts';
import type { MtprotoServer } from './mtproto/server.ts';

test('the client\'s FIN detaches the connection (and its key) before the socket closes', () => {
  // A socket whose destroy() does not close it yet, as when writes are still pending.
  const socket = Object.assign(new EventEmitter(), { setNoDelay: () => undefined, destroy: () => undefined });
  const detached: unknown[] = [];
  const server = { detach: (c: unknown) => detached.push(c) } as unknown as MtprotoServer;
  const conn = new MtprotoConnection(socket as unknown as Socket, server);
  socket.emit('end');
  assert.equal(detached, [conn]);
  socket.emit('close');
  assert.is(detached.length, 1, 'detached once');
});

test.run();
