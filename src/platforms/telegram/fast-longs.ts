import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

// GramJS reads and writes every MTProto `long` (message ids, salts, session ids, pings, user ids)
// through big-integer by way of hex strings and eight shift-and-mask steps. Profiled on
// bench:accounts, readBigIntFromBuffer and toSignedLittleBuffer were ~20% of the daemon's CPU per
// account connect (0.58 of 2.75 s for 1,000 reconnects) and much of its garbage. The 8-byte case
// goes through Buffer's native 64-bit reads and writes here; every other size keeps GramJS's code.
// Most of GramJS calls them through its Helpers module object at call time, but tl/api.js (every
// request's getBytes) keeps the references it took when it loaded: so this module patches on
// import, and each file of this folder that imports 'telegram' imports this module first.

interface BigIntegerLike { value: unknown }
interface Helpers {
  generateRandomLong(signed?: boolean): BigIntegerLike;
  readBigIntFromBuffer(buffer: Buffer | Uint8Array | number[], little?: boolean, signed?: boolean): BigIntegerLike;
  toSignedLittleBuffer(big: unknown, number?: number): Buffer;
  readBufferFromBigInt(big: unknown, bytesNumber: number, little?: boolean, signed?: boolean): Buffer;
  returnBigInt(num: unknown): BigIntegerLike;
}

const helpers = createRequire(import.meta.url)('telegram/Helpers.js') as Helpers & { __fastLongs?: true };

/** Replaces GramJS's 8-byte long conversions with native ones; idempotent. */
function installFastLongs(): void {
  if (helpers.__fastLongs) return;
  const { readBigIntFromBuffer: readSlow, toSignedLittleBuffer: writeSlow, readBufferFromBigInt: toBufferSlow, returnBigInt } = helpers;
  // NativeBigInt holds a bigint, SmallInteger a number; anything else takes the slow path.
  const native = (big: unknown): bigint | undefined => {
    const v = returnBigInt(big).value;
    return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : undefined;
  };

  helpers.readBigIntFromBuffer = (buffer, little = true, signed = false) => {
    if (buffer.length !== 8) return readSlow(buffer, little, signed);
    const b = Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer);
    const v = little ? (signed ? b.readBigInt64LE(0) : b.readBigUInt64LE(0)) : (signed ? b.readBigInt64BE(0) : b.readBigUInt64BE(0));
    return returnBigInt(v);
  };

  helpers.toSignedLittleBuffer = (big, number = 8) => {
    const v = number === 8 ? native(big) : undefined;
    if (v === undefined) return writeSlow(big, number);
    const out = Buffer.allocUnsafe(8);
    out.writeBigUInt64LE(BigInt.asUintN(64, v));
    return out;
  };

  // A session id per connection; GramJS calls its own slow reader here, not through the module.
  helpers.generateRandomLong = (signed = true) => helpers.readBigIntFromBuffer(randomBytes(8), true, signed);

  // The auth key id of every message sent. Values outside the 8-byte range keep GramJS's errors.
  helpers.readBufferFromBigInt = (big, bytesNumber, little = true, signed = false) => {
    const v = bytesNumber === 8 ? native(big) : undefined;
    const fits = v !== undefined && (signed ? v >= -(2n ** 63n) && v < 2n ** 64n : v >= 0n && v < 2n ** 64n);
    if (!fits) return toBufferSlow(big, bytesNumber, little, signed);
    const out = Buffer.allocUnsafe(8);
    const u = BigInt.asUintN(64, v);
    if (little) out.writeBigUInt64LE(u);
    else out.writeBigUInt64BE(u);
    return out;
  };
  helpers.__fastLongs = true;
}

installFastLongs();
