import { anyDcMethods, authMethods, publicMethods } from './auth.ts';
import type { Method } from './context.ts';
import { helpMethods } from './help.ts';
import { mediaMethods } from './media.ts';
import { messageMethods } from './messages.ts';
import { peerMethods } from './peers.ts';
import { updatesMethods } from './updates.ts';

export type { Method, MethodContext } from './context.ts';
export { anyDcMethods, publicMethods };

/** Every RPC the emulator answers, keyed by GramJS class name ("messages.SendMessage"). */
export const methods: Readonly<Record<string, Method>> = {
  ...helpMethods, ...authMethods, ...updatesMethods, ...peerMethods, ...messageMethods, ...mediaMethods,
};
