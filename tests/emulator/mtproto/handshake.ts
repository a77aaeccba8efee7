import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Api, helpers } from 'telegram';
import { ServerReader } from './reader.ts';
import { igeDecrypt, igeEncrypt } from '../crypto/ige.ts';
import { DH_G, DH_PRIME, powG, powMod } from '../crypto/mod-pow.ts';
import type { ServerKey } from '../crypto/server-keys.ts';
import { big, native, type Big } from './tl.ts';

// The server half of MTProto's auth key exchange (https://core.telegram.org/mtproto/auth_key), over
// unencrypted messages: req_pq_multi → resPQ, req_DH_params (RSA_PAD) → server_DH_params_ok,
// set_client_DH_params → dh_gen_ok. Produces the 2048-bit auth key both sides now share.

const sha1 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha1')).digest();
const sha256 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();

interface Pending { nonce: Big; serverNonce: Big; pq: bigint; newNonce?: Big; a?: Buffer; key?: Buffer; iv?: Buffer }

export type HandshakeStep = { reply: TlObject } | { reply: TlObject; authKey: Buffer } | { error: string };
interface TlObject { getBytes(): Buffer }

// pq is a product of two 31-bit primes, like Telegram's ~63-bit pq: GramJS factorises it in a few ms.
function randomPrime(): bigint {
  for (;;) {
    const n = randomInt(1 << 30, 2 ** 31 - 1) | 1;
    let prime = true;
    for (let d = 3; d * d <= n; d += 2) if (n % d === 0) { prime = false; break; }
    if (prime) return BigInt(n);
  }
}

export class Handshake {
  private state?: Pending;

  constructor(private readonly serverKey: ServerKey) {}

  handle(request: unknown): HandshakeStep {
    if (request instanceof Api.ReqPqMulti || request instanceof Api.ReqPq) return this.resPq(request.nonce);
    if (request instanceof Api.ReqDHParams) return this.dhParams(request);
    if (request instanceof Api.SetClientDHParams) return this.clientDh(request);
    return { error: `unexpected plain message ${(request as { className?: string })?.className}` };
  }

  private resPq(nonce: Big): HandshakeStep {
    let p = randomPrime();
    let q = randomPrime();
    if (p > q) [p, q] = [q, p];
    const serverNonce = helpers.readBigIntFromBuffer(randomBytes(16), true, true);
    this.state = { nonce, serverNonce, pq: p * q };
    const pqBytes = Buffer.alloc(8);
    pqBytes.writeBigUInt64BE(p * q);
    return {
      reply: new Api.ResPQ({
        nonce, serverNonce, pq: pqBytes.subarray(pqBytes.findIndex((b) => b !== 0)),
        serverPublicKeyFingerprints: [big(this.serverKey.fingerprint)],
      }),
    };
  }

  private dhParams(req: Api.ReqDHParams): HandshakeStep {
    const s = this.state;
    if (!s || !req.nonce.eq(s.nonce) || !req.serverNonce.eq(s.serverNonce)) return { error: 'req_DH_params nonce mismatch' };
    if (native(req.publicKeyFingerprint) !== this.serverKey.fingerprint) return { error: 'unknown RSA fingerprint' };
    if (BigInt(`0x${req.p.toString('hex')}`) * BigInt(`0x${req.q.toString('hex')}`) !== s.pq) return { error: 'wrong p, q' };
    // RSA_PAD: temp_key_xor(32) | aes_encrypted(224) = RSA(...); data_with_hash = AES-IGE(temp_key, 0) …
    const decrypted = this.serverKey.decrypt(req.encryptedData);
    const aesEncrypted = decrypted.subarray(32);
    const tempKey = xor(decrypted.subarray(0, 32), sha256(aesEncrypted));
    const dataWithHash = igeDecrypt(aesEncrypted, tempKey, Buffer.alloc(32));
    const dataWithPadding = Buffer.from(dataWithHash.subarray(0, 192)).reverse();
    if (!sha256(tempKey, dataWithPadding).equals(dataWithHash.subarray(192))) return { error: 'RSA_PAD hash mismatch' };
    const inner = new ServerReader(dataWithPadding).tgReadObject();
    if (!(inner instanceof Api.PQInnerData || inner instanceof Api.PQInnerDataDc)) return { error: 'not p_q_inner_data' };
    if (!inner.nonce.eq(s.nonce) || !inner.serverNonce.eq(s.serverNonce)) return { error: 'inner nonce mismatch' };

    s.newNonce = inner.newNonce;
    const newNonce = helpers.toSignedLittleBuffer(inner.newNonce, 32);
    const serverNonce = helpers.toSignedLittleBuffer(s.serverNonce, 16);
    const h1 = sha1(newNonce, serverNonce);
    const h2 = sha1(serverNonce, newNonce);
    const h3 = sha1(newNonce, newNonce);
    s.key = Buffer.concat([h1, h2.subarray(0, 12)]);
    s.iv = Buffer.concat([h2.subarray(12, 20), h3, newNonce.subarray(0, 4)]);
    s.a = randomBytes(256);
    const answer = new Api.ServerDHInnerData({
      nonce: s.nonce, serverNonce: s.serverNonce, g: DH_G, dhPrime: DH_PRIME, gA: powG(s.a),
      serverTime: Math.floor(Date.now() / 1000),
    }).getBytes();
    const withHash = Buffer.concat([sha1(answer), answer]);
    const padded = Buffer.concat([withHash, randomBytes((16 - (withHash.length % 16)) % 16)]);
    return { reply: new Api.ServerDHParamsOk({ nonce: s.nonce, serverNonce: s.serverNonce, encryptedAnswer: igeEncrypt(padded, s.key, s.iv) }) };
  }

  private clientDh(req: Api.SetClientDHParams): HandshakeStep {
    const s = this.state;
    if (!s?.key || !s.iv || !s.a || !s.newNonce) return { error: 'set_client_DH_params before req_DH_params' };
    if (!req.nonce.eq(s.nonce) || !req.serverNonce.eq(s.serverNonce)) return { error: 'set_client_DH_params nonce mismatch' };
    const plain = igeDecrypt(req.encryptedData, s.key, s.iv);
    const reader = new ServerReader(plain.subarray(20));
    const inner = reader.tgReadObject();
    if (!(inner instanceof Api.ClientDHInnerData)) return { error: 'not client_DH_inner_data' };
    if (!sha1(plain.subarray(20, 20 + reader.tellPosition())).equals(plain.subarray(0, 20))) return { error: 'client DH hash mismatch' };
    // GramJS keeps the key as the minimal big-endian bytes of g^ab, so the server must too.
    const full = powMod(inner.gB, s.a);
    const authKey = full.subarray(full.findIndex((b) => b !== 0));
    const auxHash = sha1(authKey).subarray(0, 8);
    const hash = sha1(helpers.toSignedLittleBuffer(s.newNonce, 32), Buffer.from([1]), auxHash).subarray(4, 20);
    const reply = new Api.DhGenOk({
      nonce: s.nonce, serverNonce: s.serverNonce, newNonceHash1: helpers.readBigIntFromBuffer(hash, true, true),
    });
    this.state = undefined;
    return { reply, authKey };
  }
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
