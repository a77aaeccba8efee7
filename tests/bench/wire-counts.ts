// What the daemon puts on the wire, counted inside its own process (bench:send runs it in-process;
// the HTTP driver is a worker thread with its own `net`, so it is not counted here). Two layers:
// - socket operations per peer: write requests handed to libuv (each one write/writev syscall unless
//   the kernel's buffer is full; several write() calls between cork and uncork are one request) and
//   reads (one read syscall each, up to 64 KiB), so "where do the syscalls go" has an answer;
// - protocol units inside those streams: Postgres statements (Execute and simple Query messages) and
//   Syncs (one per pipeline flush, i.e. per round trip), RabbitMQ basic.publish / basic.ack / nack
//   written and basic.deliver / publisher confirms read, WebSocket data frames written.
// The parsers walk message headers only (5–14 bytes each) and skip bodies without copying them.
import net from 'node:net';

export type Peer = 'postgres' | 'rabbitmq' | 'api' | 'websocket' | 'other';

export interface WireCounts {
  writes: Record<Peer, number>;
  reads: Record<Peer, number>;
  pgStatements: number;
  pgSyncs: number;
  amqpPublishes: number;
  amqpAcks: number; // basic.ack frames from the daemon (one may ack many with multiple: true)
  amqpNacks: number; // basic.nack and basic.reject
  amqpDelivers: number;
  amqpConfirms: number; // basic.ack/nack frames from the broker (publisher confirms, possibly multiple)
  wsFrames: number;
}

interface Stream { skip: number; carry: Buffer; started: boolean }
interface State { peer: Peer; out: Stream; in: Stream }

const emptyStream = (): Stream => ({ skip: 0, carry: Buffer.alloc(0), started: false });
const zero = (): Record<Peer, number> => ({ postgres: 0, rabbitmq: 0, api: 0, websocket: 0, other: 0 });

