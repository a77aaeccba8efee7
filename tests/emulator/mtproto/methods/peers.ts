import { Api } from 'telegram';
import { TgError, type Account, type ChatRec, type MessageRec } from '../../world/types.ts';
import { apiAdminRights, apiChat, apiMessage, apiUser } from '../peers.ts';
import { big } from '../tl.ts';
import type { Method, MethodContext } from './context.ts';
import { resolveChannel, resolveUser } from './resolve.ts';

// Lookups: users, usernames, channels, participants, basic groups, dialogs.

const getUsers: Method = (ctx, req: Api.users.GetUsers) => {
  const viewer = ctx.user();
  const found: Account[] = [];
  for (const input of req.id) {
    try {
      found.push(resolveUser(ctx, input));
    } catch {
      // Telegram leaves unknown users out of the vector
    }
  }
  return found.map((a) => apiUser(a, viewer.id));
};

const getFullUser: Method = (ctx, req: Api.users.GetFullUser) => {
  const viewer = ctx.user();
  const acc = resolveUser(ctx, req.id);
  return new Api.users.UserFull({
    fullUser: new Api.UserFull({
      id: big(acc.id), settings: new Api.PeerSettings({}), notifySettings: new Api.PeerNotifySettings({}), commonChatsCount: 0,
      botInfo: acc.kind === 'bot' ? new Api.BotInfo({ userId: big(acc.id), description: '' }) : undefined,
    }),
    chats: [], users: [apiUser(acc, viewer.id)],
  });
};

const resolveUsername: Method = (ctx, req: Api.contacts.ResolveUsername) => {
  const viewer = ctx.user();
  if (!/^@?[A-Za-z][A-Za-z0-9_]{3,31}$/.test(req.username)) throw new TgError(400, 'USERNAME_INVALID');
  const found = ctx.world.byName(req.username);
  if (!found) throw new TgError(400, 'USERNAME_NOT_OCCUPIED');
  if (found.kind === 'user' || found.kind === 'bot') {
    return new Api.contacts.ResolvedPeer({ peer: new Api.PeerUser({ userId: big(found.id) }), chats: [], users: [apiUser(found, viewer.id)] });
  }
  return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: big(found.id) }), chats: [apiChat(found, viewer.id)], users: [] });
};

const getChannels: Method = (ctx, req: Api.channels.GetChannels) => {
  const viewer = ctx.user();
  return new Api.messages.Chats({ chats: req.id.map((input) => apiChat(resolveChannel(ctx, input), viewer.id)) });
};

function participant(chat: ChatRec, userId: number, viewerId: number): Api.TypeChannelParticipant {
  const m = chat.members.get(userId);
  if (!m) throw new TgError(400, 'USER_NOT_PARTICIPANT');
  if (m.role === 'creator') return new Api.ChannelParticipantCreator({ userId: big(userId), adminRights: apiAdminRights('creator', m.rights) });
  if (m.role === 'admin') {
    const creator = [...chat.members.values()].find((x) => x.role === 'creator');
    return new Api.ChannelParticipantAdmin({
      // In layer 198 `self` and `inviter_id` share flags.1: self without inviter_id misaligns the reader.
      userId: big(userId), self: userId === viewerId, ...(userId === viewerId ? { inviterId: big(creator?.id ?? userId) } : {}),
      promotedBy: big(creator?.id ?? userId), date: m.date,
      adminRights: apiAdminRights('admin', m.rights),
    });
  }
  return new Api.ChannelParticipant({ userId: big(userId), date: m.date });
}

const getParticipant: Method = (ctx, req: Api.channels.GetParticipant) => {
  const viewer = ctx.user();
  const chat = resolveChannel(ctx, req.channel);
  const acc = resolveUser(ctx, req.participant);
  return new Api.channels.ChannelParticipant({
    participant: participant(chat, acc.id, viewer.id), chats: [apiChat(chat, viewer.id)], users: [apiUser(acc, viewer.id)],
  });
};

const getFullChannel: Method = (ctx, req: Api.channels.GetFullChannel) => {
  const viewer = ctx.user();
  const chat = resolveChannel(ctx, req.channel);
  return new Api.messages.ChatFull({
    fullChat: new Api.ChannelFull({
      id: big(chat.id), about: '', participantsCount: chat.members.size, readInboxMaxId: 0, readOutboxMaxId: 0, unreadCount: 0,
      chatPhoto: new Api.PhotoEmpty({ id: big(0) }), notifySettings: new Api.PeerNotifySettings({}), botInfo: [], pts: chat.pts,
    }),
    chats: [apiChat(chat, viewer.id)], users: [],
  });
};

const checkChatInvite: Method = (ctx, req: Api.messages.CheckChatInvite) => {
  const viewer = ctx.user();
  const chat = ctx.world.chatByInvite(req.hash);
  if (!chat) throw new TgError(400, 'INVITE_HASH_INVALID');
  if (chat.members.has(viewer.id)) return new Api.ChatInviteAlready({ chat: apiChat(chat, viewer.id) });
  return new Api.ChatInvite({
    channel: chat.kind !== 'group', broadcast: chat.kind === 'channel', megagroup: chat.kind === 'supergroup', title: chat.title,
    photo: new Api.PhotoEmpty({ id: big(0) }), participantsCount: chat.members.size, color: 0,
  });
};

