import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Api, errors, helpers } from 'telegram';
import { NewMessage, type NewMessageEvent } from 'telegram/events/index.js';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock, connected, destroyAll, rpcErrorOf, withTimeout } from './support/gramjs.ts';

// Messages through GramJS: sends, random_id dedupe, pushed updates, flood waits, chat rights, lookups.
// Domain time stands still (ManualClock), so pacing windows do not depend on machine speed.

let emu: Emulator;
let n = 0;
const phone = () => `+4477008${String(10_000 + ++n).slice(1)}`;

test.before(async () => {
  emu = await startEmulator({ clock: new ManualClock() });
});
test.after(async () => {
  await destroyAll();
  await emu.stop();
});

async function loggedIn(name?: string) {
  const p = phone();
  const username = name ? `${name}_${n}` : undefined;
  const { userId } = await emu.createUser({ phone: p, firstName: `U${n}`, username });
  const tc = await connected(emu, await emu.createSession(p));
  return { ...tc, userId, phone: p, username: username ?? '' };
}

async function peerOf(client: Awaited<ReturnType<typeof loggedIn>>['client'], username: string): Promise<Api.TypeInputPeer> {
  const r = (await withTimeout(client.invoke(new Api.contacts.ResolveUsername({ username })))) as Api.contacts.ResolvedPeer;
  const u = r.users[0] as Api.User | undefined;
  if (u) return new Api.InputPeerUser({ userId: u.id, accessHash: u.accessHash! });
  const c = r.chats[0] as Api.Channel;
  return new Api.InputPeerChannel({ channelId: c.id, accessHash: c.accessHash! });
}

test('sendMessage lands in GET /messages; the same random_id twice is delivered once', async () => {
  const a = await loggedIn();
  const b = await loggedIn('bob');
  const peer = await peerOf(a.client, b.username);
  const randomId = helpers.generateRandomLong();
  const send = () => a.client.invoke(new Api.messages.SendMessage({ peer, message: 'hello bob', randomId }));
  const first = await withTimeout(send());
  const second = await withTimeout(send());
  assert.instance(first, Api.UpdateShortSentMessage);
  assert.is((second as Api.UpdateShortSentMessage).id, (first as Api.UpdateShortSentMessage).id);
  const delivered = emu.delivered({ chatId: b.userId, fromId: a.userId });
  assert.is(delivered.length, 1);
  assert.is(delivered[0]!.text, 'hello bob');
  assert.is(delivered[0]!.randomId, randomId.toString());
  const viaHttp = (await (await fetch(`${emu.control}/messages?chatId=${b.userId}`)).json()) as unknown[];
  assert.is(viaHttp.length, 1);
});

test('client.sendMessage (GramJS high level) resolves the sent message id', async () => {
  const a = await loggedIn();
  const c = await loggedIn('carol');
  const msg = await withTimeout(a.client.sendMessage(c.username, { message: 'hi carol' }));
  assert.ok(msg.id > 0);
  assert.is(emu.delivered({ fromId: a.userId })[0]!.text, 'hi carol');
});

test('an incoming message is pushed as an update and reaches a GramJS NewMessage handler', async () => {
  const a = await loggedIn();
  const sender = await emu.createUser({ phone: phone(), firstName: 'Sender' });
  const got = new Promise<NewMessageEvent>((resolve) => a.client.addEventHandler(resolve, new NewMessage({})));
  // Telegram only pushes to sessions that made a call; GramJS makes one on its own (getMe) when a handler is added.
  await withTimeout(a.client.invoke(new Api.updates.GetState()));
  emu.pushUpdate({ to: a.phone, fromUserId: sender.userId, text: 'ping from outside' });
  const ev = await withTimeout(got, 5000, 'NewMessage');
  assert.is(ev.message.message, 'ping from outside');
  assert.is(Number(ev.message.senderId), sender.userId);
  const state = (await withTimeout(a.client.invoke(new Api.updates.GetState()))) as Api.updates.State;
  const diff = await withTimeout(a.client.invoke(new Api.updates.GetDifference({ pts: state.pts - 1, date: state.date, qts: 0 })));
  assert.instance(diff, Api.updates.Difference);
  assert.is(((diff as Api.updates.Difference).newMessages[0] as Api.Message).message, 'ping from outside');
});

