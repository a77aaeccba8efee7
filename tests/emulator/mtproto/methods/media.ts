import { Api } from 'telegram';
import { TgError, type MediaRec, type MediaType, type MessageRec, type PeerRef, type UserRec } from '../../world/types.ts';
import { apiMessage, entitiesOf, ptsIn, sentUpdates } from '../peers.ts';
import { native } from '../tl.ts';
import type { Method, MethodContext } from './context.ts';
import { entityRec } from './messages.ts';
import { resolveChannel, resolvePeer } from './resolve.ts';

// Files, media messages, edits and deletes over MTProto, as core.telegram.org/api/files and the
// method pages describe them: parts uploaded with upload.saveFilePart / saveBigFilePart, then
// messages.sendMedia with an uploaded photo or document (random_id dedupe as for text);
// messages.editMessage; messages.deleteMessages (private chats, basic groups) and
// channels.deleteMessages. The world applies Telegram's rules (world.ts).

// Telegram compresses and stores photos up to 10 MB; larger ones answer this (send them as documents).
const PHOTO_MAX = 10 * 1024 * 1024;

const saveFilePart: Method = (ctx, req: Api.upload.SaveFilePart) => {
  ctx.world.files.save(ctx.user().id, native(req.fileId), req.filePart, req.bytes, false);
  return true;
};

const saveBigFilePart: Method = (ctx, req: Api.upload.SaveBigFilePart) => {
  ctx.world.files.save(ctx.user().id, native(req.fileId), req.filePart, req.bytes, true, req.fileTotalParts);
  return true;
};

/** The type a client's InputMedia asks for, from its class and document attributes. */
function mediaTypeOf(media: Api.TypeInputMedia): { type: MediaType; file: Api.TypeInputFile; mimeType?: string; filename?: string } {
  if (media instanceof Api.InputMediaUploadedPhoto) return { type: 'photo', file: media.file, mimeType: 'image/jpeg' };
  if (!(media instanceof Api.InputMediaUploadedDocument)) throw new TgError(400, 'MEDIA_INVALID');
  const attrs = media.attributes ?? [];
  const audio = attrs.find((a): a is Api.DocumentAttributeAudio => a instanceof Api.DocumentAttributeAudio);
  const named = attrs.find((a): a is Api.DocumentAttributeFilename => a instanceof Api.DocumentAttributeFilename);
  const type: MediaType = audio ? (audio.voice ? 'voice' : 'audio')
    : attrs.some((a) => a instanceof Api.DocumentAttributeAnimated) ? 'animation'
      : attrs.some((a) => a instanceof Api.DocumentAttributeVideo) && !media.forceFile ? 'video'
        : 'document';
  return { type, file: media.file, mimeType: media.mimeType, ...(named ? { filename: named.fileName } : {}) };
}

function uploadedFile(ctx: MethodContext, user: UserRec, media: Api.TypeInputMedia): { rec: MediaRec; fileId: bigint } {
  const { type, file, mimeType, filename } = mediaTypeOf(media);
  if (!(file instanceof Api.InputFile) && !(file instanceof Api.InputFileBig)) throw new TgError(400, 'MEDIA_INVALID');
  const fileId = native(file.id);
  const md5 = file instanceof Api.InputFile && file.md5Checksum ? file.md5Checksum : undefined;
  const { size, sha256 } = ctx.world.files.assemble(user.id, fileId, file.parts, file instanceof Api.InputFileBig, md5);
  if (type === 'photo' && size > PHOTO_MAX) throw new TgError(400, 'PHOTO_SAVE_FILE_INVALID');
  const name = filename ?? (file.name || undefined);
  return { rec: { type, size, sha256, ...(name ? { filename: name } : {}), ...(mimeType ? { mimeType } : {}) }, fileId };
}

const sendMedia: Method = (ctx, req: Api.messages.SendMedia) => {
  const sender = ctx.user();
  const peer = resolvePeer(ctx, req.peer);
  const randomId = native(req.randomId!);
  // A resend with a random_id Telegram has seen gets the first message back, file or no file.
  const seen = ctx.world.sentWith(sender, randomId.toString());
  if (seen) return sentUpdates(ctx.world, seen, sender, randomId);
  const { rec, fileId } = uploadedFile(ctx, sender, req.media);
  const { message } = ctx.world.send(sender, peer, req.message ?? '', randomId.toString(), req.entities?.map(entityRec), rec);
  ctx.world.files.drop(sender.id, fileId);
  return sentUpdates(ctx.world, message, sender, randomId);
};

/** updateEditMessage / updateEditChannelMessage in Updates, as Telegram answers an edit. */
function editedUpdates(ctx: MethodContext, m: MessageRec, viewer: UserRec): Api.Updates {
  const inChannel = m.peer.type === 'chat' && m.peer.chat.kind !== 'group';
  const message = apiMessage(m, viewer.id);
  const update = inChannel
    ? new Api.UpdateEditChannelMessage({ message, pts: (m.peer as { chat: { pts: number } }).chat.pts, ptsCount: 1 })
    : new Api.UpdateEditMessage({ message, pts: ptsIn(viewer, m), ptsCount: 1 });
  const { users, chats } = entitiesOf(ctx.world, m, viewer.id);
  return new Api.Updates({ updates: [update], users, chats, date: m.editedAt ?? m.date, seq: 0 });
}

const editMessage: Method = (ctx, req: Api.messages.EditMessage) => {
  const user = ctx.user();
  const peer = resolvePeer(ctx, req.peer);
  if (req.media) throw new TgError(400, 'MEDIA_INVALID'); // replacing a file is not emulated
  const current = ctx.world.findMessage(user, peer, req.id);
  // Without `message` the text stays: nothing changes, as Telegram answers.
  const text = req.message ?? current.text;
  const m = ctx.world.editMessage(user, peer, req.id, text, { via: 'mtproto' }, req.entities?.map(entityRec));
  return editedUpdates(ctx, m, user);
};

function affected(pts: number, count: number): Api.messages.AffectedMessages {
  return new Api.messages.AffectedMessages({ pts, ptsCount: count });
}

// messages.deleteMessages names ids of the caller's own box (private chats and basic groups): each is
// looked up in the conversation it belongs to.
const deleteMessages: Method = (ctx, req: Api.messages.DeleteMessages) => {
  const user = ctx.user();
  let n = 0;
  for (const id of req.id) {
    const m = ctx.world.boxMessage(user, id);
    if (!m) continue;
    const peer: PeerRef = m.peer.type === 'chat' ? m.peer : { type: 'user', id: m.fromId === user.id ? m.peer.id : m.fromId };
    n += ctx.world.deleteMessages(user, peer, [id], { via: 'mtproto' });
  }
  return affected(user.pts, n);
};

const deleteChannelMessages: Method = (ctx, req: Api.channels.DeleteMessages) => {
  const user = ctx.user();
  const chat = resolveChannel(ctx, req.channel);
  const n = ctx.world.deleteMessages(user, { type: 'chat', chat }, req.id, { via: 'mtproto' });
  return affected(chat.pts, n);
};

export const mediaMethods: Record<string, Method> = {
  'upload.SaveFilePart': saveFilePart,
  'upload.SaveBigFilePart': saveBigFilePart,
  'messages.SendMedia': sendMedia,
  'messages.EditMessage': editMessage,
  'messages.DeleteMessages': deleteMessages,
  'channels.DeleteMessages': deleteChannelMessages,
};
