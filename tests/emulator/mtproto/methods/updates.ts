import { Api } from 'telegram';
import { apiChat, apiMessage, apiUser } from '../peers.ts';
import type { Method } from './context.ts';

// updates.getState / getDifference over the user's box (private chats and basic groups, last 1000
// events). Channel messages are not replayed here, as in Telegram (they need getChannelDifference).

const state = (pts: number, date: number) => new Api.updates.State({ pts, qts: 0, date, seq: 0, unreadCount: 0 });

const getState: Method = (ctx) => state(ctx.user().pts, Math.floor(ctx.world.clock.now() / 1000));

const getDifference: Method = (ctx, req: Api.updates.GetDifference) => {
  const user = ctx.user();
  const date = Math.floor(ctx.world.clock.now() / 1000);
  const missed = user.box.filter((e) => e.pts > req.pts);
  if (missed.length === 0) return new Api.updates.DifferenceEmpty({ date, seq: 0 });
  const ids = new Set<number>();
  for (const { message } of missed) {
    ids.add(message.fromId);
    if (message.peer.type === 'user') ids.add(message.peer.id);
  }
  const chats = [...new Set(missed.flatMap(({ message: m }) => (m.peer.type === 'chat' ? [m.peer.chat] : [])))];
  return new Api.updates.Difference({
    newMessages: missed.map(({ message }) => apiMessage(message, user.id)),
    newEncryptedMessages: [], otherUpdates: [],
    chats: chats.map((c) => apiChat(c, user.id)),
    users: [...ids].map((id) => ctx.world.accounts.get(id)).filter((a) => a !== undefined).map((a) => apiUser(a, user.id)),
    state: state(user.pts, date),
  });
};

const getChannelDifference: Method = (_ctx, req: Api.updates.GetChannelDifference) =>
  new Api.updates.ChannelDifferenceEmpty({ final: true, pts: req.pts });

export const updatesMethods: Record<string, Method> = {
  'updates.GetState': getState,
  'updates.GetDifference': getDifference,
  'updates.GetChannelDifference': getChannelDifference,
};
