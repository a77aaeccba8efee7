import { gzipSync, gunzipSync, inflateSync } from 'node:zlib';
import { Api, helpers } from 'telegram';

// Server-side TL plumbing around GramJS's generated classes: GramJS serialises any Api object with
// getBytes() and parses requests with BinaryReader.tgReadObject(); what a client never builds
// (rpc_result, msg_container, vectors as results, gzip from the server) is written here.

export const ID = {
  msgContainer: 0x73f1f8dc,
  gzipPacked: 0x3072cfa1,
  rpcResult: 0xf35c6d01,
  vector: 0x1cb5c415,
  boolTrue: 0x997275b5,
  boolFalse: 0xbc799737,
  msgsAck: Api.MsgsAck.CONSTRUCTOR_ID,
  ping: Api.Ping.CONSTRUCTOR_ID,
  pingDelayDisconnect: Api.PingDelayDisconnect.CONSTRUCTOR_ID,
  getFutureSalts: Api.GetFutureSalts.CONSTRUCTOR_ID,
  destroySession: Api.DestroySession.CONSTRUCTOR_ID,
  msgsStateReq: Api.MsgsStateReq.CONSTRUCTOR_ID,
} as const;

/** GramJS's long/int128/int256 type (big-integer). */
export type Big = ReturnType<typeof helpers.returnBigInt>;
export const big = (n: bigint | number): Big => helpers.returnBigInt(n);
// big-integer keeps a native bigint (or a small number) in `.value` when the runtime has BigInt: reading
// it directly skips a base-10 round trip that cost ~20% of the server's CPU per message.
export const native = (n: Big | bigint | number): bigint => {
  if (typeof n === 'bigint') return n;
  if (typeof n === 'number') return BigInt(n);
  const v = (n as unknown as { value: unknown }).value;
  return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : BigInt(n.toString());
};

export interface TlSerialisable { getBytes(): Buffer }
export type RpcAnswer = TlSerialisable | boolean | TlSerialisable[] | Buffer;

const u32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};

export function serialiseAnswer(value: RpcAnswer): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'boolean') return u32(value ? ID.boolTrue : ID.boolFalse);
  if (Array.isArray(value)) return Buffer.concat([u32(ID.vector), u32(value.length), ...value.map((v) => v.getBytes())]);
  return value.getBytes();
}

// Answers above this size go out gzip_packed, as Telegram does for big results (dialogs, config):
// below ~1 KiB compression does not pay for itself.
const GZIP_ABOVE = 1024;

export function rpcResult(reqMsgId: bigint, answer: Buffer): Buffer {
  let payload = answer;
  if (answer.length > GZIP_ABOVE) {
    const packed = gzipPacked(answer);
    if (packed.length < answer.length) payload = packed;
  }
  const out = Buffer.allocUnsafe(12 + payload.length);
  out.writeUInt32LE(ID.rpcResult, 0);
  out.writeBigInt64LE(reqMsgId, 4);
  payload.copy(out, 12);
  return out;
}

export function rpcError(code: number, message: string): Buffer {
  return new Api.RpcError({ errorCode: code, errorMessage: message }).getBytes();
}

export function gzipPacked(data: Buffer): Buffer {
  return Buffer.concat([u32(ID.gzipPacked), tlBytes(gzipSync(data))]);
}

/** Inflates a gzip_packed body (the constructor id already consumed by the caller at offset 0). */
export function unpackGzip(body: Buffer): Buffer {
  const { value } = readTlBytes(body, 4);
  // Telegram sends gzip; some clients send raw zlib. Accept both.
  return value[0] === 0x1f && value[1] === 0x8b ? gunzipSync(value) : inflateSync(value);
}

export function tlBytes(data: Buffer): Buffer {
  const head = data.length < 254 ? Buffer.from([data.length]) : Buffer.from([254, data.length & 0xff, (data.length >> 8) & 0xff, (data.length >> 16) & 0xff]);
  const padding = (4 - ((head.length + data.length) % 4)) % 4;
  return Buffer.concat([head, data, Buffer.alloc(padding)]);
}

export function readTlBytes(buf: Buffer, offset: number): { value: Buffer; next: number } {
  let len = buf[offset]!;
  let start = offset + 1;
  if (len === 254) {
    len = buf[offset + 1]! | (buf[offset + 2]! << 8) | (buf[offset + 3]! << 16);
    start = offset + 4;
  }
  const end = start + len;
  if (end > buf.length) throw new Error('TL bytes overrun');
  return { value: buf.subarray(start, end), next: end + ((4 - ((end - offset) % 4)) % 4) };
}

export interface OutMessage { msgId: bigint; seqNo: number; body: Buffer }

export function container(messages: OutMessage[]): Buffer {
  const size = 8 + messages.reduce((n, m) => n + 16 + m.body.length, 0);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32LE(ID.msgContainer, 0);
  out.writeInt32LE(messages.length, 4);
  let off = 8;
  for (const m of messages) {
    out.writeBigInt64LE(m.msgId, off);
    out.writeInt32LE(m.seqNo, off + 8);
    out.writeInt32LE(m.body.length, off + 12);
    m.body.copy(out, off + 16);
    off += 16 + m.body.length;
  }
  return out;
}

/** Splits a client's msg_container into its messages. */
export function parseContainer(body: Buffer): Array<{ msgId: bigint; seqNo: number; body: Buffer }> {
  const count = body.readInt32LE(4);
  const out = [];
  let off = 8;
  for (let i = 0; i < count; i++) {
    const len = body.readInt32LE(off + 12);
    if (off + 16 + len > body.length) throw new Error('container overrun');
    out.push({ msgId: body.readBigInt64LE(off), seqNo: body.readInt32LE(off + 8), body: body.subarray(off + 16, off + 16 + len) });
    off += 16 + len;
  }
  return out;
}
