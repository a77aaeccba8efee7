import type { World } from '../../world/world.ts';
import type { AuthKeyRec, UserRec } from '../../world/types.ts';
import type { RpcAnswer } from '../tl.ts';

// What an RPC handler sees: the world, the calling auth key, the DC it came to (id and address).

export interface MethodContext {
  world: World;
  authKey: AuthKeyRec;
  dc: { id: number; host: string; port: number };
  /** The logged-in user, or AUTH_KEY_UNREGISTERED; USER_MIGRATE_X when the account lives on another DC. */
  user(): UserRec;
  /** The logged-in user on whatever DC (keys imported on a DC that is not the account's home). */
  authorised(): UserRec;
}

// Requests arrive as GramJS Api request objects; each handler narrows its own.

export type Method = (ctx: MethodContext, request: any) => RpcAnswer | Promise<RpcAnswer>;
