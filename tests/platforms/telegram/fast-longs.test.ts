// The native 8-byte long conversions give exactly what GramJS's big-integer code gives.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Api, helpers } from 'telegram';
import { BinaryReader } from 'telegram/extensions/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../../../src/platforms/telegram/fast-longs.ts';

type H = {
  readBigIntFromBuffer(b: Buffer, l?: boolean, s?: boolean): { toString(): string };
  toSignedLittleBuffer(b: unknown, n?: number): Buffer;
  readBufferFromBigInt(b: unknown, n: number, l?: boolean, s?: boolean): Buffer;
};
// The patched module, and a fresh unpatched copy of GramJS's Helpers to compare with.
const require = createRequire(import.meta.url);
const path = require.resolve('telegram/Helpers.js');
const gramjs = require(path) as H;
const entry = require.cache[path];
delete require.cache[path];
const slow = require(path) as H;
require.cache[path] = entry;

const edges = ['0000000000000000', 'ffffffffffffffff', '7fffffffffffffff', '8000000000000000', '0100000000000080', 'ff00000000000000']
  .map((h) => Buffer.from(h, 'hex'));
const attempt = <T>(fn: () => T): T | string => { try { return fn(); } catch (err) { return `threw ${(err as Error).message}`; } };

test('patched on import', () => {
  assert.is.not(gramjs.readBigIntFromBuffer, slow.readBigIntFromBuffer);
  assert.is(helpers.readBigIntFromBuffer, gramjs.readBigIntFromBuffer, 'the package root exposes the patched module');
});

test('reading 8 bytes: the same value as GramJS for every byte order and sign', () => {
  for (const buf of [...edges, ...Array.from({ length: 2000 }, () => randomBytes(8))]) {
    for (const little of [true, false]) {
      for (const signed of [true, false]) {
        assert.is(gramjs.readBigIntFromBuffer(buf, little, signed).toString(), slow.readBigIntFromBuffer(buf, little, signed).toString(), `${buf.toString('hex')} ${little} ${signed}`);
      }
    }
  }
});

const values = (): unknown[] => {
  const v: unknown[] = [0, -1, 1, 255, -256, 2 ** 53 - 1, -(2 ** 53), 2n ** 63n - 1n, 2n ** 63n, -(2n ** 63n), -(2n ** 63n) - 1n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 64n)];
  for (let i = 0; i < 2000; i++) v.push(randomBytes(8).readBigInt64LE(0), randomBytes(8).readBigUInt64LE(0), helpers.returnBigInt(randomBytes(8).readBigInt64LE(0)));
  return v;
};

test('writing a long (toSignedLittleBuffer): the same bytes as GramJS for negative, positive and wide values', () => {
  for (const v of values()) assert.equal(gramjs.toSignedLittleBuffer(v, 8), slow.toSignedLittleBuffer(v, 8), String(v));
});

test('readBufferFromBigInt with 8 bytes: the same bytes, or the same error, as GramJS', () => {
  for (const v of values()) {
    for (const little of [true, false]) {
      for (const signed of [true, false]) {
        assert.equal(attempt(() => gramjs.readBufferFromBigInt(v, 8, little, signed)), attempt(() => slow.readBufferFromBigInt(v, 8, little, signed)), `${String(v)} ${little} ${signed}`);
      }
    }
  }
});

test('generateRandomLong: signed or unsigned 64-bit values, different each time', () => {
  const g = gramjs as unknown as { generateRandomLong(signed?: boolean): { toString(): string; isNegative(): boolean } };
  const signed = Array.from({ length: 200 }, () => BigInt(g.generateRandomLong().toString()));
  const unsigned = Array.from({ length: 200 }, () => BigInt(g.generateRandomLong(false).toString()));
  assert.ok(signed.every((v) => v >= -(2n ** 63n) && v < 2n ** 63n) && signed.some((v) => v < 0n));
  assert.ok(unsigned.every((v) => v >= 0n && v < 2n ** 64n) && unsigned.some((v) => v >= 2n ** 63n));
  assert.is(new Set(signed).size, 200);
});

test('other sizes keep GramJS code paths', () => {
  const buf = randomBytes(32);
  assert.is(gramjs.readBigIntFromBuffer(buf, true, true).toString(), slow.readBigIntFromBuffer(buf, true, true).toString());
  assert.equal(gramjs.toSignedLittleBuffer(12345678901234567890n, 16), slow.toSignedLittleBuffer(12345678901234567890n, 16));
  assert.equal(gramjs.readBufferFromBigInt(12345678901234567890n, 16), slow.readBufferFromBigInt(12345678901234567890n, 16));
});

test('a TL object with longs round-trips through getBytes and BinaryReader', () => {
  const pingId = helpers.returnBigInt(randomBytes(8).readBigInt64LE(0));
  const bytes = new Api.PingDelayDisconnect({ pingId, disconnectDelay: 90 }).getBytes();
  const read = new BinaryReader(bytes).tgReadObject() as Api.PingDelayDisconnect;
  assert.is(read.pingId.toString(), pingId.toString());
});

test.run();
