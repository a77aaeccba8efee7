import { createHash, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { DH_G, DH_PRIME, PRIME, fromBig, pad256, powG, powMod, toBig } from './mod-pow.ts';

// Telegram's 2FA: SRP-6a over the 2048-bit prime, with the password hashed as
// PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow (the same math as GramJS's
// Password.js, server side). The server only ever stores the verifier v = g^x, never the password.

const pbkdf2Async = promisify(pbkdf2);
const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

export interface SrpVerifier { salt1: Buffer; salt2: Buffer; verifier: Buffer }
export interface SrpChallenge { srpId: bigint; b: Buffer; B: Buffer }

const G_PAD = pad256(Buffer.from([DH_G]));
// k = H(p | g), fixed for the prime.
const K = toBig(sha256(DH_PRIME, G_PAD));

/** x = SH(SH(PH1(password)) ...) as in Password.js computeHash: 100 000 PBKDF2 rounds (~60 ms, off-thread). */
export async function passwordHash(salt1: Buffer, salt2: Buffer, password: string): Promise<Buffer> {
  const hash1 = sha256(salt1, Buffer.from(password, 'utf8'), salt1);
  const hash2 = sha256(salt2, hash1, salt2);
  const hash3 = await pbkdf2Async(hash2, salt1, 100_000, 64, 'sha512');
  return sha256(salt2, hash3, salt2);
}

export async function createVerifier(password: string): Promise<SrpVerifier> {
  // Telegram's salt1 is 8 server bytes plus 32 client bytes; salt2 is 16 bytes.
  const salt1 = randomBytes(40);
  const salt2 = randomBytes(16);
  const x = await passwordHash(salt1, salt2, password);
  return { salt1, salt2, verifier: powG(x) };
}

/** Server half of account.getPassword: B = k·v + g^b mod p. */
export function startChallenge(v: SrpVerifier): SrpChallenge {
  const b = randomBytes(256);
  const gb = toBig(powG(b));
  const B = fromBig((K * toBig(v.verifier) + gb) % PRIME);
  return { srpId: randomBytes(8).readBigInt64LE(0), b, B };
}

/** Server half of auth.checkPassword: recompute M1 from A and the stored verifier. */
export function checkProof(v: SrpVerifier, ch: SrpChallenge, A: Buffer, M1: Buffer): boolean {
  const a = toBig(A);
  if (a <= 1n || a >= PRIME - 1n || M1.length !== 32) return false;
  const aPad = pad256(A);
  const u = sha256(aPad, ch.B);
  // S = (A · v^u)^b mod p
  const vu = toBig(powMod(v.verifier, u));
  const base = fromBig((a * vu) % PRIME);
  let S: Buffer;
  try {
    S = powMod(base, ch.b);
  } catch {
    return false;
  }
  const pg = xor(sha256(DH_PRIME), sha256(G_PAD));
  const expected = sha256(pg, sha256(v.salt1), sha256(v.salt2), aPad, ch.B, sha256(S));
  return timingSafeEqual(expected, M1);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
