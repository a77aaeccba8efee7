import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { Api, utils } from 'telegram';
import { tgError } from './codes.ts';
import type { ChatCheck } from '../adapter.ts';
import type { AccountClient } from './account-client.ts';
import { mapTelegramError } from './errors.ts';

// Chat references as callers write them: @name, t.me/name, t.me/+invite, joinchat/invite, and
// Bot-API-style numeric ids (-100… channels and supergroups, -… basic groups, positive users).

type Ref = { kind: 'username'; name: string } | { kind: 'invite'; hash: string } | { kind: 'id'; id: bigint };

export function parseChatRef(ref: string): Ref {
  const s = ref.trim();
  const link = /^(?:https?:\/\/)?(?:t\.me|telegram\.me)\/(.+)$/i.exec(s);
  const path = link?.[1]?.replace(/(?<!\/)\/+$/, '');
  if (path) {
    const invite = /^(?:\+|joinchat\/)([\w-]+)$/.exec(path);
    if (invite) return { kind: 'invite', hash: invite[1]! };
    if (/^[A-Za-z][\w]{3,31}$/.test(path)) return { kind: 'username', name: path };
  }
  if (/^@[A-Za-z][\w]{3,31}$/.test(s)) return { kind: 'username', name: s.slice(1) };
  if (/^-?\d{1,20}$/.test(s)) return { kind: 'id', id: BigInt(s) };
  throw tgError('TG_CHAT_NOT_FOUND', 'Not a chat reference: use @name, a numeric id or a t.me link');
}

type Entity = Api.User | Api.Chat | Api.Channel | Api.ChatForbidden | Api.ChannelForbidden;

async function entityOf(c: AccountClient, ref: Ref): Promise<Entity> {
  if (ref.kind === 'username') {
    const res = await c.invoke(new Api.contacts.ResolveUsername({ username: ref.name }), 'contacts.resolveUsername');
    const found = [...res.chats, ...res.users].find((e) => utils.getPeerId(e) === utils.getPeerId(res.peer));
    if (!found) throw tgError('TG_CHAT_NOT_FOUND', 'Telegram does not know this chat');
    return found as Entity;
  }
  if (ref.kind === 'invite') {
    const res = await c.invoke(new Api.messages.CheckChatInvite({ hash: ref.hash }), 'messages.checkChatInvite');
    if (res instanceof Api.ChatInviteAlready) return res.chat as Entity;
    throw tgError('TG_NOT_MEMBER', 'The connection is not a member of this chat');
  }
  const id = ref.id;
  if (id > 0n) {
    const [user] = await c.invoke(new Api.users.GetUsers({ id: [utils.getInputUser(await inputOf(c, id))] }), 'users.getUsers');
    if (!user || user instanceof Api.UserEmpty) throw tgError('TG_CHAT_NOT_FOUND', 'Telegram does not know this chat');
    return user as Api.User;
  }
  const s = String(-id);
  if (s.startsWith('100') && s.length > 10) {
    const input = await inputOf(c, id);
    const res = await c.invoke(new Api.channels.GetChannels({ id: [utils.getInputChannel(input)] }), 'channels.getChannels');
    const chat = res.chats[0];
    if (!chat) throw tgError('TG_CHAT_NOT_FOUND', 'Telegram does not know this chat');
    return chat as Entity;
  }
  const res = await c.invoke(new Api.messages.GetChats({ id: [-id as unknown as never] }), 'messages.getChats');
  const chat = res.chats[0];
  if (!chat) throw tgError('TG_CHAT_NOT_FOUND', 'Telegram does not know this chat');
  return chat as Entity;
}

// GramJS's getInputEntity ends a fruitless search with a plain Error (2.26.22 client/users.js 337
// and 414: no class to test, so its text); Telegram may also answer the lookup by id with
// USER_ID_INVALID or PEER_ID_INVALID (TG_CHAT_NOT_FOUND in the map). Only those mean "not known": a
// timeout, a dropped link or a flood wait is passed on (retried), not made a permanent TG_CHAT_NOT_FOUND.
const gramjsNotFound = /^(?:Could not find the input entity|Cannot find any entity corresponding)/;

async function cachedInput(c: AccountClient, id: bigint): Promise<Api.TypeInputPeer | undefined> {
  try {
    return await c.inputEntity(id.toString());
  } catch (err) {
    if (err instanceof Error && gramjsNotFound.test(err.message)) return undefined;
    const mapped = mapTelegramError(err);
    if (mapped.code === 'TG_CHAT_NOT_FOUND') return undefined;
    throw mapped;
  }
}

