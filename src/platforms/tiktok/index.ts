import Joi from 'joi';
import { MACHINE_VERSION } from '../../../machines/oauth.machine.ts';
import { AppError, isAppError } from '../../errors.ts';
import type { ConnectionKind, NewConnectionPlan, PlatformAdapter } from '../adapter.ts';
import { oauthInput, providedOAuthMachine } from '../oauth-kind.ts';
import { TiktokClient } from './client.ts';
import { tiktokDriver } from './driver.ts';
import { tiktokWebhooks } from './webhooks.ts';

// TikTok as an adapter of the platform interface: a creator connected with Login Kit v2 (PKCE, rotating
// refresh tokens), a message is a Direct Post of a video through the Content Posting API
// (docs/platforms/tiktok.md). Codes are the shared PLATFORM_* ones.

export interface TiktokOptions {
  clientKey: string;
  clientSecret: string;
  oauthUrl: string;
  apiUrl: string;
  chunkBytes?: number;
  /** SELF_ONLY until the app passed TikTok's audit (unaudited clients' posts are private). */
  privacy?: string;
  initsPerMinute?: number;
  statusPollMs?: number;
  statusMaxMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

/** Media Transfer Guide: up to 4 GB per video. */
const MAX_VIDEO_BYTES = 4 * 1024 ** 3;

const createSchema = Joi.object({
  platform: Joi.string().valid('tiktok').required(),
  kind: Joi.string().valid('account').required(),
  redirectUri: Joi.string().uri({ scheme: ['https', 'http'] }).max(2048).description('where the browser goes after consent (default: the console)'),
}).label('CreateTiktokConnection').example({ platform: 'tiktok', kind: 'account' });

export function tiktokAdapter(o: TiktokOptions): PlatformAdapter {
  const client = new TiktokClient({ clientKey: o.clientKey, clientSecret: o.clientSecret, oauthUrl: o.oauthUrl, apiUrl: o.apiUrl, timeoutMs: o.timeoutMs ?? 30_000 });
  const initsPerMinute = o.initsPerMinute ?? 6;
  const account: ConnectionKind = {
    kind: 'account',
    machineVersion: MACHINE_VERSION,
    machine: providedOAuthMachine,
    input: oauthInput,
    driver: (ctx) => tiktokDriver(ctx, {
      client, chunkBytes: o.chunkBytes ?? 10 * 1024 * 1024, privacy: o.privacy ?? 'SELF_ONLY', initsPerMinute,
      statusPollMs: o.statusPollMs ?? 3000, statusMaxMs: o.statusMaxMs ?? 10 * 60_000, ...(o.now ? { now: o.now } : {}),
    }),
    loginSteps: ['authorize'],
    oauth: client,
    send: {
      // The text is the post's title (caption), up to 2,200 characters.
      text: { maxLength: 2200, parseModes: [] },
      // A retried post continues its stored publish (driver.ts): never a second post.
      resendSafe: true,
      // 6 inits a minute per user token (Direct Post reference); the driver also refuses the 7th.
      pacing: () => ({ chat: [], connection: [{ n: initsPerMinute, ms: 60_000 }] }),
      media: { types: { video: { maxBytes: MAX_VIDEO_BYTES } }, captionMaxLength: 2200 },
    },
  };
  return {
    name: 'tiktok',
    kinds: [account],
    errorCodes: {},
    createSchema,
    // authorization.removed → the creator's connections go to error (src/platforms/tiktok/webhooks.ts).
    webhooks: tiktokWebhooks({ clientKey: o.clientKey, clientSecret: o.clientSecret, ...(o.now ? { now: o.now } : {}) }),
    async prepare(body): Promise<NewConnectionPlan> {
      return { kind: String(body.kind), secrets: {}, login: { method: 'oauth' }, audit: { platform: 'tiktok' } };
    },
    classify(err) {
      if (isAppError(err)) return err;
      if (err instanceof TypeError) return new AppError('PLATFORM_UNAVAILABLE', 'TikTok did not answer', { cause: err });
      return undefined;
    },
  };
}
