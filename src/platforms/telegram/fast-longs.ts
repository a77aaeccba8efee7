import { createRequire } from 'node:module';

// GramJS reads and writes every MTProto `long` (message ids, salts, session ids, pings, user ids)
// through big-integer by way of hex strings and eight shift-and-mask steps. Profiled on
// bench:accounts, readBigIntFromBuffer and toSignedLittleBuffer were ~20% of the daemon's CPU per
// account connect (0.58 of 2.75 s for 1,000 reconnects) and much of its garbage. The 8-byte case
// goes through Buffer's native 64-bit reads and writes here; every other size keeps GramJS's code.
// GramJS calls both through its Helpers module object at call time, so replacing them there
// reaches the whole library.

interface BigIntegerLike { value: unknown }
interface Helpers {
  readBigIntFromBuffer(buffer: Buffer | Uint8Array | number[], little?: boolean, signed?: boolean): BigIntegerLike;
  toSignedLittleBuffer(big: unknown, number?: number): Buffer;
  returnBigInt(num: unknown): BigIntegerLike;
}

const helpers = createRequire(import.meta.url)('telegram/Helpers.js') as Helpers & { __fastLongs?: true };

/** Replaces GramJS's 8-byte long conversions with native ones; idempotent. */
export function installFastLongs(): void {
  if (helpers.__fastLongs) return;
  const { readBigIntFromBuffer: readSlow, toSignedLittleBuffer: writeSlow, returnBigInt } = helpers;

  helpers.readBigIntFromBuffer = (buffer, little = true, signed = false) => {
    if (buffer.length !== 8) return readSlow(buffer, little, signed);
    const b = Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer);
    const v = little ? (signed ? b.readBigInt64LE(0) : b.readBigUInt64LE(0)) : (signed ? b.readBigInt64BE(0) : b.readBigUInt64BE(0));
    return returnBigInt(v);
  };

  helpers.toSignedLittleBuffer = (big, number = 8) => {
    if (number === 8) {
      // NativeBigInt holds a bigint, SmallInteger a number; anything else takes the slow path.
      const v = returnBigInt(big).value;
      if (typeof v === 'bigint' || typeof v === 'number') {
        const out = Buffer.allocUnsafe(8);
        out.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
        return out;
      }
    }
    return writeSlow(big, number);
  };
  helpers.__fastLongs = true;
}
