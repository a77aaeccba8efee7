// The leaner MTProto packet steps (lean-packets.ts) put the same bytes on the wire as GramJS's own.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encryptFramed, original } from '../../../src/platforms/telegram/lean-packets.ts';
import { Api } from 'telegram';

const require = createRequire(import.meta.url);
const { MTProtoState } = require('telegram/network/MTProtoState.js');
const { AuthKey } = require('telegram/crypto/AuthKey.js');
const { IGE } = require('telegram/crypto/IGE.js');
const { GZIPPacked } = require('telegram/tl/core/GZIPPacked.js');
const { FullPacketCodec } = require('telegram/network/connection/TCPFull.js');
const { MessagePacker } = require('telegram/extensions/MessagePacker.js');
const { RequestState } = require('telegram/network/RequestState.js');
const bigInt = require('big-integer') as (n: number) => unknown;
const helpers = require('telegram/Helpers.js') as { generateRandomBytes(n: number): Buffer; generateRandomLong(signed?: boolean): unknown };
const quiet = { debug() {}, info() {}, warn() {}, error() {}, canSend: () => false };

const sizes = [0, 1, 15, 16, 17, 1000, 512 * 1024 + 24, 512 * 1024 + 37];

test('patched on import', () => {
  assert.is.not(MTProtoState.prototype.encryptMessageData, original.encryptMessageData);
  assert.is.not(FullPacketCodec.prototype.encodePacket, original.encodePacket);
  assert.is.not(GZIPPacked.gzipIfSmaller, original.gzipIfSmaller);
});

test('gzipIfSmaller: the same answer as GramJS (its gzip is the identity), without building the packed copy', async () => {
  for (const data of [Buffer.alloc(0), Buffer.alloc(100_000), randomBytes(600_000)]) {
    for (const related of [true, false]) {
      const ours = await GZIPPacked.gzipIfSmaller(related, data);
      assert.ok(ours === data);
      assert.equal(await original.gzipIfSmaller(related, data), data);
    }
  }
});

test('encryptMessageData: byte for byte what GramJS encrypts, for every padding length', async () => {
  const authKey = new AuthKey();
  await authKey.setKey(randomBytes(256));
  const state = new MTProtoState(authKey, { debug() {}, info() {}, warn() {}, error() {} });
  state.salt = helpers.generateRandomLong(true);
  state.id = helpers.generateRandomLong(true);
  const real = helpers.generateRandomBytes;
  try {
    for (const size of sizes) {
      const data = randomBytes(size);
      // The same padding bytes for both: GramJS draws them through its Helpers module.
      const pad = randomBytes(32);
      helpers.generateRandomBytes = (n: number) => Buffer.from(pad.subarray(0, n));
      const copy = Buffer.from(data);
      const ours = await state.encryptMessageData(data);
      const theirs = await original.encryptMessageData.call(state, data);
      assert.ok(ours.equals(theirs), `${size} bytes`);
      assert.ok(data.equals(copy), 'a caller\'s buffer is left as it was');
      assert.is(ours.length % 16, 8);
    }
  } finally {
    helpers.generateRandomBytes = real;
  }
});

test('AES-IGE by OpenSSL CBC, as a frame: what GramJS computes, aligned or not, the plaintext as it was', () => {
  for (const blocks of [1, 2, 3, 4, 15, 16, 17, 100, 32 * 1024 + 3]) { // 16 blocks: NATIVE_IGE_BYTES
    const key = randomBytes(32);
    const iv = randomBytes(32);
    const plain = randomBytes(blocks * 16);
    const theirs = Buffer.from(new IGE(key, iv).encryptIge(plain));
    for (const shift of [0, 1, 4]) {
      // At an offset of `shift` bytes in a larger allocation (1: not 4-byte aligned: the JavaScript way).
      const whole = Buffer.alloc(32 + plain.length + 16 + 8).subarray(shift, shift + 32 + plain.length + 16);
      plain.copy(whole, 32);
      const frame = encryptFramed(key, iv, whole, plain.length);
      assert.is(frame.length, whole.length);
      assert.ok(frame.subarray(32, 32 + plain.length).equals(theirs), `${blocks} blocks, offset ${shift}`);
      assert.ok(whole.subarray(32, 32 + plain.length).equals(plain), 'the plaintext is left as it was');
    }
  }
});

