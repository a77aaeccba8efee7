import { Api } from 'telegram';
import { TgError, type Account, type ChatRec, type PeerRef } from '../../world/types.ts';
import { native } from '../tl.ts';
import type { MethodContext } from './context.ts';

// Input peers → world records. Access hashes are checked like Telegram does: a client can only
// address what the server has shown it (the hashes come from our own answers).

export function resolveUser(ctx: MethodContext, input: unknown): Account {
  if (input instanceof Api.InputUserSelf || input instanceof Api.InputPeerSelf) return ctx.user();
  if (input instanceof Api.InputUser || input instanceof Api.InputPeerUser) {
    const acc = ctx.world.accounts.get(Number(native(input.userId)));
    if (acc && acc.accessHash === native(input.accessHash)) return acc;
  }
  throw new TgError(400, input instanceof Api.InputPeerUser ? 'PEER_ID_INVALID' : 'USER_ID_INVALID');
}

export function resolveChannel(ctx: MethodContext, input: unknown): ChatRec {
  if (input instanceof Api.InputChannel || input instanceof Api.InputPeerChannel) {
    const chat = ctx.world.chats.get(Number(native(input.channelId)));
    if (chat && chat.kind !== 'group' && chat.accessHash === native(input.accessHash)) return chat;
  }
  throw new TgError(400, 'CHANNEL_INVALID');
}

export function resolvePeer(ctx: MethodContext, input: unknown): PeerRef {
  if (input instanceof Api.InputPeerSelf || input instanceof Api.InputPeerUser) return { type: 'user', id: resolveUser(ctx, input).id };
  if (input instanceof Api.InputPeerChat) {
    const chat = ctx.world.chats.get(Number(native(input.chatId)));
    if (chat?.kind === 'group') return { type: 'chat', chat };
  }
  if (input instanceof Api.InputPeerChannel) {
    try {
      return { type: 'chat', chat: resolveChannel(ctx, input) };
    } catch {
      // fall through: sendMessage and friends answer PEER_ID_INVALID for any unknown peer
    }
  }
  throw new TgError(400, 'PEER_ID_INVALID');
}
