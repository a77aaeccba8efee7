import { createCipheriv, createDecipheriv } from 'node:crypto';

// AES-256-IGE as MTProto uses it, built on node's native AES-ECB. IGE chains every block on the
// previous plaintext and ciphertext, so it cannot be handed to OpenSSL in one call: one native
// `update()` per 16-byte block (~0.5 µs each) is still far cheaper than a pure-JS AES.
// iv[0..16] is the "previous ciphertext" of block 0, iv[16..32] the "previous plaintext".

const BLOCK = 16;

export function igeEncrypt(plain: Buffer, key: Buffer, iv: Buffer): Buffer {
  if (plain.length % BLOCK !== 0) throw new Error(`IGE input must be a multiple of 16 bytes, got ${plain.length}`);
  const cipher = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
  const out = Buffer.allocUnsafe(plain.length);
  const block = Buffer.allocUnsafe(BLOCK);
  let prevCipher = iv.subarray(0, BLOCK);
  let prevPlain = iv.subarray(BLOCK, 2 * BLOCK);
  for (let off = 0; off < plain.length; off += BLOCK) {
    for (let j = 0; j < BLOCK; j++) block[j] = plain[off + j]! ^ prevCipher[j]!;
    const enc = cipher.update(block);
    for (let j = 0; j < BLOCK; j++) out[off + j] = enc[j]! ^ prevPlain[j]!;
    prevPlain = plain.subarray(off, off + BLOCK);
    prevCipher = out.subarray(off, off + BLOCK);
  }
  return out;
}

export function igeDecrypt(data: Buffer, key: Buffer, iv: Buffer): Buffer {
  if (data.length % BLOCK !== 0) throw new Error(`IGE input must be a multiple of 16 bytes, got ${data.length}`);
  const decipher = createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false);
  const out = Buffer.allocUnsafe(data.length);
  const block = Buffer.allocUnsafe(BLOCK);
  let prevCipher = iv.subarray(0, BLOCK);
  let prevPlain = iv.subarray(BLOCK, 2 * BLOCK);
  for (let off = 0; off < data.length; off += BLOCK) {
    for (let j = 0; j < BLOCK; j++) block[j] = data[off + j]! ^ prevPlain[j]!;
    const dec = decipher.update(block);
    for (let j = 0; j < BLOCK; j++) out[off + j] = dec[j]! ^ prevCipher[j]!;
    prevCipher = data.subarray(off, off + BLOCK);
    prevPlain = out.subarray(off, off + BLOCK);
  }
  return out;
}
