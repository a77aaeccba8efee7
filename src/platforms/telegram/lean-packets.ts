import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';

// GramJS copies every outgoing MTProto message many times on its way to the socket; for a 512 KiB
// file part (upload.saveFilePart) that was about 15 copies of the part per send, the bulk of the
// daemon's memory churn in `bench:send -- --media 1mb`. These steps are rewritten here with the same
// bytes on the wire and fewer buffers:
// - GZIPPacked.gzipIfSmaller: GramJS 2.26's gzip is the identity (`Buffer.from(input)`), so the
//   "packed" form is always 4 + 4 bytes longer and never used; it was built (three copies) and thrown
//   away for every message. Checked at install: a compressible probe must come back unchanged, or the
//   original stays.
// - MTProtoState.encryptMessageData: salt, session id, body and padding in one buffer (the batch's own,
//   see MessagePacker.get), SHA-256 fed in pieces (no concatenation); AES-IGE by OpenSSL's AES-CBC and
//   XOR passes, not AES in JavaScript (36 → 6 ms of CPU per 512 KiB part here), its output the TCP frame.
// - FullPacketCodec.encodePacket: the TCP frame (length, counter, body, CRC32) completed in place when
//   the body came from encryptMessageData, else in one new buffer; the CRC by zlib instead of a
//   byte-at-a-time JavaScript loop.
// - upload.saveFilePart / saveBigFilePart getBytes: the request in one buffer; GramJS serialised the
//   part's `bytes` into a buffer of its own (length, bytes, padding) and then joined it to the other
//   fields, two copies of the part per request.
// - MessagePacker.get: the messages of a batch (and their container) written once, into a buffer with
//   room before and after them for the encryption's salt, session id and padding, which then writes
//   there instead of copying the batch again; GramJS joined the batch once, and a container three times.
// A 512 KiB part is now copied 3 times between the request and the socket (the request, the plaintext,
// the ciphertext frame), where it was 6 to 8 (`npm run bench:media-memory`).
// tests/platforms/telegram/lean-packets.test.ts compares each with GramJS's own output.

interface AuthKeyLike { waitForKey(): Promise<void>; getKey(): Buffer | undefined; keyId?: unknown }
interface StateLike { authKey?: AuthKeyLike; salt?: unknown; id?: unknown; _calcKey(authKey: Buffer, msgKey: Buffer, client: boolean): Promise<{ key: Buffer; iv: Buffer }> }
interface IgeWords { encrypt(plain: Uint8Array): Uint32Array }
interface Writer { write(b: Buffer): void }
interface RequestStateLike {
  data: Buffer; msgId?: unknown; containerId?: unknown; after?: { msgId?: unknown };
  request: { classType?: string; className?: string; constructor: { name: string } };
  promise: { reject(reason: unknown): void };
}
interface PackerLike {
  _queue: (RequestStateLike | undefined)[];
  _state: { writeDataAsMessage(w: Writer, data: Buffer, contentRelated: boolean, afterId?: unknown): Promise<unknown> };
  _log: { debug(m: string): void; warn(m: string): void };
}

const require = createRequire(import.meta.url);
const { MTProtoState } = require('telegram/network/MTProtoState.js') as { MTProtoState: { prototype: StateLike & { encryptMessageData(data: Buffer): Promise<Buffer> } } };
const { GZIPPacked } = require('telegram/tl/core/GZIPPacked.js') as { GZIPPacked: { gzipIfSmaller(contentRelated: boolean, data: Buffer): Promise<Buffer> } & { __lean?: true } };
const { FullPacketCodec } = require('telegram/network/connection/TCPFull.js') as { FullPacketCodec: { prototype: { _sendCounter: number; encodePacket(data: Buffer): Buffer } } };
const { IGE } = require('telegram/crypto/IGE.js') as { IGE: new (key: Buffer, iv: Buffer) => { ige: IgeWords } };
interface FilePartRequest { bytes: unknown; getBytes(): Buffer }
const { Api } = require('telegram/tl/index.js') as { Api: { upload: Record<'SaveFilePart' | 'SaveBigFilePart', { prototype: FilePartRequest }> } };
const { MessagePacker } = require('telegram/extensions/MessagePacker.js') as { MessagePacker: { prototype: { get(): Promise<{ batch: RequestStateLike[]; data: Buffer } | null | undefined> } } };
const { MessageContainer, TLMessage } = require('telegram/tl/core/index.js') as { MessageContainer: { CONSTRUCTOR_ID: number; MAXIMUM_SIZE: number; MAXIMUM_LENGTH: number }; TLMessage: { SIZE_OVERHEAD: number } };
const helpers = require('telegram/Helpers.js') as {
  generateRandomBytes(n: number): Buffer;
  toSignedLittleBuffer(big: unknown, n?: number): Buffer;
  readBufferFromBigInt(big: unknown, n: number, little?: boolean, signed?: boolean): Buffer;
};

