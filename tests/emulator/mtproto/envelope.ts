import * as crypto from 'node:crypto';
import { igeDecrypt, igeEncrypt } from '../crypto/ige.ts';
import type { AuthKeyRec } from '../world/types.ts';

// MTProto 2.0 message encryption, server side (https://core.telegram.org/mtproto/description):
// msg_key = SHA256(auth_key[88+x .. 120+x] | plaintext | padding)[8..24], x = 0 from the client and
// 8 from the server; AES-256-IGE key/iv derived from msg_key and auth_key (MTProtoState._calcKey).

export interface Inbound { salt: bigint; sessionId: bigint; msgId: bigint; seqNo: number; body: Buffer }

// Six SHA-256 per packet (three each way). node's one-shot crypto.hash (20.12+, not yet in our
// @types/node) costs half of createHash().update().digest() and leaves no Hash object for the GC:
// the parts are copied into one reused buffer first.
const oneShot = (crypto as unknown as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer }).hash;
let joined = Buffer.allocUnsafe(4096);

function sha256(a: Buffer, b: Buffer): Buffer {
  if (!oneShot) return crypto.createHash('sha256').update(a).update(b).digest();
  const n = a.length + b.length;
  if (n > joined.length) joined = Buffer.allocUnsafe(2 * n);
  a.copy(joined, 0);
  b.copy(joined, a.length);
  return oneShot('sha256', joined.subarray(0, n), 'buffer');
}

export function keyIv(authKey: Buffer, msgKey: Buffer, x: 0 | 8): { key: Buffer; iv: Buffer } {
  const a = sha256(msgKey, authKey.subarray(x, x + 36));
  const b = sha256(authKey.subarray(40 + x, 76 + x), msgKey);
  // key = a[0..8] | b[8..24] | a[24..32], iv = b[0..8] | a[8..24] | b[24..32], in one allocation.
  const out = Buffer.allocUnsafe(64);
  a.copy(out, 0, 0, 8);
  b.copy(out, 8, 8, 24);
  a.copy(out, 24, 24, 32);
  b.copy(out, 32, 0, 8);
  a.copy(out, 40, 8, 24);
  b.copy(out, 56, 24, 32);
  return { key: out.subarray(0, 32), iv: out.subarray(32, 64) };
}

/** Decrypts a client packet (auth_key_id already matched); undefined when msg_key or lengths do not check out. */
export function decryptFromClient(rec: AuthKeyRec, packet: Buffer): Inbound | undefined {
  if (packet.length < 24 + 32 || (packet.length - 24) % 16 !== 0) return undefined;
  const msgKey = packet.subarray(8, 24);
  const { key, iv } = keyIv(rec.key, msgKey, 0);
  const plain = igeDecrypt(packet.subarray(24), key, iv);
  const expected = sha256(rec.key.subarray(88, 120), plain).subarray(8, 24);
  if (!expected.equals(msgKey)) return undefined;
  const len = plain.readInt32LE(28);
  const padding = plain.length - 32 - len;
  if (len < 4 || len % 4 !== 0 || padding < 12 || padding > 1024) return undefined;
  return {
    salt: plain.readBigInt64LE(0),
    sessionId: plain.readBigInt64LE(8),
    msgId: plain.readBigInt64LE(16),
    seqNo: plain.readInt32LE(24),
    body: plain.subarray(32, 32 + len),
  };
}

/** Encrypts one server message (msg_id, seq_no and body already chosen) for the client's session. */
export function encryptForClient(rec: AuthKeyRec, sessionId: bigint, msgId: bigint, seqNo: number, body: Buffer): Buffer {
  const headerLen = 32;
  const unpadded = headerLen + body.length;
  const padLen = 12 + ((16 - ((unpadded + 12) % 16)) % 16);
  const plain = Buffer.allocUnsafe(unpadded + padLen);
  plain.writeBigInt64LE(rec.salt, 0);
  plain.writeBigInt64LE(sessionId, 8);
  plain.writeBigInt64LE(msgId, 16);
  plain.writeInt32LE(seqNo, 24);
  plain.writeInt32LE(body.length, 28);
  body.copy(plain, headerLen);
  // Padding need not be random for the client to accept it, but Telegram's is; 12–27 bytes is cheap.
  for (let i = unpadded; i < plain.length; i++) plain[i] = (Math.random() * 256) | 0;
  const msgKey = sha256(rec.key.subarray(96, 128), plain).subarray(8, 24);
  const { key, iv } = keyIv(rec.key, msgKey, 8);
  const out = Buffer.allocUnsafe(24 + plain.length);
  out.writeBigUInt64LE(rec.id, 0);
  msgKey.copy(out, 8);
  igeEncrypt(plain, key, iv).copy(out, 24);
  return out;
}

let lastMsgId = 0n;

/**
 * Server msg_ids: unixtime·2^32 with sub-second bits, strictly increasing per process, ≡ 1 (mod 4)
 * for answers and ≡ 3 for messages the server sends on its own (MTProto's rule).
 */
export function serverMsgId(isAnswer: boolean): bigint {
  const now = BigInt(Date.now());
  let id = ((now / 1000n) << 32n) | (((now % 1000n) << 32n) / 1000n);
  id = (id & ~3n) | (isAnswer ? 1n : 3n);
  if (id <= lastMsgId) id = ((lastMsgId + 4n) & ~3n) | (isAnswer ? 1n : 3n);
  lastMsgId = id;
  return id;
}
