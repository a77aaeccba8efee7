import type { World } from '../world/world.ts';
import { botApiChatId } from '../world/world.ts';
import type { Account, ChatRec, MediaRec, MemberRec, MessageRec } from '../world/types.ts';

// World records → Bot API JSON objects (https://core.telegram.org/bots/api#available-types).

export function userJson(acc: Account): Record<string, unknown> {
  return { id: acc.id, is_bot: acc.kind === 'bot', first_name: acc.firstName, ...(acc.username ? { username: acc.username } : {}) };
}

export function chatJson(chat: ChatRec): Record<string, unknown> {
  return { id: botApiChatId(chat), type: chat.kind, title: chat.title, ...(chat.username ? { username: chat.username } : {}) };
}

export function privateChatJson(acc: Account): Record<string, unknown> {
  return { id: acc.id, type: 'private', first_name: acc.firstName, ...(acc.username ? { username: acc.username } : {}) };
}

const adminRightNames = [
  'can_manage_chat', 'can_change_info', 'can_post_messages', 'can_edit_messages', 'can_delete_messages',
  'can_invite_users', 'can_restrict_members', 'can_pin_messages', 'can_promote_members', 'can_manage_video_chats',
];

export function memberJson(world: World, member: MemberRec | undefined, userId: number): Record<string, unknown> {
  const user = userJson(world.accounts.get(userId)!);
  if (!member) return { user, status: 'left' };
  if (member.role === 'member') return { user, status: 'member' };
  const rights = Object.fromEntries(adminRightNames.map((n) => [n, member.role === 'creator' || (member.rights[n] ?? n !== 'can_promote_members')]));
  return member.role === 'creator'
    ? { user, status: 'creator', is_anonymous: false }
    : { user, status: 'administrator', can_be_edited: false, is_anonymous: false, ...rights };
}

/** A file's Bot API file_id: its type and digest, so that sending the id again finds the same file. */
export const fileIdOf = (f: MediaRec): string => Buffer.from(`${f.type}:${f.sha256}:${f.size}`).toString('base64url');

/** The Bot API object of a file (PhotoSize array, Document, Video, …) under the message field of its type. */
export function mediaJson(f: MediaRec): Record<string, unknown> {
  const file = { file_id: fileIdOf(f), file_unique_id: f.sha256.slice(0, 16), file_size: f.size };
  const named = { ...(f.filename ? { file_name: f.filename } : {}), ...(f.mimeType ? { mime_type: f.mimeType } : {}) };
  switch (f.type) {
    case 'photo': return { photo: [{ ...file, width: 1280, height: 720 }] };
    case 'video': return { video: { ...file, ...named, width: 0, height: 0, duration: 0 } };
    case 'audio': return { audio: { ...file, ...named, duration: 0 } };
    case 'voice': return { voice: { ...file, ...(f.mimeType ? { mime_type: f.mimeType } : {}), duration: 0 } };
    // Telegram sends an animation as both fields, for clients that know only documents.
    case 'animation': return { animation: { ...file, ...named, width: 0, height: 0, duration: 0 }, document: { ...file, ...named } };
    default: return { document: { ...file, ...named } };
  }
}

/** A message as the bot sees it: `from` a user, in a private chat with the other party or in a group/channel. */
export function messageJson(world: World, m: MessageRec, botId: number): Record<string, unknown> {
  const from = world.accounts.get(m.fromId)!;
  const base = {
    message_id: m.id, date: m.date,
    ...(m.media ? { ...mediaJson(m.media), ...(m.text ? { caption: m.text } : {}) } : { text: m.text }),
    ...(m.editedAt !== undefined ? { edit_date: m.editedAt } : {}),
  };
  if (m.peer.type === 'user') {
    const other = m.fromId === botId ? world.accounts.get(m.peer.id)! : from;
    return { ...base, from: userJson(from), chat: privateChatJson(other) };
  }
  if (m.peer.chat.kind === 'channel') return { ...base, sender_chat: chatJson(m.peer.chat), chat: chatJson(m.peer.chat) };
  return { ...base, from: userJson(from), chat: chatJson(m.peer.chat) };
}

export function updateJson(world: World, u: { updateId: number; message: MessageRec }, botId: number): Record<string, unknown> {
  const isPost = u.message.peer.type === 'chat' && u.message.peer.chat.kind === 'channel';
  return { update_id: u.updateId, [isPost ? 'channel_post' : 'message']: messageJson(world, u.message, botId) };
}
