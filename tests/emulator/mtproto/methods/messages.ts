import { Api } from 'telegram';
import type { EntityRec } from '../../world/types.ts';
import { sentUpdates } from '../peers.ts';
import { native } from '../tl.ts';
import type { Method } from './context.ts';
import { resolvePeer } from './resolve.ts';

// messages.sendMessage: the world applies dedupe, rights and pacing; a resend with the same
// random_id gets the original message back, like Telegram. The entities (bold, links …) are kept
// on the delivered message, named as the Bot API names them, so a test sees the formatting too.

const sendMessage: Method = (ctx, req: Api.messages.SendMessage) => {
  const sender = ctx.user();
  const peer = resolvePeer(ctx, req.peer);
  const randomId = native(req.randomId!);
  const entities = req.entities?.map(entityRec);
  const { message } = ctx.world.send(sender, peer, req.message, randomId.toString(), entities);
  return sentUpdates(ctx.world, message, sender, randomId);
};

// The Bot API's MessageEntity.type for each MTProto class; others by their own name (MessageEntityHashtag → hashtag).
const botApiTypes: Record<string, string> = {
  MessageEntityStrike: 'strikethrough', MessageEntityTextUrl: 'text_link', MessageEntityMentionName: 'text_mention',
  InputMessageEntityMentionName: 'text_mention', MessageEntityCustomEmoji: 'custom_emoji', MessageEntityBankCard: 'bank_card_number',
};

export function entityRec(e: Api.TypeMessageEntity): EntityRec {
  const collapsed = e instanceof Api.MessageEntityBlockquote && e.collapsed;
  const type = collapsed ? 'expandable_blockquote'
    : botApiTypes[e.className] ?? e.className.replace(/^MessageEntity/, '').replace(/(?<=[a-z])(?=[A-Z])/g, '_').toLowerCase();
  const rec: EntityRec = { type, offset: e.offset, length: e.length };
  if (e instanceof Api.MessageEntityTextUrl) rec.url = e.url;
  if (e instanceof Api.MessageEntityPre && e.language) rec.language = e.language;
  if (e instanceof Api.MessageEntityCustomEmoji) rec.custom_emoji_id = native(e.documentId).toString();
  if (e instanceof Api.MessageEntityMentionName) rec.user_id = Number(native(e.userId));
  if (e instanceof Api.InputMessageEntityMentionName && e.userId instanceof Api.InputUser) rec.user_id = Number(native(e.userId.userId));
  return rec;
}

export const messageMethods: Record<string, Method> = { 'messages.SendMessage': sendMessage };
