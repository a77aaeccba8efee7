// AES-256-IGE as MTProto uses it. IGE chains every block on the previous plaintext and ciphertext,
// so OpenSSL cannot take a packet in one call, and one native `update()` per 16-byte block cost
// ~0.7 µs plus a Buffer each (a 1 KiB packet: ~70 µs, a third of the DC's CPU per request with the
// garbage it left). This is the table-driven AES of OpenSSL/SJCL (as in @cryptography/aes, which
// GramJS uses) run word by word with no allocation per block: the same 1 KiB in ~12 µs.
// iv[0..16] is the "previous ciphertext" of block 0, iv[16..32] the "previous plaintext".

const BLOCK = 16;
const ROUNDS = 14; // AES-256
const KEY_WORDS = 4 * (ROUNDS + 1);

// S-box, inverse S-box and the round tables (SubBytes+ShiftRows+MixColumns folded into lookups).
const S = new Uint8Array(256);
const Si = new Uint8Array(256);
const E0 = new Uint32Array(256), E1 = new Uint32Array(256), E2 = new Uint32Array(256), E3 = new Uint32Array(256);
const D0 = new Uint32Array(256), D1 = new Uint32Array(256), D2 = new Uint32Array(256), D3 = new Uint32Array(256);
{
  const dbl = new Uint8Array(256);
  const third = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    dbl[i] = (i << 1) ^ ((i >> 7) * 283);
    third[dbl[i]! ^ i] = i;
  }
  let x2: number | undefined;
  let xInv = 0;
  for (let x = 0; !S[x]; x ^= x2 || 1) {
    let s = xInv ^ (xInv << 1) ^ (xInv << 2) ^ (xInv << 3) ^ (xInv << 4);
    s = (s >> 8) ^ (s & 255) ^ 99;
    S[x] = s;
    Si[s] = x;
    x2 = dbl[x]!;
    const x4 = dbl[x2]!;
    const x8 = dbl[x4]!;
    let dec = (x8 * 0x1010101) ^ (x4 * 0x10001) ^ (x2 * 0x101) ^ (x * 0x1010100);
    let enc = (dbl[s]! * 0x101) ^ (s * 0x1010100);
    E0[x] = enc = (enc << 24) ^ (enc >>> 8);
    E1[x] = enc = (enc << 24) ^ (enc >>> 8);
    E2[x] = enc = (enc << 24) ^ (enc >>> 8);
    E3[x] = (enc << 24) ^ (enc >>> 8);
    D0[s] = dec = (dec << 24) ^ (dec >>> 8);
    D1[s] = dec = (dec << 24) ^ (dec >>> 8);
    D2[s] = dec = (dec << 24) ^ (dec >>> 8);
    D3[s] = (dec << 24) ^ (dec >>> 8);
    xInv = third[xInv] || 1;
  }
}

const subWord = (w: number): number => (S[w >>> 24]! << 24) ^ (S[(w >> 16) & 255]! << 16) ^ (S[(w >> 8) & 255]! << 8) ^ S[w & 255]!;

// Key schedules are rebuilt per packet (every packet has its own key) into these two arrays: the
// functions below run to completion, and a typed array allocated per packet was measurable garbage.
const encKey = new Uint32Array(KEY_WORDS);
const decKey = new Uint32Array(KEY_WORDS);

function encryptionKey(key: Buffer): Uint32Array {
  const k = encKey;
  for (let i = 0; i < 8; i++) k[i] = key.readUInt32BE(i * 4);
  let rcon = 1;
  for (let i = 8; i < KEY_WORDS; i++) {
    let t = k[i - 1]!;
    if (i % 8 === 0) {
      t = subWord(t);
      t = (t << 8) ^ (t >>> 24) ^ (rcon << 24);
      rcon = (rcon << 1) ^ ((rcon >> 7) * 283);
    } else if (i % 8 === 4) {
      t = subWord(t);
    }
    k[i] = k[i - 8]! ^ t;
  }
  return k;
}

