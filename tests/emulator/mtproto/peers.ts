import { Api } from 'telegram';
import type { World } from '../world/world.ts';
import type { Account, ChatRec, MediaRec, MessageRec, Rights, UserRec } from '../world/types.ts';
import { big } from './tl.ts';

// World records → GramJS Api objects, as one viewer sees them (self flag, out flag, peer of a
// private message, the viewer's own rights in a chat).

export function apiUser(acc: Account, viewerId: number | undefined): Api.User {
  const self = acc.id === viewerId;
  return new Api.User({
    id: big(acc.id),
    accessHash: big(acc.accessHash),
    self,
    bot: acc.kind === 'bot',
    botInfoVersion: acc.kind === 'bot' ? 1 : undefined,
    firstName: acc.firstName,
    username: acc.username,
    // Telegram shows the phone number to its owner (and contacts); the emulator has no contacts.
    phone: acc.kind === 'user' && self ? acc.phone : undefined,
    status: acc.kind === 'user' ? new Api.UserStatusRecently({}) : undefined,
  });
}

const adminRightsKeys: Array<[keyof Api.ChatAdminRights, string]> = [
  ['changeInfo', 'can_change_info'], ['postMessages', 'can_post_messages'], ['editMessages', 'can_edit_messages'],
  ['deleteMessages', 'can_delete_messages'], ['banUsers', 'can_restrict_members'], ['inviteUsers', 'can_invite_users'],
  ['pinMessages', 'can_pin_messages'], ['addAdmins', 'can_promote_members'], ['manageCall', 'can_manage_video_chats'],
  ['other', 'can_manage_chat'],
];

/** Bot API style rights → ChatAdminRights; an admin gets every right not explicitly false except promoting. */
export function apiAdminRights(role: 'creator' | 'admin', rights: Rights): Api.ChatAdminRights {
  const fields: Record<string, boolean> = {};
  for (const [field, name] of adminRightsKeys) {
    fields[field] = role === 'creator' || (rights[name] ?? name !== 'can_promote_members');
  }
  return new Api.ChatAdminRights(fields);
}

export function apiChat(chat: ChatRec, viewerId: number | undefined): Api.Chat | Api.Channel {
  const member = viewerId === undefined ? undefined : chat.members.get(viewerId);
  const adminRights = member && member.role !== 'member' ? apiAdminRights(member.role, member.rights) : undefined;
  if (chat.kind === 'group') {
    return new Api.Chat({
      id: big(chat.id), title: chat.title, photo: new Api.ChatPhotoEmpty(), participantsCount: chat.members.size,
      date: chat.date, version: 1, creator: member?.role === 'creator', left: !member, adminRights,
    });
  }
  return new Api.Channel({
    id: big(chat.id), accessHash: big(chat.accessHash), title: chat.title, username: chat.username,
    photo: new Api.ChatPhotoEmpty(), date: chat.date, broadcast: chat.kind === 'channel', megagroup: chat.kind === 'supergroup',
    creator: member?.role === 'creator', left: !member, adminRights, participantsCount: chat.members.size,
  });
}

export function apiPeerOf(m: MessageRec, viewerId: number): Api.TypePeer {
  if (m.peer.type === 'user') return new Api.PeerUser({ userId: big(m.fromId === viewerId ? m.peer.id : m.fromId) });
  return m.peer.chat.kind === 'group' ? new Api.PeerChat({ chatId: big(m.peer.chat.id) }) : new Api.PeerChannel({ channelId: big(m.peer.chat.id) });
}

export function apiMessage(m: MessageRec, viewerId: number): Api.Message {
  const broadcast = m.peer.type === 'chat' && m.peer.chat.kind === 'channel';
  return new Api.Message({
    id: m.id, out: m.fromId === viewerId, post: broadcast,
    fromId: broadcast ? undefined : new Api.PeerUser({ userId: big(m.fromId) }),
    peerId: apiPeerOf(m, viewerId), date: m.date, message: m.text,
    ...(m.media ? { media: apiMedia(m.media, m.id, m.date) } : {}),
    ...(m.editedAt !== undefined ? { editDate: m.editedAt } : {}),
  });
}

/**
 * A message's file as a client sees it: a photo (one size, 1280×720: the emulator keeps no pixels) or
 * a document with the attributes of its type. Ids derive from the message; nothing is downloadable.
 */