// An id needs its access hash, which only the entity cache knows: on a miss, one getDialogs fills it.
async function inputOf(c: AccountClient, id: bigint): Promise<Api.TypeInputPeer> {
  const cached = await cachedInput(c, id);
  if (cached) return cached;
  await c.invoke(new Api.messages.GetDialogs({ offsetPeer: new Api.InputPeerEmpty(), limit: 100, hash: 0 as never }), 'messages.getDialogs');
  const found = await cachedInput(c, id);
  if (found) return found;
  throw tgError('TG_CHAT_NOT_FOUND', 'Telegram does not know this chat, or the connection has never seen it');
}

/** The input peer to send to. */
export async function resolvePeer(c: AccountClient, chat: string): Promise<Api.TypeInputPeer> {
  const ref = parseChatRef(chat);
  if (ref.kind === 'id') {
    const s = String(-ref.id);
    if (ref.id < 0n && !(s.startsWith('100') && s.length > 10)) return new Api.InputPeerChat({ chatId: (-ref.id) as never });
    return inputOf(c, ref.id);
  }
  return utils.getInputPeer(await entityOf(c, ref));
}

const adminRights = (r: Api.ChatAdminRights | undefined, all = false): Record<string, boolean> => ({
  postMessages: all || !!r?.postMessages,
  editMessages: all || !!r?.editMessages,
  deleteMessages: all || !!r?.deleteMessages,
  banUsers: all || !!r?.banUsers,
  inviteUsers: all || !!r?.inviteUsers,
  pinMessages: all || !!r?.pinMessages,
  changeInfo: all || !!r?.changeInfo,
  addAdmins: all || !!r?.addAdmins,
});

const markedId = (e: Entity): string => String(utils.getPeerId(e));

export async function checkAccountChat(c: AccountClient, refText: string): Promise<ChatCheck> {
  const entity = await entityOf(c, parseChatRef(refText));
  if (entity instanceof Api.ChatForbidden || entity instanceof Api.ChannelForbidden) {
    throw tgError('TG_NOT_MEMBER', 'The connection is not a member of this chat');
  }
  if (entity instanceof Api.User) {
    return {
      platformChatId: String(entity.id), type: 'private', title: [entity.firstName, entity.lastName].filter(Boolean).join(' '),
      ...(entity.username ? { username: entity.username } : {}), isAdmin: false, canSend: true, rights: {},
    };
  }
  if (entity instanceof Api.Chat) {
    if (entity.left || entity.deactivated) throw tgError('TG_NOT_MEMBER', 'The connection is not a member of this chat');
    const isAdmin = !!entity.creator || !!entity.adminRights;
    const rights = adminRights(entity.adminRights, !!entity.creator);
    return {
      platformChatId: markedId(entity), type: 'group', title: entity.title, isAdmin,
      canSend: isAdmin || !entity.defaultBannedRights?.sendMessages, rights,
    };
  }
  const channel = entity as Api.Channel;
  const type = channel.megagroup ? 'supergroup' : 'channel';
  const part = await c.invoke(new Api.channels.GetParticipant({
    channel: utils.getInputChannel(channel), participant: new Api.InputPeerSelf(),
  }), 'channels.getParticipant');
  const p = part.participant;
  if (p instanceof Api.ChannelParticipantLeft) throw tgError('TG_NOT_MEMBER', 'The connection is not a member of this chat');
  const creator = p instanceof Api.ChannelParticipantCreator;
  const admin = p instanceof Api.ChannelParticipantAdmin ? p.adminRights : undefined;
  const banned = p instanceof Api.ChannelParticipantBanned ? p.bannedRights : undefined;
  if (banned?.viewMessages) throw tgError('TG_NOT_MEMBER', 'The connection was removed from this chat');
  const isAdmin = creator || !!admin;
  const rights = adminRights(admin, creator);
  const canSend = type === 'channel'
    ? creator || !!admin?.postMessages
    : isAdmin || !(banned?.sendMessages || channel.defaultBannedRights?.sendMessages);
  return {
    platformChatId: markedId(channel), type, title: channel.title,
    ...(channel.username ? { username: channel.username } : {}), isAdmin, canSend, rights,
  };
}

/** With requireAdmin, a chat where the connection is not an admin is refused before anything is stored. */
export function requireAdmin(check: ChatCheck, opts: { requireAdmin?: boolean } = {}): ChatCheck {
  if (opts.requireAdmin && !check.isAdmin) throw tgError('TG_NOT_ADMIN', 'the connection is not an admin of this chat');
  return check;
}