test('saveFilePart / saveBigFilePart: the same request bytes as GramJS, for every padding length', () => {
  assert.is.not(Api.upload.SaveFilePart.prototype.getBytes, original.saveFilePartBytes);
  for (const size of [0, 1, 253, 254, 255, 256, 257, 1000, 512 * 1024 - 1, 512 * 1024]) {
    const bytes = randomBytes(size);
    const fileId = BigInt(`0x${randomBytes(7).toString('hex')}`) as never;
    for (const r of [new Api.upload.SaveFilePart({ fileId, filePart: 3, bytes }), new Api.upload.SaveBigFilePart({ fileId, filePart: 7, fileTotalParts: 40, bytes })]) {
      const theirs = (r instanceof Api.upload.SaveFilePart ? original.saveFilePartBytes : original.saveBigFilePartBytes).call(r);
      assert.ok(r.getBytes().equals(theirs), `${r.className}, ${size} bytes`);
      assert.ok(r.bytes === bytes, 'the request keeps its bytes');
    }
  }
});

test('encodePacket: the same TCP frame and counter as GramJS', () => {
  const ours = new FullPacketCodec({});
  const theirs = new FullPacketCodec({});
  for (const size of sizes) {
    const data = randomBytes(size);
    assert.ok(ours.encodePacket(data).equals(original.encodePacket.call(theirs, data)), `${size} bytes`);
  }
  assert.is(ours._sendCounter, sizes.length);
});

// The whole way out, as MTProtoSender's send loop takes it: packer batch, encryption, TCP frame.
async function sendAll(lean: boolean, authKey: unknown, requests: () => unknown[]) {
  const state = new MTProtoState(authKey, quiet);
  state.salt = bigInt(0x1234567);
  state.id = bigInt(0x7654321);
  let msgId = 1_000_000;
  state._getNewMsgId = () => bigInt((msgId += 4));
  const packer = new MessagePacker(state, quiet);
  const states = requests().map((r) => new RequestState(r));
  const sent = states.map((st: { data: Buffer }) => Buffer.from(st.data));
  for (const st of states) packer.append(st);
  const codec = new FullPacketCodec({});
  const frames: Buffer[] = [];
  const batches: string[][] = [];
  let padding = 0;
  let error = '';
  const real = helpers.generateRandomBytes;
  helpers.generateRandomBytes = (n: number) => Buffer.alloc(n, padding++);
  try {
    for (;;) {
      const res = await (lean ? packer.get() : original.packerGet.call(packer));
      if (!res) break;
      batches.push(res.batch.map((st: { msgId: unknown; containerId?: unknown }) => `${st.msgId}/${st.containerId}`));
      const enc = await (lean ? state.encryptMessageData(res.data) : original.encryptMessageData.call(state, res.data));
      frames.push(Buffer.from(lean ? codec.encodePacket(enc) : original.encodePacket.call(codec, enc)));
    }
  } catch (err) {
    error = String(err); // GramJS 2.26.22 fails on a too-large request (it calls a reject its promise lacks): the same here
  } finally {
    helpers.generateRandomBytes = real;
  }
  states.forEach((st: { data: Buffer }, i: number) => assert.ok(st.data.equals(sent[i]!), 'a request\'s bytes stay as they were, for a resend'));
  return { frames, batches, error };
}

test('MessagePacker.get, encryption and frame together: the same frames, msg ids and containers as GramJS', async () => {
  assert.is.not(MessagePacker.prototype.get, original.packerGet);
  const authKey = new AuthKey();
  await authKey.setKey(randomBytes(256));
  const part = (n: number, size = 512 * 1024) => new Api.upload.SaveFilePart({ fileId: bigInt(77) as never, filePart: n, bytes: randomBytes(size) });
  const media = (n: number) => new Api.messages.SendMedia({ peer: new Api.InputPeerSelf(), media: new Api.InputMediaEmpty(), message: `m${n}`, randomId: bigInt(n) as never });
  const cases: [string, () => unknown[]][] = [
    ['one small request', () => [new Api.help.GetConfig()]],
    ['one 512 KiB part', () => [part(0)]],
    ['a part and an ack: a container', () => [part(0), new Api.MsgsAck({ msgIds: [bigInt(5) as never] })]],
    ['two parts: too large together, two batches', () => [part(0), part(1), new Api.help.GetConfig()]],
    ['sends after sends (invokeAfterMsg) and odd sizes', () => [media(1), part(0, 1000), media(2), part(1, 3)]],
    ['a request over the container limit: the same failure', () => [new Api.help.GetConfig(), part(0, 1_100_000), part(1, 100)]],
    ['more than 100 messages: two containers', () => Array.from({ length: 130 }, () => new Api.help.GetConfig())],
  ];
  for (const [name, requests] of cases) {
    // The same requests for both (random bytes drawn once).
    const made = requests();
    const ours = await sendAll(true, authKey, () => made);
    const theirs = await sendAll(false, authKey, () => made);
    assert.equal(ours.batches, theirs.batches, name);
    assert.is(ours.error, theirs.error, name);
    assert.is(ours.frames.length, theirs.frames.length, name);
    ours.frames.forEach((f, i) => assert.ok(f.equals(theirs.frames[i]!), `${name}: frame ${i}`));
  }
});

test.run();