function basicGroup(ctx: MethodContext, id: { toString(): string }): ChatRec {
  const chat = ctx.world.chats.get(Number(id.toString()));
  if (!chat || chat.kind !== 'group') throw new TgError(400, 'PEER_ID_INVALID');
  return chat;
}

const getChats: Method = (ctx, req: Api.messages.GetChats) => {
  const viewer = ctx.user();
  return new Api.messages.Chats({ chats: req.id.map((id) => apiChat(basicGroup(ctx, id), viewer.id)) });
};

const getFullChat: Method = (ctx, req: Api.messages.GetFullChat) => {
  const viewer = ctx.user();
  const chat = basicGroup(ctx, req.chatId);
  const participants = [...chat.members.values()].map((m) =>
    m.role === 'creator' ? new Api.ChatParticipantCreator({ userId: big(m.id) })
      : m.role === 'admin' ? new Api.ChatParticipantAdmin({ userId: big(m.id), inviterId: big(m.id), date: m.date })
        : new Api.ChatParticipant({ userId: big(m.id), inviterId: big(m.id), date: m.date }));
  const users = [...chat.members.keys()].map((id) => ctx.world.accounts.get(id)!).map((a) => apiUser(a, viewer.id));
  return new Api.messages.ChatFull({
    fullChat: new Api.ChatFull({
      id: big(chat.id), about: '', notifySettings: new Api.PeerNotifySettings({}),
      participants: new Api.ChatParticipants({ chatId: big(chat.id), participants, version: 1 }),
    }),
    chats: [apiChat(chat, viewer.id)], users,
  });
};

function createdMessage(chat: ChatRec, peer: Api.TypePeer): Api.MessageService {
  const creator = [...chat.members.values()].find((m) => m.role === 'creator');
  return new Api.MessageService({
    id: chat.createdMessageId, peerId: peer, date: chat.date, post: chat.kind === 'channel',
    fromId: creator && chat.kind !== 'channel' ? new Api.PeerUser({ userId: big(creator.id) }) : undefined,
    action: chat.kind === 'group'
      ? new Api.MessageActionChatCreate({ title: chat.title, users: [...chat.members.keys()].map((id) => big(id)) })
      : new Api.MessageActionChannelCreate({ title: chat.title }),
  });
}

const getDialogs: Method = (ctx, req: Api.messages.GetDialogs) => {
  const viewer = ctx.user();
  const tops: MessageRec[] = [];
  const created: Api.MessageService[] = [];
  const dialogs: Api.Dialog[] = [];
  const dialog = (peer: Api.TypePeer, top: MessageRec | undefined, chat?: ChatRec) => {
    if (top) tops.push(top);
    // GramJS's Dialog needs its top message: an empty chat shows its creation service message.
    else if (chat) created.push(createdMessage(chat, peer));
    dialogs.push(new Api.Dialog({
      peer, topMessage: top?.id ?? chat?.createdMessageId ?? 0, readInboxMaxId: 0, readOutboxMaxId: 0, unreadCount: 0, unreadMentionsCount: 0,
      unreadReactionsCount: 0, notifySettings: new Api.PeerNotifySettings({}),
    }));
  };
  // Private chats: the newest box entry per peer.
  const privateTops = new Map<number, MessageRec>();
  for (const { message: m } of viewer.box) {
    if (m.peer.type === 'user') privateTops.set(m.fromId === viewer.id ? m.peer.id : m.fromId, m);
  }
  for (const [peerId, m] of privateTops) dialog(new Api.PeerUser({ userId: big(peerId) }), m);
  const chats = [...ctx.world.chats.values()].filter((c) => c.members.has(viewer.id));
  for (const c of chats) {
    dialog(c.kind === 'group' ? new Api.PeerChat({ chatId: big(c.id) }) : new Api.PeerChannel({ channelId: big(c.id) }), c.last, c);
  }
  const limit = req.limit > 0 ? req.limit : 100;
  const userIds = new Set([viewer.id, ...privateTops.keys(), ...tops.map((m) => m.fromId)]);
  return new Api.messages.Dialogs({
    dialogs: dialogs.slice(0, limit),
    messages: [...tops.map((m) => apiMessage(m, viewer.id)), ...created],
    chats: chats.map((c) => apiChat(c, viewer.id)),
    users: [...userIds].map((id) => ctx.world.accounts.get(id)).filter((a) => a !== undefined).map((a) => apiUser(a, viewer.id)),
  });
};

export const peerMethods: Record<string, Method> = {
  'users.GetUsers': getUsers,
  'users.GetFullUser': getFullUser,
  'contacts.ResolveUsername': resolveUsername,
  'channels.GetChannels': getChannels,
  'channels.GetParticipant': getParticipant,
  'channels.GetFullChannel': getFullChannel,
  'messages.GetChats': getChats,
  'messages.GetFullChat': getFullChat,
  'messages.GetDialogs': getDialogs,
  'messages.CheckChatInvite': checkChatInvite,
};