/** The originals, for the test that compares outputs. */
export const original = {
  gzipIfSmaller: GZIPPacked.gzipIfSmaller,
  encryptMessageData: MTProtoState.prototype.encryptMessageData,
  encodePacket: FullPacketCodec.prototype.encodePacket,
  saveFilePartBytes: Api.upload.SaveFilePart.prototype.getBytes,
  saveBigFilePartBytes: Api.upload.SaveBigFilePart.prototype.getBytes,
  packerGet: MessagePacker.prototype.get,
};

// A batch from packerGet, to the whole buffer around it: the encryption's input (encryptFramed).
// A ciphertext from encryptMessageData, to its TCP frame (8 bytes before it, at least 4 after).
const plainRoom = new WeakMap<Buffer, Buffer>();
const frameRoom = new WeakMap<Buffer, Buffer>();
/** Before a batch: 32 bytes that become the frame's start (length, counter, auth_key_id, msg_key), the salt and session id. */
const PLAIN_HEAD = 32 + 16;
/** After it: the largest padding, and a block whose place becomes the frame's CRC. */
const PLAIN_TAIL = 27 + 16;

/** `inner` is a view of `whole` starting `head` bytes in, with at least `tail` bytes after it. */
const hasRoom = (whole: Buffer | undefined, inner: Buffer, head: number, tail: number): whole is Buffer =>
  whole !== undefined && whole.buffer === inner.buffer && inner.byteOffset === whole.byteOffset + head && whole.length >= head + inner.length + tail;

const noBytes = Buffer.alloc(0);

/**
 * getBytes of a request whose last field is `bytes:bytes`: GramJS's own serialisation of every other
 * field (the request with empty bytes, whose last 4 bytes are the empty field: a zero length and 3 of
 * padding), then the long form of TL bytes (core.telegram.org/mtproto/serialize: 254, a 3-byte length,
 * the bytes, zeros to a multiple of 4) written straight after it.
 */
function leanBytesLast(theirs: () => Buffer): (this: FilePartRequest) => Buffer {
  return function getBytes(this: FilePartRequest): Buffer {
    const data = this.bytes;
    if (!Buffer.isBuffer(data) || data.length < 254 || data.length >= 2 ** 24) return theirs.call(this);
    this.bytes = noBytes;
    let head: Buffer;
    try {
      head = theirs.call(this);
    } finally {
      this.bytes = data;
    }
    const at = head.length - 4;
    const out = Buffer.allocUnsafe(at + 4 + data.length + ((4 - (data.length % 4)) % 4));
    head.copy(out, 0, 0, at);
    out[at] = 254;
    out.writeUIntLE(data.length, at + 1, 3);
    data.copy(out, at + 4);
    out.fill(0, at + 4 + data.length);
    return out;
  };
}

/**
 * GramJS's MessagePacker.get (2.26.22) step for step — the same batch, msg_ids, seq_nos, container and
 * log lines — with the messages collected as pieces and written once into a buffer with room around.
 */