/** Starts counting in this process; stop() restores the original socket methods. */
export function countWire(opts: { pgPort: number; amqpPort: number; apiPort: () => number | undefined }) {
  const counts: WireCounts = {
    writes: zero(), reads: zero(), pgStatements: 0, pgSyncs: 0, amqpPublishes: 0, amqpAcks: 0, amqpNacks: 0,
    amqpDelivers: 0, amqpConfirms: 0, wsFrames: 0,
  };
  const states = new WeakMap<net.Socket, State>();
  const stateOf = (s: net.Socket): State => {
    let st = states.get(s);
    if (!st) {
      const peer: Peer = s.remotePort === opts.pgPort ? 'postgres' : s.remotePort === opts.amqpPort ? 'rabbitmq'
        : s.localPort !== undefined && s.localPort === opts.apiPort() ? 'api' : 'other';
      st = { peer, out: emptyStream(), in: emptyStream() };
      states.set(s, st);
    }
    return st;
  };

  // Header parsers: the whole unit's length in bytes once enough of its header is there, else null.
  const pgFrontend = (h: Buffer, st: Stream): number | null => {
    if (!st.started) { // the startup message has no type byte (its length's first byte is 0)
      st.started = true;
      if (h[0] === 0) return h.length < 4 ? null : h.readUInt32BE(0);
    }
    if (h.length < 5) return null;
    const type = h[0]!;
    if (type === 0x45 || type === 0x51) counts.pgStatements++; // 'E' Execute, 'Q' Query
    else if (type === 0x53) counts.pgSyncs++; // 'S' Sync
    return 1 + h.readUInt32BE(1);
  };
  const amqp = (fromBroker: boolean) => (h: Buffer, st: Stream): number | null => {
    if (!st.started && !fromBroker) { // "AMQP" 0 0 9 1
      st.started = true;
      if (h[0] === 0x41) return 8;
    }
    if (h.length < 7) return null;
    const size = h.readUInt32BE(3);
    if (h[0] === 1 && size >= 4) { // a method frame: class id, method id
      if (h.length < 11) return null;
      const method = `${h.readUInt16BE(7)}.${h.readUInt16BE(9)}`;
      if (fromBroker) {
        if (method === '60.60') counts.amqpDelivers++;
        else if (method === '60.80' || method === '60.120') counts.amqpConfirms++;
      } else if (method === '60.40') counts.amqpPublishes++;
      else if (method === '60.80') counts.amqpAcks++;
      else if (method === '60.120' || method === '60.90') counts.amqpNacks++;
    }
    return 7 + size + 1;
  };
  const wsServer = (h: Buffer): number | null => {
    if (h.length < 2) return null;
    const opcode = h[0]! & 0x0f;
    const masked = (h[1]! & 0x80) !== 0 ? 4 : 0;
    let len = h[1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      if (h.length < 4) return null;
      len = h.readUInt16BE(2);
      head = 4;
    } else if (len === 127) {
      if (h.length < 10) return null;
      len = Number(h.readBigUInt64BE(2));
      head = 10;
    }
    if (opcode === 1 || opcode === 2) counts.wsFrames++;
    return head + masked + len;
  };

  const feed = (st: Stream, chunk: Buffer, parse: (h: Buffer, st: Stream) => number | null, maxHead: number) => {
    let off = 0;
    while (off < chunk.length) {
      if (st.skip > 0) {
        const n = Math.min(st.skip, chunk.length - off);
        st.skip -= n;
        off += n;
        continue;
      }
      const had = st.carry.length;
      const head = had ? Buffer.concat([st.carry, chunk.subarray(off, off + maxHead)]) : chunk.subarray(off, off + maxHead);
      const total = parse(head, st);
      if (total === null) {
        st.carry = Buffer.from(head);
        off += head.length - had;
        continue;
      }
      st.carry = Buffer.alloc(0);
      st.skip = total - had;
    }
  };

  const [amqpOut, amqpIn] = [amqp(false), amqp(true)];
  const onWrite = (s: net.Socket, chunk: unknown, encoding: string) => {
    const st = stateOf(s);
    // A connection opened before counting began (the bench's own pool) is not the daemon's: set aside.
    if ((st.peer === 'postgres' || st.peer === 'rabbitmq') && !st.out.started) {
      const first = Buffer.isBuffer(chunk) ? chunk[0] : undefined;
      if (first !== (st.peer === 'postgres' ? 0 : 0x41)) st.peer = 'other';
    }
    // ws writes a text frame's payload as the string itself: its bytes count like any other.
    const buf = Buffer.isBuffer(chunk) ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      : typeof chunk === 'string' && st.peer !== 'api' && st.peer !== 'other' ? Buffer.from(chunk, (encoding || 'utf8') as BufferEncoding) : undefined;
    if (st.peer === 'postgres' && buf) feed(st.out, buf, pgFrontend, 5);
    else if (st.peer === 'rabbitmq' && buf) feed(st.out, buf, amqpOut, 11);
    else if (st.peer === 'websocket' && buf) feed(st.out, buf, wsServer, 14);
    else if (st.peer === 'api') {
      // The handshake answer turns an API socket into a WebSocket: what follows are frames.
      const text = typeof chunk === 'string' ? chunk : buf?.subarray(0, 12).toString('latin1');
      if (text?.startsWith('HTTP/1.1 101')) st.peer = 'websocket';
    }
  };

  const proto = net.Socket.prototype as unknown as {
    _writeGeneric(this: net.Socket, writev: boolean, data: unknown, encoding: string, cb: unknown): unknown;
    push(this: net.Socket, chunk: unknown, encoding?: unknown): boolean;
  };
  const writeGeneric = proto._writeGeneric;
  const push = proto.push;
  proto._writeGeneric = function (writev, data, encoding, cb) {
    // While connecting, Node calls this again once connected: count that call only.
    if (!this.connecting) {
      if (writev) for (const c of data as ({ chunk: unknown; encoding: string } | Buffer)[]) onWrite(this, Buffer.isBuffer(c) ? c : c.chunk, Buffer.isBuffer(c) ? '' : c.encoding);
      else onWrite(this, data, encoding);
      counts.writes[stateOf(this).peer]++;
    }
    return writeGeneric.call(this, writev, data, encoding, cb);
  };
  proto.push = function (chunk, encoding) {
    if (Buffer.isBuffer(chunk)) {
      const st = stateOf(this);
      counts.reads[st.peer]++;
      if (st.peer === 'rabbitmq') feed(st.in, chunk, amqpIn, 11);
    }
    return push.call(this, chunk, encoding);
  };

  return {
    snapshot: (): WireCounts => ({ ...counts, writes: { ...counts.writes }, reads: { ...counts.reads } }),
    stop() {
      proto._writeGeneric = writeGeneric;
      proto.push = push;
    },
  };
}

/** b − a, field by field. */
export function wireDelta(a: WireCounts, b: WireCounts): WireCounts {
  const sub = (x: Record<Peer, number>, y: Record<Peer, number>) =>
    Object.fromEntries(Object.keys(x).map((k) => [k, y[k as Peer] - x[k as Peer]])) as Record<Peer, number>;
  return {
    writes: sub(a.writes, b.writes), reads: sub(a.reads, b.reads), pgStatements: b.pgStatements - a.pgStatements, pgSyncs: b.pgSyncs - a.pgSyncs,
    amqpPublishes: b.amqpPublishes - a.amqpPublishes, amqpAcks: b.amqpAcks - a.amqpAcks, amqpNacks: b.amqpNacks - a.amqpNacks,
    amqpDelivers: b.amqpDelivers - a.amqpDelivers, amqpConfirms: b.amqpConfirms - a.amqpConfirms, wsFrames: b.wsFrames - a.wsFrames,
  };
}
