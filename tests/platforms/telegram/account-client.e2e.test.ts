// AccountClient against the emulator over real sockets: GramJS's own 9 s ping loop stays off and
// keepalive() (one ping_delay_disconnect + updates.getState) tells a live, a revoked and a
// half-dead link apart.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../../src/errors.ts';
import { Api } from 'telegram';
import type { OutboundMedia } from '../../../src/platforms/adapter.ts';
import { AccountClient } from '../../../src/platforms/telegram/account-client.ts';
import { startEmulator, type Emulator } from '../../emulator/index.ts';
import { newPhone } from '../../helpers/stack.ts';

// TelegramClient.connect() calls updates._updateLoop through the module object: count the calls.
const updates = createRequire(import.meta.url)('telegram/client/updates.js') as { _updateLoop: (client: unknown) => Promise<void> };
const original = updates._updateLoop;
let loops = 0;
updates._updateLoop = (client) => { loops++; return original(client); };

const PART = 512 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let emu: Emulator;
test.before(async () => { emu = await startEmulator(); });
test.after(async () => { updates._updateLoop = original; await emu.stop(); });

const open = async (phone: string, callTimeoutMs = 2000) => {
  await emu.createUser({ phone, firstName: 'Keep' });
  const session = await emu.createSession(phone);
  return AccountClient.open(session, { apiId: 1, apiHash: 'emulator', dc: emu.mtproto, serverKeysPem: readFileSync(emu.serverKeys, 'utf8'), callTimeoutMs, connectTimeoutMs: 5000 });
};

test('a connected client runs no GramJS ping loop; keepalive and the connect step answer on a live session', async () => {
  const c = await open(newPhone());
  try {
    assert.is(loops, 0, 'GramJS _updateLoop was not started');
    assert.is(await c.keepalive(), true);
    assert.is((await c.profileIfAuthorized())?.displayName, 'Keep');
  } finally {
    await c.destroy();
  }
});

test('keepalive answers false once the session is revoked; the connect step then sees no profile', async () => {
  const phone = newPhone();
  const c = await open(phone);
  try {
    assert.is(await c.keepalive(), true);
    emu.fault({ type: 'revoke-session', target: phone });
    assert.is(await c.keepalive(), false);
    assert.is(await c.profileIfAuthorized(), undefined);
  } finally {
    await c.destroy();
  }
});

test('a half-dead link (the DC stops answering in time) fails keepalive with TG_UNAVAILABLE within the call timeout', async () => {
  const phone = newPhone();
  const c = await open(phone, 300);
  try {
    emu.fault({ type: 'latency', target: phone, seconds: 3 });
    const started = Date.now();
    const err = await c.keepalive().then(() => undefined, (e: unknown) => e);
    assert.instance(err, AppError);
    assert.is((err as AppError).code, 'TG_UNAVAILABLE');
    assert.ok(Date.now() - started < 1500, `noticed after ${Date.now() - started} ms`);
  } finally {
    emu.fault({ type: 'clear' });
    await c.destroy();
  }
});

test('revoked right after connect: the first keepalive answers false instead of timing out (GramJS dropped answers after an error in one container)', async () => {
  const phone = newPhone();
  const c = await open(phone);
  try {
    emu.fault({ type: 'revoke-session', target: phone });
    // GramJS packs its getMe with the ping and getState; the DC answers all three in one container.
    assert.is(await c.keepalive(), false);
  } finally {
    await c.destroy();
  }
});

test('two calls answered in one container, the first with an error: both settle with their own answer', async () => {
  const phone = newPhone();
  const c = await open(phone);
  try {
    assert.is(await c.keepalive(), true);
    emu.fault({ type: 'revoke-session', target: phone });
    const outcomes = await Promise.all([
      c.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] }), 'users.getUsers'),
      c.invoke(new Api.updates.GetState(), 'updates.getState'),
    ].map((p) => p.then(() => 'ok', (e: unknown) => (e instanceof AppError ? e.code : String(e)))));
    assert.equal(outcomes, ['TG_SESSION_EXPIRED', 'TG_SESSION_EXPIRED']);
  } finally {
    await c.destroy();
  }
});

test('a media send holds one 512 KiB part of the file at a time: it reads a part only once Telegram has the one before', async () => {
  const c = await open(newPhone());
  const files = emu.world.files;
  const save = files.save.bind(files);
  const sizes: number[] = [];
  let received = 0;
  files.save = (owner, fileId, part, data, big, totalParts) => {
    sizes.push(data.length);
    received += data.length;
    return save(owner, fileId, part, data, big, totalParts);
  };
  try {
    for (const size of [3 * 1024 * 1024 + 100_000, 10 * 1024 * 1024 + 1]) {
      sizes.length = 0;
      received = 0;
      const bytes = randomBytes(size);
      // The most of the file read from "storage" and not yet at Telegram, checked at every read.
      let pulled = 0;
      let ahead = 0;
      const media: OutboundMedia = {
        type: 'document', filename: 'big.bin', contentType: 'application/octet-stream', size, sha256: sha(bytes),
        async* read() {
          for (let at = 0; at < size; at += PART) {
            pulled += Math.min(PART, size - at);
            ahead = Math.max(ahead, pulled - received);
            yield bytes.subarray(at, at + PART);
          }
        },
      };
      const randomId = BigInt(`0x${randomBytes(7).toString('hex')}`);
      // The DC allows about one message a second per chat (it answered FLOOD_WAIT 1 when the 3 MB send
      // followed the previous test's message to 'me' within the second): let the second pass first.
      await new Promise((r) => setTimeout(r, 1100));
      await c.sendMedia('me', media, 'file', randomId, BigInt(`0x${randomBytes(7).toString('hex')}`));
      assert.ok(ahead <= PART, `${size} bytes: ${ahead} read ahead of what Telegram had`);
      assert.ok(sizes.every((n) => n <= PART), `parts ${sizes.join(',')}`);
      assert.is(sizes.length, Math.ceil(size / PART));
      const got = emu.delivered().filter((m) => m.media?.sha256 === sha(bytes));
      assert.is(got.length, 1);
      assert.is(got[0]!.media!.size, size);
    }
  } finally {
    files.save = save;
    await c.destroy();
  }
});

test.run();
