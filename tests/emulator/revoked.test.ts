import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, type TelegramClient } from 'telegram';
import { startEmulator, type Emulator } from './index.ts';
import { connected, destroyAll, newClient, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// A revoked session seen by GramJS on a new connection: the first call answers
// AUTH_KEY_UNREGISTERED at once, whether the revoke came after connect() or before it.
//
// The fourth test documents a GramJS trap rather than an emulator rule. When one encrypted packet
// from the DC is a msg_container holding several rpc_results (Telegram sends those; so does the
// emulator when a client's container asked several things), GramJS handles them one by one in
// MTProtoSender._handleContainer, and _handleRPCResult *throws* the RPCError after rejecting its own
// call. The throw leaves the loop, so every later message of that container (other calls' answers,
// a pong) is dropped and those calls wait for their timeout. That is what left a daemon keepalive
// unanswered on a fresh revoked connection: GramJS's own users.getUsers(self) (client/updates.js,
// sent on the first update dispatched to a Raw handler) went out in the same container, and its
// AUTH_KEY_UNREGISTERED came first. The last test shows the client-side fix (go on with the
// container after a failed message) making both calls answer at once.
//
// GramJS 2.26.22 lines: network/MTProtoSender.js 559-564 (_handleRPCResult: reject, then throw),
// 586-590 (_handleContainer: no catch), 440-449 (_recvLoop: the throw lands here; AUTH_KEY_UNREGISTERED
// on the main sender is ignored), client/updates.js 119-121 (getMe(true) before dispatching an update).

let emu: Emulator;
let n = 0;
const phone = () => `+4477009${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator();
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

async function revokedLater() {
  const p = phone();
  await emu.createUser({ phone: p });
  return { phone: p, session: await emu.createSession(p) };
}

/** Every object GramJS decrypts from the DC (containers unopened), in arrival order. */
function tapIncoming(client: TelegramClient): unknown[] {
  const seen: unknown[] = [];
  const state = (client as unknown as { _sender: { _state: { decryptMessageData(b: Buffer): Promise<{ obj: unknown }> } } })._sender._state;
  const decrypt = state.decryptMessageData.bind(state);
  state.decryptMessageData = async (body) => {
    const message = await decrypt(body);
    message.obj = await message.obj;
    for (const inner of (message.obj as { messages?: Array<{ obj: unknown }> }).messages ?? []) inner.obj = await inner.obj;
    seen.push(message.obj);
    return message;
  };
  return seen;
}

const rpcResults = (obj: unknown): Array<{ reqMsgId: unknown; error?: { errorMessage: string } }> => {
  const inner = (obj as { messages?: Array<{ obj: unknown }> }).messages?.map((m) => m.obj) ?? [obj];
  return inner.filter((o) => (o as { CONSTRUCTOR_ID?: number }).CONSTRUCTOR_ID === 0xf35c6d01) as Array<{ reqMsgId: unknown; error?: { errorMessage: string } }>;
};

test('new connection, revoked after connect: the first call answers AUTH_KEY_UNREGISTERED at once', async () => {
  const s = await revokedLater();
  const { client } = await connected(emu, s.session);
  emu.fault({ type: 'revoke-session', target: s.phone });
  const started = Date.now();
  assert.is(await rpcErrorOf(withTimeout(client.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] })), 1000, 'first call')), 'AUTH_KEY_UNREGISTERED');
  assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
  assert.is(await rpcErrorOf(withTimeout(client.invoke(new Api.updates.GetState()), 1000, 'second call')), 'AUTH_KEY_UNREGISTERED');
});

test('revoked before connect: connect() (invokeWithLayer(initConnection(help.getConfig))) fails AUTH_KEY_UNREGISTERED at once', async () => {
  const s = await revokedLater();
  emu.fault({ type: 'revoke-session', target: s.phone });
  const { client } = newClient(emu, s.session);
  assert.is(await rpcErrorOf(withTimeout(client.connect(), 1000, 'connect')), 'AUTH_KEY_UNREGISTERED');
});

test('two calls in one container on a live key: both answered in one container, both resolve', async () => {
  const s = await revokedLater();
  const { client } = await connected(emu, s.session);
  const seen = tapIncoming(client);
  const [state, me] = await withTimeout(Promise.all([
    client.invoke(new Api.updates.GetState()),
    client.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] })),
  ]), 1000, 'both calls');
  assert.instance(state, Api.updates.State);
  assert.is(me.length, 1);
  assert.is(seen.map((o) => rpcResults(o).length).join(), '2', 'one container with two rpc_results');
});

test('GramJS trap: after a rpc_error in a container, the container\'s later answers are dropped (the call waits for its timeout)', async () => {
  const s = await revokedLater();
  const { client } = await connected(emu, s.session);
  const seen = tapIncoming(client);
  emu.fault({ type: 'revoke-session', target: s.phone });
  // Both go out in one container (the order inside is GramJS's: GetUsers resolves its input peer first).
  const outcomes = await Promise.all([
    rpcErrorOf(withTimeout(client.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] })), 1000, 'call')),
    rpcErrorOf(withTimeout(client.invoke(new Api.updates.GetState()), 1000, 'call')),
  ]);
  assert.equal(outcomes.sort(), ['AUTH_KEY_UNREGISTERED', 'call timed out after 1000 ms']);
  // The DC did answer both, at once, in the same packet: GramJS dropped the second answer.
  assert.equal(seen.map((o) => rpcResults(o).map((r) => r.error?.errorMessage).join('+')), ['AUTH_KEY_UNREGISTERED+AUTH_KEY_UNREGISTERED']);
});

test('the same container with GramJS\'s _handleContainer going on after a failed message: both calls answer at once', async () => {
  const s = await revokedLater();
  const { client } = await connected(emu, s.session);
  // The client-side fix, as the daemon applies it (handleWholeContainers in src/platforms/telegram/account-client.ts).
  // The handler table holds bound functions (MTProtoSender's constructor): replace the entry.
  const sender = (client as unknown as { _sender: { _processMessage(m: unknown): Promise<void>; _handlers: Record<string, (m: { obj: { messages: unknown[] } }) => Promise<void>> } })._sender;
  sender._handlers[String(0x73f1f8dc)] = async (message) => {
    let failure: unknown;
    for (const inner of message.obj.messages) await sender._processMessage(inner).catch((err: unknown) => { failure ??= err; });
    if (failure) throw failure; // _recvLoop still sees the RPCError (it ignores AUTH_KEY_UNREGISTERED on the main sender)
  };
  emu.fault({ type: 'revoke-session', target: s.phone });
  const outcomes = await Promise.all([
    rpcErrorOf(withTimeout(client.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] })), 1000, 'call')),
    rpcErrorOf(withTimeout(client.invoke(new Api.updates.GetState()), 1000, 'call')),
  ]);
  assert.equal(outcomes, ['AUTH_KEY_UNREGISTERED', 'AUTH_KEY_UNREGISTERED']);
});

test.run();