test('a message between two emulated users is pushed to the recipient', async () => {
  const a = await loggedIn();
  const b = await loggedIn('dave');
  const got = new Promise<NewMessageEvent>((resolve) => b.client.addEventHandler(resolve, new NewMessage({})));
  await withTimeout(b.client.invoke(new Api.updates.GetState()));
  const peer = await peerOf(a.client, b.username);
  await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: 'user to user', randomId: helpers.generateRandomLong() })));
  assert.is((await withTimeout(got, 5000, 'NewMessage')).message.message, 'user to user');
});

test('flood-wait fault surfaces as FloodWaitError with the configured seconds', async () => {
  const a = await loggedIn();
  const e = await loggedIn('erin');
  const peer = await peerOf(a.client, e.username);
  emu.fault({ type: 'flood-wait', target: a.phone, seconds: 7, count: 1 });
  const err = await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: 'x', randomId: helpers.generateRandomLong() }))).catch((e: unknown) => e);
  assert.instance(err, errors.FloodWaitError);
  assert.is((err as errors.FloodWaitError).seconds, 7);
  // count 1: the next send goes through (the refused one used no pacing quota)
  await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: 'y', randomId: helpers.generateRandomLong() })));
  assert.ok(emu.stats().floodWaitsServed >= 1);
});

test('pacing: a second message into the same chat within a second → FLOOD_WAIT_1', async () => {
  const a = await loggedIn();
  const f = await loggedIn('fred');
  const peer = await peerOf(a.client, f.username);
  await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: '1', randomId: helpers.generateRandomLong() })));
  const err = await withTimeout(a.client.invoke(new Api.messages.SendMessage({ peer, message: '2', randomId: helpers.generateRandomLong() }))).catch((e: unknown) => e);
  assert.instance(err, errors.FloodWaitError);
  assert.is((err as errors.FloodWaitError).seconds, 1);
});

test('channels: members cannot post (CHAT_WRITE_FORBIDDEN), admins can; participants and lookups', async () => {
  const admin = await loggedIn();
  const member = await loggedIn();
  const outsider = await loggedIn();
  const news = `news_m${n}`;
  const { chatId } = emu.createChat({
    type: 'channel', title: 'News', username: news,
    members: [{ id: admin.userId, role: 'creator' }, { id: member.userId, role: 'member' }],
  });
  assert.ok(chatId < -1_000_000_000_000);
  const peerA = await peerOf(admin.client, news);
  await withTimeout(admin.client.invoke(new Api.messages.SendMessage({ peer: peerA, message: 'post', randomId: helpers.generateRandomLong() })));
  assert.is(emu.delivered({ chatId })[0]!.text, 'post');
  const peerM = await peerOf(member.client, news);
  assert.is(await rpcErrorOf(member.client.invoke(new Api.messages.SendMessage({ peer: peerM, message: 'no', randomId: helpers.generateRandomLong() }))), 'CHAT_WRITE_FORBIDDEN');
  const channel = new Api.InputChannel({ channelId: (peerA as Api.InputPeerChannel).channelId, accessHash: (peerA as Api.InputPeerChannel).accessHash });
  const part = (await withTimeout(admin.client.invoke(new Api.channels.GetParticipant({ channel, participant: new Api.InputPeerSelf() })))) as Api.channels.ChannelParticipant;
  assert.instance(part.participant, Api.ChannelParticipantCreator);
  assert.is(await rpcErrorOf(outsider.client.invoke(new Api.channels.GetParticipant({ channel, participant: new Api.InputPeerSelf() }))), 'USER_NOT_PARTICIPANT');
  const chats = (await withTimeout(member.client.invoke(new Api.channels.GetChannels({ id: [channel] })))) as Api.messages.Chats;
  assert.is((chats.chats[0] as Api.Channel).title, 'News');
  const bogus = new Api.InputChannel({ channelId: channel.channelId, accessHash: helpers.generateRandomLong() });
  assert.is(await rpcErrorOf(member.client.invoke(new Api.channels.GetChannels({ id: [bogus] }))), 'CHANNEL_INVALID');
  const dialogs = await withTimeout(member.client.getDialogs({}));
  assert.ok(dialogs.some((d) => d.title === 'News'));
});

