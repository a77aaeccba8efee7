import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, password } from 'telegram';
import { IGE } from 'telegram/crypto/IGE.js';
import { createCipheriv, createDecipheriv, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { serverKeyFingerprint } from '../../src/platforms/telegram/client-options.ts';
import { igeDecrypt, igeEncrypt } from './crypto/ige.ts';
import { checkProof, createVerifier, startChallenge } from './crypto/srp.ts';
import { FullFrameDecoder, FullFrameEncoder } from './mtproto/framing.ts';
import { ID, gzipPacked, rpcResult, unpackGzip } from './mtproto/tl.ts';
import { startEmulator, type Emulator } from './index.ts';
import { connected, destroyAll, withTimeout } from './support/gramjs.ts';
import { RawClient } from './support/raw-client.ts';

// Protocol pieces checked against GramJS's own implementations, and wire behaviour over raw TCP.

let emu: Emulator;
test.before(async () => {
  emu = await startEmulator();
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

/** AES-256-IGE on OpenSSL's AES-ECB, one block per call: the reference for the table-driven one. */
function opensslIge(data: Buffer, key: Buffer, iv: Buffer, encrypt: boolean): Buffer {
  const ecb = encrypt ? createCipheriv('aes-256-ecb', key, null) : createDecipheriv('aes-256-ecb', key, null);
  ecb.setAutoPadding(false);
  const out = Buffer.alloc(data.length);
  // Encrypting: x = plaintext, chained on (prev ciphertext, prev plaintext); decrypting the reverse.
  let prevOut = iv.subarray(encrypt ? 0 : 16, encrypt ? 16 : 32);
  let prevIn = iv.subarray(encrypt ? 16 : 0, encrypt ? 32 : 16);
  for (let off = 0; off < data.length; off += 16) {
    const x = data.subarray(off, off + 16);
    const y = ecb.update(Buffer.from(x.map((b, j) => b ^ prevOut[j]!)));
    for (let j = 0; j < 16; j++) out[off + j] = y[j]! ^ prevIn[j]!;
    prevIn = x;
    prevOut = out.subarray(off, off + 16);
  }
  return out;
}

test('AES-IGE matches GramJS and OpenSSL both ways, 16 bytes to 4 KiB', () => {
  for (const blocks of [1, 2, 3, 9, 64, 256]) {
    const key = randomBytes(32);
    const iv = randomBytes(32);
    const plain = randomBytes(16 * blocks);
    const ours = igeEncrypt(plain, key, iv);
    assert.ok(opensslIge(plain, key, iv, true).equals(ours), `encrypt ${blocks} blocks`);
    assert.ok(Buffer.from(new IGE(key, iv).encryptIge(plain)).equals(ours));
    assert.ok(igeDecrypt(ours, key, iv).equals(plain), `decrypt ${blocks} blocks`);
    assert.ok(opensslIge(ours, key, iv, false).equals(plain));
    assert.ok(Buffer.from(new IGE(key, iv).decryptIge(ours)).equals(plain));
  }
  assert.throws(() => igeEncrypt(Buffer.alloc(20), randomBytes(32), randomBytes(32)), /multiple of 16/);
});

test('SRP: GramJS computeCheck proves the right password, not a wrong one; verifier = computeDigest', async () => {
  const v = await createVerifier('s3cret');
  const algo = new Api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow({
    salt1: v.salt1, salt2: v.salt2, g: 3, p: (await import('./crypto/mod-pow.ts')).DH_PRIME,
  });
  assert.ok(Buffer.from(await password.computeDigest(algo, 's3cret')).equals(v.verifier));
  const prove = async (pw: string) => {
    const ch = startChallenge(v);
    const req = new Api.account.Password({
      hasPassword: true, currentAlgo: algo, srp_B: ch.B, srpId: (await import('telegram')).helpers.returnBigInt(ch.srpId),
      newAlgo: algo, newSecureAlgo: new Api.SecurePasswordKdfAlgoUnknown(), secureRandom: randomBytes(32),
    });
    const check = await password.computeCheck(req, pw);
    return checkProof(v, ch, check.A, check.M1);
  };
  assert.is(await prove('s3cret'), true);
  assert.is(await prove('S3cret'), false);
});

test('server key fingerprint: the PEM the emulator prints yields the fingerprint it announces', async () => {
  const { client } = await connected(emu);
  const fp = serverKeyFingerprint(createPublicKey(readFileSync(emu.serverKeys, 'utf8')));
  assert.is(typeof fp, 'bigint');
  // The DH exchange only completes when resPQ announced exactly this fingerprint.
  assert.ok(emu.stats().handshakes >= 1);
  await withTimeout(client.destroy());
});

test('TCP full framing: round trip, seq numbers, corrupt checksum refused', () => {
  const enc = new FullFrameEncoder();
  const a = enc.encode(Buffer.from('abcd'));
  const b = enc.encode(Buffer.from('efghijkl'));
  assert.is(a.readInt32LE(4), 0);
  assert.is(b.readInt32LE(4), 1);
  const dec = new FullFrameDecoder();
  const both = Buffer.concat([a, b]);
  assert.equal(dec.push(both.subarray(0, 7)), []);
  assert.equal(dec.push(both.subarray(7)).map(String), ['abcd', 'efghijkl']);
  const bad = new FullFrameEncoder().encode(Buffer.from('abcd'));
  bad[9] ^= 1;
  assert.throws(() => new FullFrameDecoder().push(bad), /checksum/);
});

test('gzip_packed: big answers go out packed, packed input is inflated', () => {
  const big = Buffer.alloc(4000, 7);
  const out = rpcResult(5n, big);
  assert.is(out.readUInt32LE(12), ID.gzipPacked);
  assert.ok(out.length < 200);
  assert.ok(unpackGzip(gzipPacked(big)).equals(big));
  assert.ok(rpcResult(5n, Buffer.alloc(16)).subarray(12).equals(Buffer.alloc(16)));
});

test('an unknown auth key gets the transport error -404 and the socket is closed', async () => {
  const socket = tcpConnect(emu.mtprotoPort, emu.host);
  await new Promise((resolve) => socket.once('connect', resolve));
  const packet = Buffer.concat([randomBytes(8), randomBytes(16), randomBytes(64)]);
  socket.write(new FullFrameEncoder().encode(packet));
  const dec = new FullFrameDecoder();
  const frames: Buffer[] = [];
  socket.on('data', (d) => frames.push(...dec.push(d)));
  await withTimeout(new Promise((resolve) => socket.once('close', resolve)), 3000, 'close');
  assert.is(frames.length, 1);
  assert.is(frames[0]!.readInt32LE(0), -404);
});

test('GramJS learns the server salt (bad_server_salt/new_session_created) and batches in containers', async () => {
  const p = '+447700611111';
  await emu.createUser({ phone: p });
  const { client } = await connected(emu, await emu.createSession(p));
  const rec = [...emu.world.authKeys.values()].find((k) => k.userId === emu.world.userByPhone(p)!.id)!;
  const state = (client as unknown as { _sender: { _state: { salt: { toString(): string } } } })._sender._state;
  assert.is(state.salt.toString(), rec.salt.toString());
  const answers = await withTimeout(Promise.all(Array.from({ length: 8 }, () => client.invoke(new Api.updates.GetState()))));
  assert.is(answers.length, 8);
  assert.ok(answers.every((a) => a instanceof Api.updates.State));
});

test('a large answer (50 dialogs, gzip-packed by the server) is read by GramJS', async () => {
  const p = '+447700622222';
  const { userId } = await emu.createUser({ phone: p });
  for (let i = 0; i < 50; i++) emu.createChat({ type: 'supergroup', title: `Group number ${i}`, members: [{ id: userId, role: 'member' }] });
  const { client } = await connected(emu, await emu.createSession(p));
  const dialogs = await withTimeout(client.getDialogs({ limit: 100 }));
  assert.is(dialogs.filter((d) => d.title?.startsWith('Group number')).length, 50);
});

test('ping and ping_delay_disconnect answer pong with the same ping_id', async () => {
  const p = '+447700644444';
  await emu.createUser({ phone: p });
  const { client } = await connected(emu, await emu.createSession(p));
  const pingId = (await import('telegram')).helpers.generateRandomLong();
  const pong = (await withTimeout(client.invoke(new Api.Ping({ pingId })))) as Api.Pong;
  assert.instance(pong, Api.Pong);
  assert.is(pong.pingId.toString(), pingId.toString());
  const sender = (client as unknown as { _sender: { send(r: unknown): Promise<Api.Pong> } })._sender;
  const delayed = await withTimeout(sender.send(new Api.PingDelayDisconnect({ pingId, disconnectDelay: 75 })));
  assert.is(delayed.pingId.toString(), pingId.toString());
});

test("the benchmark's raw MTProto client gets real answers (salt learnt, rpc_result matched)", async () => {
  const p = '+447700633333';
  await emu.createUser({ phone: p });
  const raw = await RawClient.open(await emu.createSession(p), emu.host, emu.mtprotoPort);
  const answer = await withTimeout(raw.call(new Api.updates.GetState().getBytes()));
  assert.is(answer.readUInt32LE(0), Api.updates.State.CONSTRUCTOR_ID);
  raw.close();
});

/** messages.sendMessage to a user, serialised by GramJS (the raw client sends bytes). */
async function sendBody(to: { id: number; accessHash: bigint }, text: string, randomId: bigint): Promise<Buffer> {
  const { helpers } = await import('telegram');
  return new Api.messages.SendMessage({
    peer: new Api.InputPeerUser({ userId: helpers.returnBigInt(to.id), accessHash: helpers.returnBigInt(to.accessHash) }),
    message: text, randomId: helpers.returnBigInt(randomId),
  }).getBytes();
}

test('one msg_container of six sendMessage (resent whole after bad_server_salt): six rpc_results, six messages delivered in order', async () => {
  const p = '+447700655555';
  const { userId: senderId } = await emu.createUser({ phone: p });
  const sinks = [];
  for (let i = 0; i < 6; i++) {
    const { userId } = await emu.createUser({ phone: `+44770065600${i}` });
    sinks.push(emu.world.accounts.get(userId)!);
  }
  const raw = await RawClient.open(await emu.createSession(p), emu.host, emu.mtprotoPort);
  const bodies = await Promise.all(sinks.map((s, i) => sendBody(s, `batch ${i}`, BigInt(1000 + i))));
  const results = await withTimeout(raw.callBatch(bodies));
  assert.is(results.length, 6);
  const ids = results.map((r) => {
    assert.is(r.readUInt32LE(0), Api.UpdateShortSentMessage.CONSTRUCTOR_ID);
    return r.readInt32LE(8);
  });
  assert.is(new Set(ids).size, 6);
  const delivered = emu.delivered({ fromId: senderId });
  assert.equal(delivered.map((m) => m.text), sinks.map((_, i) => `batch ${i}`));
  assert.equal(delivered.map((m) => m.id), ids);
  raw.close();
});

test('random_id dedupe inside one container: the resend answers the first message, delivered once', async () => {
  const p = '+447700657777';
  const { userId: senderId } = await emu.createUser({ phone: p });
  const { userId: a } = await emu.createUser({ phone: '+447700657778' });
  const { userId: b } = await emu.createUser({ phone: '+447700657779' });
  const [sa, sb] = [emu.world.accounts.get(a)!, emu.world.accounts.get(b)!];
  const raw = await RawClient.open(await emu.createSession(p), emu.host, emu.mtprotoPort);
  const results = await withTimeout(raw.callBatch([
    await sendBody(sa, 'first', 77n), await sendBody(sb, 'other', 78n), await sendBody(sa, 'first again', 77n),
  ]));
  assert.ok(results.every((r) => r.readUInt32LE(0) === Api.UpdateShortSentMessage.CONSTRUCTOR_ID));
  assert.is(results[2]!.readInt32LE(8), results[0]!.readInt32LE(8));
  assert.not.equal(results[1]!.readInt32LE(8), results[0]!.readInt32LE(8));
  const delivered = emu.delivered({ fromId: senderId });
  assert.equal(delivered.map((m) => [m.chatId, m.text, m.randomId]), [[a, 'first', '77'], [b, 'other', '78']]);
  raw.close();
});

test.run();
