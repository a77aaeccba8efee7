import { Api } from 'telegram';
import { sentUpdates } from '../peers.ts';
import { native } from '../tl.ts';
import type { Method } from './context.ts';
import { resolvePeer } from './resolve.ts';

// messages.sendMessage: the world applies dedupe, rights and pacing; a resend with the same
// random_id gets the original message back, like Telegram.

const sendMessage: Method = (ctx, req: Api.messages.SendMessage) => {
  const sender = ctx.user();
  const peer = resolvePeer(ctx, req.peer);
  const randomId = native(req.randomId!);
  const { message } = ctx.world.send(sender, peer, req.message, randomId.toString());
  return sentUpdates(ctx.world, message, sender, randomId);
};

export const messageMethods: Record<string, Method> = { 'messages.SendMessage': sendMessage };