function decryptionKey(key: Buffer): Uint32Array {
  const e = encryptionKey(key);
  const d = decKey;
  for (let j = 0, i = KEY_WORDS; i; j++, i--) {
    const t = e[j & 3 ? i : i - 4]!;
    d[j] = i <= 4 || j < 4 ? t : D0[S[t >>> 24]!]! ^ D1[S[(t >> 16) & 255]!]! ^ D2[S[(t >> 8) & 255]!]! ^ D3[S[t & 255]!]!;
  }
  return d;
}

// One block's result, reused: returning four words without an allocation.
const out4 = new Uint32Array(4);

function encryptBlock(k: Uint32Array, a: number, b: number, c: number, d: number): void {
  a ^= k[0]!; b ^= k[1]!; c ^= k[2]!; d ^= k[3]!;
  let p = 4;
  for (let r = 1; r < ROUNDS; r++, p += 4) {
    const a2 = E0[a >>> 24]! ^ E1[(b >> 16) & 255]! ^ E2[(c >> 8) & 255]! ^ E3[d & 255]! ^ k[p]!;
    const b2 = E0[b >>> 24]! ^ E1[(c >> 16) & 255]! ^ E2[(d >> 8) & 255]! ^ E3[a & 255]! ^ k[p + 1]!;
    const c2 = E0[c >>> 24]! ^ E1[(d >> 16) & 255]! ^ E2[(a >> 8) & 255]! ^ E3[b & 255]! ^ k[p + 2]!;
    d = E0[d >>> 24]! ^ E1[(a >> 16) & 255]! ^ E2[(b >> 8) & 255]! ^ E3[c & 255]! ^ k[p + 3]!;
    a = a2; b = b2; c = c2;
  }
  out4[0] = (S[a >>> 24]! << 24) ^ (S[(b >> 16) & 255]! << 16) ^ (S[(c >> 8) & 255]! << 8) ^ S[d & 255]! ^ k[p]!;
  out4[1] = (S[b >>> 24]! << 24) ^ (S[(c >> 16) & 255]! << 16) ^ (S[(d >> 8) & 255]! << 8) ^ S[a & 255]! ^ k[p + 1]!;
  out4[2] = (S[c >>> 24]! << 24) ^ (S[(d >> 16) & 255]! << 16) ^ (S[(a >> 8) & 255]! << 8) ^ S[b & 255]! ^ k[p + 2]!;
  out4[3] = (S[d >>> 24]! << 24) ^ (S[(a >> 16) & 255]! << 16) ^ (S[(b >> 8) & 255]! << 8) ^ S[c & 255]! ^ k[p + 3]!;
}

/** Inverse cipher with the equivalent decryption key; the words run in the order a, d, c, b. */
function decryptBlock(k: Uint32Array, w0: number, w1: number, w2: number, w3: number): void {
  let a = w0 ^ k[0]!;
  let b = w3 ^ k[1]!;
  let c = w2 ^ k[2]!;
  let d = w1 ^ k[3]!;
  let p = 4;
  for (let r = 1; r < ROUNDS; r++, p += 4) {
    const a2 = D0[a >>> 24]! ^ D1[(b >> 16) & 255]! ^ D2[(c >> 8) & 255]! ^ D3[d & 255]! ^ k[p]!;
    const b2 = D0[b >>> 24]! ^ D1[(c >> 16) & 255]! ^ D2[(d >> 8) & 255]! ^ D3[a & 255]! ^ k[p + 1]!;
    const c2 = D0[c >>> 24]! ^ D1[(d >> 16) & 255]! ^ D2[(a >> 8) & 255]! ^ D3[b & 255]! ^ k[p + 2]!;
    d = D0[d >>> 24]! ^ D1[(a >> 16) & 255]! ^ D2[(b >> 8) & 255]! ^ D3[c & 255]! ^ k[p + 3]!;
    a = a2; b = b2; c = c2;
  }
  out4[0] = (Si[a >>> 24]! << 24) ^ (Si[(b >> 16) & 255]! << 16) ^ (Si[(c >> 8) & 255]! << 8) ^ Si[d & 255]! ^ k[p]!;
  out4[3] = (Si[b >>> 24]! << 24) ^ (Si[(c >> 16) & 255]! << 16) ^ (Si[(d >> 8) & 255]! << 8) ^ Si[a & 255]! ^ k[p + 1]!;
  out4[2] = (Si[c >>> 24]! << 24) ^ (Si[(d >> 16) & 255]! << 16) ^ (Si[(a >> 8) & 255]! << 8) ^ Si[b & 255]! ^ k[p + 2]!;
  out4[1] = (Si[d >>> 24]! << 24) ^ (Si[(a >> 16) & 255]! << 16) ^ (Si[(b >> 8) & 255]! << 8) ^ Si[c & 255]! ^ k[p + 3]!;
}