async function packerGet(this: PackerLike): Promise<{ batch: RequestStateLike[]; data: Buffer } | null | undefined> {
  if (!this._queue[this._queue.length - 1]) {
    this._queue = this._queue.filter(Boolean);
    return undefined;
  }
  const pieces: Buffer[] = [];
  const writer: Writer = { write: (b) => void pieces.push(b) };
  const batch: RequestStateLike[] = [];
  let size = 0;
  while (this._queue.length && batch.length <= MessageContainer.MAXIMUM_LENGTH) {
    const state = this._queue.shift();
    if (!state) continue;
    size += state.data.length + TLMessage.SIZE_OVERHEAD;
    if (size <= MessageContainer.MAXIMUM_SIZE) {
      state.msgId = await this._state.writeDataAsMessage(writer, state.data, state.request.classType === 'request', state.after ? state.after.msgId : undefined);
      this._log.debug(`Assigned msgId = ${state.msgId} to ${state.request.className || state.request.constructor.name}`);
      batch.push(state);
      continue;
    }
    if (batch.length) {
      this._queue.unshift(state);
      break;
    }
    this._log.warn(`Message payload for ${state.request.className || state.request.constructor.name} is too long ${state.data.length} and cannot be sent`);
    state.promise.reject('Request Payload is too big');
    size = 0;
  }
  if (!batch.length) return null;
  let length = 0;
  for (const p of pieces) length += p.length;
  if (batch.length > 1) {
    // The container is a message whose body is its constructor, the count, then the messages. GramJS
    // writes a message as a 16-byte header (msg_id, seq_no, body length) then the body: it is given the
    // 8-byte start of the body, and the length in the header is set to the whole body.
    const start = Buffer.alloc(8);
    start.writeUInt32LE(MessageContainer.CONSTRUCTOR_ID, 0);
    start.writeInt32LE(batch.length, 4);
    const outer: Buffer[] = [];
    const containerId = await this._state.writeDataAsMessage({ write: (b) => void outer.push(b) }, start, false);
    if (outer.length !== 2 || outer[0]!.length !== 16 || outer[1] !== start) throw new Error('lean-packets: GramJS wrote a message in an unknown layout');
    outer[0]!.writeInt32LE(start.length + length, 12);
    for (const s of batch) s.containerId = containerId;
    pieces.unshift(...outer);
    length += 16 + start.length;
  }
  const room = Buffer.allocUnsafe(PLAIN_HEAD + length + PLAIN_TAIL);
  let at = PLAIN_HEAD;
  for (const p of pieces) at += p.copy(room, at);
  const data = room.subarray(PLAIN_HEAD, at);
  plainRoom.set(data, room);
  return { batch, data };
}

const int32s = (b: Buffer) => new Int32Array(b.buffer, b.byteOffset, b.length >> 2);
const zeroBlock = Buffer.alloc(16);
/**
 * Below this the JavaScript AES is cheaper: OpenSSL costs three cipher contexts a message. Measured
 * here (encryptFramed against GramJS's IGE, µs a message): 64 bytes 44 vs 22, 256 bytes 35 vs 78,
 * 4096 bytes 74 vs 470. A text message is a few hundred bytes; a file part, 512 KiB.
 */
export const NATIVE_IGE_BYTES = 256;

/**
 * The TCP frame of an encrypted message: `whole` is 32 bytes, the plaintext (`n` bytes, a multiple of
 * 16), then 16 bytes; the answer is as long, with the AES-256-IGE ciphertext of the plaintext at 32.
 * The caller writes the frame's header, auth_key_id and msg_key before it and the CRC after it.
 *
 * By OpenSSL's AES-CBC instead of GramJS's AES in JavaScript (6 times the CPU, and two small word
 * arrays of garbage per 16-byte block), and CBC's output is the frame (no copy into one). IGE is
 * c_i = E(p_i ^ c_(i-1)) ^ p_(i-1), c_0 and p_0 the halves of the IV; CBC is y_i = E(q_i ^ y_(i-1)).
 * With q_1 = p_1 and q_i = p_i ^ p_(i-2), and y_0 = c_0, y_i = E(p_i ^ c_(i-1)) and c_i = y_i ^ p_(i-1).
 * y_0 = c_0 is CBC's output for the 2nd of the 2 blocks in front (zero IV, a zero block, then
 * D(c_0) ^ E(0)). q is made in place and p made back before the XOR into the output, so `whole`'s
 * plaintext is as it was on return. Words are XORed as 32-bit integers (byte order does not matter
 * to XOR); buffers not 4-byte aligned go the JavaScript way.
 */
export function encryptFramed(key: Buffer, iv: Buffer, whole: Buffer, n: number): Buffer {
  if (n < NATIVE_IGE_BYTES || whole.byteOffset % 4 !== 0 || n % 16 !== 0 || whole.length !== 32 + n + 16 || iv.length !== 32) {
    const frame = Buffer.allocUnsafe(whole.length);
    const words = new IGE(key, iv).ige.encrypt(whole.subarray(32, 32 + n));
    for (let i = 0; i < words.length; i++) frame.writeUInt32BE(words[i]!, 32 + i * 4);
    return frame;
  }
  const x = int32s(whole).subarray(8, 8 + n / 4);
  const p0 = int32s(Buffer.from(iv.subarray(16))); // a copy: aligned
  const m = x.length;
  for (let i = m - 1; i >= 8; i--) x[i]! ^= x[i - 8]!;
  for (let i = 4; i < 8 && i < m; i++) x[i]! ^= p0[i - 4]!;
  const e0 = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false).update(zeroBlock);
  const dc0 = createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false).update(iv.subarray(0, 16));
  whole.fill(0, 0, 16);
  for (let j = 0; j < 16; j++) whole[16 + j] = dc0[j]! ^ e0[j]!;
  whole.fill(0, 32 + n);
  let y = createCipheriv('aes-256-cbc', key, zeroBlock).setAutoPadding(false).update(whole);
  if (y.byteOffset % 4 !== 0) y = Buffer.from(y);
  for (let i = 4; i < 8 && i < m; i++) x[i]! ^= p0[i - 4]!;
  for (let i = 8; i < m; i++) x[i]! ^= x[i - 8]!;
  const c = int32s(y).subarray(8, 8 + m);
  for (let i = 0; i < 4 && i < m; i++) c[i]! ^= p0[i]!;
  for (let i = 4; i < m; i++) c[i]! ^= x[i - 4]!;
  return y;
}

