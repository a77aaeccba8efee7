// The native 8-byte long conversions give exactly what GramJS's big-integer code gives.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Api, helpers } from 'telegram';
import { BinaryReader } from 'telegram/extensions/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { installFastLongs } from '../../../src/platforms/telegram/fast-longs.ts';

type H = { readBigIntFromBuffer(b: Buffer, l?: boolean, s?: boolean): { toString(): string }; toSignedLittleBuffer(b: unknown, n?: number): Buffer };
const gramjs = createRequire(import.meta.url)('telegram/Helpers.js') as H;
const slow = { read: gramjs.readBigIntFromBuffer, write: gramjs.toSignedLittleBuffer };
installFastLongs();

const edges = ['0000000000000000', 'ffffffffffffffff', '7fffffffffffffff', '8000000000000000', '0100000000000080', 'ff00000000000000']
  .map((h) => Buffer.from(h, 'hex'));

test('reading 8 bytes: the same value as GramJS for every byte order and sign', () => {
  for (const buf of [...edges, ...Array.from({ length: 2000 }, () => randomBytes(8))]) {
    for (const little of [true, false]) {
      for (const signed of [true, false]) {
        assert.is(gramjs.readBigIntFromBuffer(buf, little, signed).toString(), slow.read(buf, little, signed).toString(), `${buf.toString('hex')} ${little} ${signed}`);
      }
    }
  }
});

test('writing a long: the same bytes as GramJS for negative, positive and wide values', () => {
  const values: unknown[] = [0, -1, 1, 255, -256, 2 ** 53 - 1, -(2 ** 53), 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n];
  for (let i = 0; i < 2000; i++) values.push(randomBytes(8).readBigInt64LE(0), helpers.generateRandomLong(), helpers.returnBigInt(randomBytes(8).readBigUInt64LE(0)));
  for (const v of values) assert.equal(gramjs.toSignedLittleBuffer(v, 8), slow.write(v, 8), String(v));
});

test('other sizes keep GramJS code paths', () => {
  const buf = randomBytes(32);
  assert.is(gramjs.readBigIntFromBuffer(buf, true, true).toString(), slow.read(buf, true, true).toString());
  assert.equal(gramjs.toSignedLittleBuffer(12345678901234567890n, 16), slow.write(12345678901234567890n, 16));
});

test('GramJS itself uses them: a TL object with longs round-trips through getBytes and BinaryReader', () => {
  const pingId = helpers.generateRandomLong();
  const bytes = new Api.PingDelayDisconnect({ pingId, disconnectDelay: 90 }).getBytes();
  const read = new BinaryReader(bytes).tgReadObject() as Api.PingDelayDisconnect;
  assert.is(read.pingId.toString(), pingId.toString());
  assert.is(helpers.readBigIntFromBuffer, gramjs.readBigIntFromBuffer, 'the package root exposes the patched module');
});

test.run();
