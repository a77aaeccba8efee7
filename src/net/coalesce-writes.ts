import type { Socket } from 'node:net';
import type { Connection } from 'rabbitmq-client';

// One write syscall per loop turn instead of one per frame. The first write of a turn corks the
// socket and an immediate (the check phase, after this turn's I/O callbacks and microtasks) uncorks
// it: everything written meanwhile leaves in one writev. Measured on bench:send (issue 18) before
// this: 5 socket writes per sent message to RabbitMQ (the publish, three status events to the
// events exchange, the ack) and 3 to a live-event WebSocket (one per status event), each a write
// syscall of its own; the daemon's main thread spent ~9 % of its time in writeBuffer/writev.
// Cork counts nest, so a library's own cork()/uncork() around a frame does not flush early, and
// end() flushes whatever is corked. A write is delayed by at most the rest of the current turn.

const coalesced = new WeakSet<Socket>();

export function coalesceWrites(socket: Socket): void {
  if (coalesced.has(socket)) return;
  coalesced.add(socket);
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function coalescedWrite(this: Socket, ...args: unknown[]) {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    return (write as (...a: unknown[]) => boolean).apply(socket, args);
  } as Socket['write'];
}

/**
 * The same for every socket a rabbitmq-client Connection opens (it opens a new one on each
 * reconnect). The socket is the client's internal `_socket` (rabbitmq-client 5.0.8); without it
 * (another version) nothing changes but the write count.
 */
export function coalesceAmqpWrites(connection: Connection): void {
  const current = () => (connection as unknown as { _socket?: Socket })._socket;
  const apply = () => {
    const s = current();
    if (s && typeof s.cork === 'function') coalesceWrites(s);
  };
  apply();
  connection.on('connection', apply);
}