async function encryptMessageData(this: StateLike, data: Buffer): Promise<Buffer> {
  if (!this.authKey) throw new Error('Auth key unset');
  await this.authKey.waitForKey();
  const authKey = this.authKey.getKey();
  if (!authKey) throw new Error('Auth key unset');
  if (!this.salt || !this.id || !this.authKey.keyId) throw new Error('Unset params');
  // core.telegram.org/mtproto/description: salt, session id, the message, 12 to 27 random bytes to a
  // multiple of 16; msg_key = SHA256(auth_key[88..120] + plaintext)[8..24].
  const padding = (((-(data.length + 16 + 12)) % 16) + 16) % 16 + 12;
  const n = 16 + data.length + padding;
  // The batch from packerGet has the room encryptFramed needs around it: no copy.
  const room = plainRoom.get(data);
  let whole: Buffer;
  if (hasRoom(room, data, PLAIN_HEAD, padding + 16)) {
    whole = room.subarray(0, 32 + n + 16);
  } else {
    whole = Buffer.allocUnsafe(32 + n + 16);
    data.copy(whole, PLAIN_HEAD);
  }
  const plain = whole.subarray(32, 32 + n);
  helpers.toSignedLittleBuffer(this.salt, 8).copy(plain, 0);
  helpers.toSignedLittleBuffer(this.id, 8).copy(plain, 8);
  helpers.generateRandomBytes(padding).copy(plain, 16 + data.length);
  const msgKey = createHash('sha256').update(authKey.subarray(88, 120)).update(plain).digest().subarray(8, 24);
  const { key, iv } = await this._calcKey(authKey, msgKey, true);
  // auth_key_id, msg_key, ciphertext, inside the TCP frame that encodePacket fills in.
  const frame = encryptFramed(key, iv, whole, n);
  const out = frame.subarray(8, 32 + n);
  helpers.readBufferFromBigInt(this.authKey.keyId, 8).copy(out, 0);
  msgKey.copy(out, 8);
  frameRoom.set(out, frame);
  return out;
}

function encodePacket(this: { _sendCounter: number }, data: Buffer): Buffer {
  const length = data.length + 12;
  // A ciphertext from encryptMessageData sits in its frame already: only the header and CRC to write.
  const room = frameRoom.get(data);
  let out: Buffer;
  if (hasRoom(room, data, 8, 4)) {
    out = room.subarray(0, length);
  } else {
    out = Buffer.allocUnsafe(length);
    data.copy(out, 8);
  }
  out.writeInt32LE(length, 0);
  out.writeInt32LE(this._sendCounter, 4);
  out.writeUInt32LE(crc32(out.subarray(0, length - 4)), length - 4);
  this._sendCounter += 1;
  return out;
}

async function install(): Promise<void> {
  if (GZIPPacked.__lean) return;
  const probe = Buffer.alloc(4096);
  const packed = await original.gzipIfSmaller(true, probe);
  if (packed === probe || packed.equals(probe)) GZIPPacked.gzipIfSmaller = async (_contentRelated, data) => data;
  MTProtoState.prototype.encryptMessageData = encryptMessageData;
  FullPacketCodec.prototype.encodePacket = encodePacket;
  Api.upload.SaveFilePart.prototype.getBytes = leanBytesLast(original.saveFilePartBytes);
  Api.upload.SaveBigFilePart.prototype.getBytes = leanBytesLast(original.saveBigFilePartBytes);
  MessagePacker.prototype.get = packerGet as never;
  GZIPPacked.__lean = true;
}

await install();
