import type { World } from '../../world/world.ts';
import type { AuthKeyRec, UserRec } from '../../world/types.ts';
import type { RpcAnswer } from '../tl.ts';

// What an RPC handler sees: the world, the calling auth key, the DC's own address (for help.getConfig).

export interface MethodContext {
  world: World;
  authKey: AuthKeyRec;
  dc: { host: string; port: number };
  /** The logged-in user, or AUTH_KEY_UNREGISTERED. */
  user(): UserRec;
}

// Requests arrive as GramJS Api request objects; each handler narrows its own.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Method = (ctx: MethodContext, request: any) => RpcAnswer | Promise<RpcAnswer>;