function checkLength(n: number): void {
  if (n % BLOCK !== 0) throw new Error(`IGE input must be a multiple of 16 bytes, got ${n}`);
}

export function igeEncrypt(plain: Buffer, key: Buffer, iv: Buffer): Buffer {
  checkLength(plain.length);
  const k = encryptionKey(key);
  const out = Buffer.allocUnsafe(plain.length);
  let c0 = iv.readUInt32BE(0), c1 = iv.readUInt32BE(4), c2 = iv.readUInt32BE(8), c3 = iv.readUInt32BE(12);
  let p0 = iv.readUInt32BE(16), p1 = iv.readUInt32BE(20), p2 = iv.readUInt32BE(24), p3 = iv.readUInt32BE(28);
  for (let off = 0; off < plain.length; off += BLOCK) {
    const x0 = plain.readUInt32BE(off), x1 = plain.readUInt32BE(off + 4), x2 = plain.readUInt32BE(off + 8), x3 = plain.readUInt32BE(off + 12);
    encryptBlock(k, x0 ^ c0, x1 ^ c1, x2 ^ c2, x3 ^ c3);
    c0 = (out4[0]! ^ p0) >>> 0; c1 = (out4[1]! ^ p1) >>> 0; c2 = (out4[2]! ^ p2) >>> 0; c3 = (out4[3]! ^ p3) >>> 0;
    out.writeUInt32BE(c0, off); out.writeUInt32BE(c1, off + 4); out.writeUInt32BE(c2, off + 8); out.writeUInt32BE(c3, off + 12);
    p0 = x0; p1 = x1; p2 = x2; p3 = x3;
  }
  return out;
}

export function igeDecrypt(data: Buffer, key: Buffer, iv: Buffer): Buffer {
  checkLength(data.length);
  const k = decryptionKey(key);
  const out = Buffer.allocUnsafe(data.length);
  let c0 = iv.readUInt32BE(0), c1 = iv.readUInt32BE(4), c2 = iv.readUInt32BE(8), c3 = iv.readUInt32BE(12);
  let p0 = iv.readUInt32BE(16), p1 = iv.readUInt32BE(20), p2 = iv.readUInt32BE(24), p3 = iv.readUInt32BE(28);
  for (let off = 0; off < data.length; off += BLOCK) {
    const y0 = data.readUInt32BE(off), y1 = data.readUInt32BE(off + 4), y2 = data.readUInt32BE(off + 8), y3 = data.readUInt32BE(off + 12);
    decryptBlock(k, y0 ^ p0, y1 ^ p1, y2 ^ p2, y3 ^ p3);
    p0 = (out4[0]! ^ c0) >>> 0; p1 = (out4[1]! ^ c1) >>> 0; p2 = (out4[2]! ^ c2) >>> 0; p3 = (out4[3]! ^ c3) >>> 0;
    out.writeUInt32BE(p0, off); out.writeUInt32BE(p1, off + 4); out.writeUInt32BE(p2, off + 8); out.writeUInt32BE(p3, off + 12);
    c0 = y0; c1 = y1; c2 = y2; c3 = y3;
  }
  return out;
}
