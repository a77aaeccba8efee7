import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, constants, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeBytes } from 'telegram/tl/generationHelpers.js';

// The emulator's own RSA-2048 server key. Generating one costs 0.1–1 s, so it is persisted under
// os.tmpdir() and shared by every emulator process on the machine. The private key lives in one
// file written by rename (atomic), so concurrent test processes never read a half-written or
// mismatched pair; the public PEM file is named by fingerprint so its content is fixed by its name.

export interface ServerKey {
  fingerprint: bigint;
  publicPemPath: string;
  /** Raw RSA (no padding), as MTProto's RSA_PAD sends it: 256 bytes in, 256 bytes out. */
  decrypt(data: Buffer): Buffer;
}

export function fingerprintOf(pub: KeyObject): bigint {
  const jwk = pub.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n!, 'base64url');
  const e = Buffer.from(jwk.e!, 'base64url');
  // Telegram: the lower 64 bits of SHA-1(TL bytes n, TL bytes e), read little-endian signed.
  const digest = createHash('sha1').update(Buffer.concat([serializeBytes(n), serializeBytes(e)])).digest();
  return digest.readBigInt64LE(12);
}

export function loadServerKey(dir = join(tmpdir(), 'integration-service-emulator')): ServerKey {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const privatePath = join(dir, 'server-key.pem');
  let privatePem: string;
  try {
    privatePem = readFileSync(privatePath, 'utf8');
  } catch {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
    const tmp = `${privatePath}.${process.pid}.tmp`;
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    renameSync(tmp, privatePath);
    privatePem = readFileSync(privatePath, 'utf8');
  }
  const priv = createPrivateKey(privatePem);
  const pub = createPublicKey(priv);
  const fingerprint = fingerprintOf(pub);
  const publicPemPath = join(dir, `server-key-${BigInt.asUintN(64, fingerprint).toString(16)}.pub.pem`);
  writeFileSync(publicPemPath, pub.export({ type: 'spki', format: 'pem' }));
  return {
    fingerprint,
    publicPemPath,
    decrypt: (data) => privateDecrypt({ key: priv, padding: constants.RSA_NO_PADDING }, data),
  };
}
