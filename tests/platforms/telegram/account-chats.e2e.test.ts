// Numeric chat ids need an access hash only the entity cache knows; resolvePeer looks the id up,
// fills the cache with one getDialogs on a miss and looks again. Only "Telegram does not know it" may
// become the permanent TG_CHAT_NOT_FOUND: a lookup that gets no answer is TG_UNAVAILABLE (retried).
// The timeouts are real (the emulator's latency fault, a 400 ms call timeout).
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Api } from 'telegram';
import { AppError } from '../../../src/errors.ts';
import { resolvePeer } from '../../../src/platforms/telegram/account-chats.ts';
import { AccountClient } from '../../../src/platforms/telegram/account-client.ts';
import { startEmulator, type Emulator } from '../../emulator/index.ts';
import { newPhone } from '../../helpers/stack.ts';

let emu: Emulator;
test.before(async () => { emu = await startEmulator(); });
test.after(async () => { await emu.stop(); });
test.after.each(() => { emu.fault({ type: 'clear' }); });

async function open(callTimeoutMs = 400): Promise<{ c: AccountClient; phone: string; userId: number }> {
  const phone = newPhone();
  const { userId } = await emu.createUser({ phone, firstName: 'Look' });
  const session = await emu.createSession(phone);
  const c = await AccountClient.open(session, { apiId: 1, apiHash: 'emulator', dc: emu.mtproto, serverKeysPem: readFileSync(emu.serverKeys, 'utf8'), callTimeoutMs, connectTimeoutMs: 5000 });
  return { c, phone, userId };
}

// Records the client's calls, and runs `before` ahead of the nth cache lookup: the test's hook to
// arm a fault at the moment it wants, between getDialogs and the lookup after it.
function watch(c: AccountClient, before: Record<number, () => void> = {}): string[] {
  const calls: string[] = [];
  const lookup = c.inputEntity.bind(c);
  const invoke = c.invoke.bind(c);
  let lookups = 0;
  c.inputEntity = (peer: Api.TypeEntityLike) => { before[++lookups]?.(); calls.push('lookup'); return lookup(peer); };
  c.invoke = ((request: Api.AnyRequest, method: string) => { calls.push(method); return invoke(request, method); }) as typeof c.invoke;
  return calls;
}

async function failure(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  assert.instance(e, AppError, 'resolvePeer should fail with an AppError');
  return e as AppError;
}

test('an id Telegram does not know: TG_CHAT_NOT_FOUND after one getDialogs', async () => {
  const { c } = await open();
  const { userId: stranger } = await emu.createUser({ phone: newPhone() });
  try {
    const calls = watch(c);
    const e = await failure(resolvePeer(c, String(stranger)));
    assert.is(e.code, 'TG_CHAT_NOT_FOUND');
    assert.equal(calls, ['lookup', 'messages.getDialogs', 'lookup']);
  } finally {
    await c.destroy();
  }
});

test('a channel the account is in but has not seen yet: found through getDialogs', async () => {
  const { c, userId } = await open();
  const { chatId } = emu.createChat({ type: 'channel', title: 'seen later', members: [{ id: userId, role: 'member' }] });
  try {
    const peer = await resolvePeer(c, String(chatId));
    assert.is(peer.className, 'InputPeerChannel');
  } finally {
    await c.destroy();
  }
});

test('the lookup after getDialogs gets no answer: TG_UNAVAILABLE, not a permanent TG_CHAT_NOT_FOUND', async () => {
  const { c, phone } = await open();
  const { userId: stranger } = await emu.createUser({ phone: newPhone() });
  try {
    const calls = watch(c, { 2: () => emu.fault({ type: 'latency', target: phone, seconds: 2 }) });
    const e = await failure(resolvePeer(c, String(stranger)));
    assert.is(e.code, 'TG_UNAVAILABLE');
    assert.ok(e.retryable);
    assert.equal(calls, ['lookup', 'messages.getDialogs', 'lookup']);
  } finally {
    await c.destroy();
  }
});

test('the first lookup gets no answer: TG_UNAVAILABLE at once, no getDialogs on a dead link', async () => {
  const { c, phone } = await open();
  const { userId: stranger } = await emu.createUser({ phone: newPhone() });
  try {
    const calls = watch(c, { 1: () => emu.fault({ type: 'latency', target: phone, seconds: 2 }) });
    const e = await failure(resolvePeer(c, String(stranger)));
    assert.is(e.code, 'TG_UNAVAILABLE');
    assert.equal(calls, ['lookup']);
  } finally {
    await c.destroy();
  }
});

test.run();