test('basic groups: messages.getChats, posting, and PEER_ID_INVALID for unknown peers', async () => {
  const a = await loggedIn();
  const b = await loggedIn();
  const { chatId } = emu.createChat({ type: 'group', title: 'Team', members: [{ id: a.userId, role: 'creator' }, { id: b.userId, role: 'member' }] });
  const res = (await withTimeout(a.client.invoke(new Api.messages.GetChats({ id: [helpers.returnBigInt(-chatId)] })))) as Api.messages.Chats;
  assert.is((res.chats[0] as Api.Chat).title, 'Team');
  await withTimeout(b.client.invoke(new Api.messages.SendMessage({ peer: new Api.InputPeerChat({ chatId: helpers.returnBigInt(-chatId) }), message: 'in group', randomId: helpers.generateRandomLong() })));
  assert.is(emu.delivered({ chatId })[0]!.fromId, b.userId);
  assert.is(await rpcErrorOf(a.client.invoke(new Api.messages.GetChats({ id: [helpers.returnBigInt(999)] }))), 'PEER_ID_INVALID');
  const ghost = new Api.InputPeerUser({ userId: helpers.returnBigInt(42), accessHash: helpers.returnBigInt(1) });
  assert.is(await rpcErrorOf(a.client.invoke(new Api.messages.SendMessage({ peer: ghost, message: 'x', randomId: helpers.generateRandomLong() }))), 'PEER_ID_INVALID');
});

test('messages.checkChatInvite: member → chatInviteAlready, outsider → chatInvite, bad hash → INVITE_HASH_INVALID', async () => {
  const member = await loggedIn();
  const outsider = await loggedIn();
  const { inviteLink } = emu.createChat({ type: 'supergroup', title: 'Invite only', members: [{ id: member.userId, role: 'creator' }] });
  const hash = inviteLink.split('+')[1]!;
  const already = await withTimeout(member.client.invoke(new Api.messages.CheckChatInvite({ hash })));
  assert.instance(already, Api.ChatInviteAlready);
  assert.is(((already as Api.ChatInviteAlready).chat as Api.Channel).title, 'Invite only');
  const invite = await withTimeout(outsider.client.invoke(new Api.messages.CheckChatInvite({ hash })));
  assert.instance(invite, Api.ChatInvite);
  assert.is(await rpcErrorOf(member.client.invoke(new Api.messages.CheckChatInvite({ hash: 'nope' }))), 'INVITE_HASH_INVALID');
});

test('sendMessage with reply_to and silent is accepted', async () => {
  const a = await loggedIn();
  const b = await loggedIn('hank');
  const peer = await peerOf(a.client, b.username);
  const res = await withTimeout(a.client.invoke(new Api.messages.SendMessage({
    peer, message: 'a reply', randomId: helpers.generateRandomLong(), silent: true, replyTo: new Api.InputReplyToMessage({ replyToMsgId: 1 }),
  })));
  assert.instance(res, Api.UpdateShortSentMessage);
});

test('contacts.resolveUsername of a free name → USERNAME_NOT_OCCUPIED; users.getFullUser works', async () => {
  const a = await loggedIn('gina');
  assert.is(await rpcErrorOf(a.client.invoke(new Api.contacts.ResolveUsername({ username: 'nobody_here_x' }))), 'USERNAME_NOT_OCCUPIED');
  const full = (await withTimeout(a.client.invoke(new Api.users.GetFullUser({ id: new Api.InputUserSelf() })))) as Api.users.UserFull;
  assert.is(Number(full.fullUser.id), a.userId);
});

test('an unimplemented method answers 400 METHOD_NOT_IMPLEMENTED', async () => {
  const a = await loggedIn();
  assert.is(await rpcErrorOf(a.client.invoke(new Api.account.GetAuthorizations())), 'METHOD_NOT_IMPLEMENTED');
});

test.run();