export function apiMedia(f: MediaRec, messageId: number, date: number): Api.TypeMessageMedia {
  const id = big(BigInt(messageId) * 1000n + BigInt(f.size % 1000));
  const common = { id, accessHash: big(BigInt(`0x${f.sha256.slice(0, 15)}`)), fileReference: Buffer.from(f.sha256.slice(0, 16), 'hex'), date, dcId: 1 };
  if (f.type === 'photo') {
    return new Api.MessageMediaPhoto({ photo: new Api.Photo({ ...common, sizes: [new Api.PhotoSize({ type: 'y', w: 1280, h: 720, size: f.size })] }) });
  }
  const attributes: Api.TypeDocumentAttribute[] = [];
  if (f.filename) attributes.push(new Api.DocumentAttributeFilename({ fileName: f.filename }));
  if (f.type === 'video' || f.type === 'animation') attributes.push(new Api.DocumentAttributeVideo({ duration: 0, w: 0, h: 0 }));
  if (f.type === 'animation') attributes.push(new Api.DocumentAttributeAnimated());
  if (f.type === 'audio' || f.type === 'voice') attributes.push(new Api.DocumentAttributeAudio({ duration: 0, voice: f.type === 'voice' }));
  return new Api.MessageMediaDocument({
    ...(f.type === 'voice' ? { voice: true } : {}), ...(f.type === 'video' ? { video: true } : {}),
    document: new Api.Document({ ...common, mimeType: f.mimeType ?? 'application/octet-stream', size: big(f.size), attributes }),
  });
}

/** Users and chats a message mentions, for the users/chats vectors of Updates. */
export function entitiesOf(world: World, m: MessageRec, viewerId: number): { users: Api.User[]; chats: Array<Api.Chat | Api.Channel> } {
  const ids = new Set([m.fromId, viewerId]);
  if (m.peer.type === 'user') ids.add(m.peer.id);
  const users = [...ids].map((id) => world.accounts.get(id)).filter((a): a is Account => !!a).map((a) => apiUser(a, viewerId));
  return { users, chats: m.peer.type === 'chat' ? [apiChat(m.peer.chat, viewerId)] : [] };
}

/** The pts a user's box gave this message (recent messages are at the end). */
export function ptsIn(user: UserRec, m: MessageRec): number {
  for (let i = user.box.length - 1; i >= 0; i--) if (user.box[i]!.message === m) return user.box[i]!.pts;
  return user.pts;
}

/** What a recipient's client receives when a message arrives (pushed, not an answer). */
export function incomingUpdate(world: World, m: MessageRec, viewer: UserRec): Api.TypeUpdates {
  const date = m.date;
  if (m.peer.type === 'user') {
    return new Api.UpdateShortMessage({
      id: m.id, userId: big(m.fromId), message: m.text, pts: ptsIn(viewer, m), ptsCount: 1, date, out: false,
    });
  }
  const update = m.peer.chat.kind === 'group'
    ? new Api.UpdateNewMessage({ message: apiMessage(m, viewer.id), pts: ptsIn(viewer, m), ptsCount: 1 })
    : new Api.UpdateNewChannelMessage({ message: apiMessage(m, viewer.id), pts: m.peer.chat.pts, ptsCount: 1 });
  const { users, chats } = entitiesOf(world, m, viewer.id);
  return new Api.Updates({ updates: [update], users, chats, date, seq: 0 });
}

/**
 * updateShortSentMessage#9015e101 flags:# out:flags.1?true id:int pts:int pts_count:int date:int, written
 * by hand: it answers every private sendMessage, and GramJS's generic getBytes() (validation, flag
 * discovery) cost ~40 µs of the ~140 µs the DC spends per send.
 */
function shortSent(id: number, pts: number, date: number): Buffer {
  const b = Buffer.allocUnsafe(24);
  b.writeUInt32LE(Api.UpdateShortSentMessage.CONSTRUCTOR_ID, 0);
  b.writeUInt32LE(1 << 1, 4);
  b.writeInt32LE(id, 8);
  b.writeInt32LE(pts, 12);
  b.writeInt32LE(1, 16);
  b.writeInt32LE(date, 20);
  return b;
}

/** messages.sendMessage's answer for the sender, as Telegram shapes it per chat type (serialised). */
export function sentUpdates(world: World, m: MessageRec, sender: UserRec, randomId: bigint): Buffer {
  if (m.peer.type === 'user') return shortSent(m.id, ptsIn(sender, m), m.date);
  const update = m.peer.chat.kind === 'group'
    ? new Api.UpdateNewMessage({ message: apiMessage(m, sender.id), pts: ptsIn(sender, m), ptsCount: 1 })
    : new Api.UpdateNewChannelMessage({ message: apiMessage(m, sender.id), pts: m.peer.chat.pts, ptsCount: 1 });
  const { users, chats } = entitiesOf(world, m, sender.id);
  return new Api.Updates({
    updates: [new Api.UpdateMessageID({ id: m.id, randomId: big(randomId) }), update], users, chats, date: m.date, seq: 0,
  }).getBytes();
}
