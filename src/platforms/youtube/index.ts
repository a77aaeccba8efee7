import Joi from 'joi';
import { AppError, isAppError } from '../../errors.ts';
import { MACHINE_VERSION } from '../../../machines/oauth.machine.ts';
import type { ConnectionKind, NewConnectionPlan, PlatformAdapter } from '../adapter.ts';
import { oauthInput, providedOAuthMachine } from '../oauth-kind.ts';
import { youtubeDriver } from './driver.ts';
import { GoogleClient } from './google.ts';
import { YoutubeQuota } from './quota.ts';

// YouTube as an adapter of the platform interface: a channel connected with Google OAuth (web-server
// flow, offline access, PKCE), a message is a video uploaded with the resumable protocol
// (docs/platforms/youtube.md). Codes are the shared PLATFORM_* ones (API.md "OAuth platforms").

export interface YoutubeOptions {
  clientId: string;
  clientSecret: string;
  /** One base for authorize, token and revoke (the emulator); unset: Google's hosts. */
  oauthUrl?: string;
  apiUrl: string;
  uploadUrl: string;
  quota: { unitsPerDay: number; insertUnits: number; uploadsPerDay: number };
  chunkBytes?: number;
  processingPollMs?: number;
  processingMaxMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

/** YouTube takes files up to 256 GB (help: "Upload videos longer than 15 minutes"); UPLOAD_MAX_MB is the service's own cap. */
const MAX_VIDEO_BYTES = 256 * 1024 ** 3;

const createSchema = Joi.object({
  platform: Joi.string().valid('youtube').required(),
  kind: Joi.string().valid('account').required(),
  redirectUri: Joi.string().uri({ scheme: ['https', 'http'] }).max(2048).description('where the browser goes after consent (default: the console)'),
}).label('CreateYoutubeConnection').example({ platform: 'youtube', kind: 'account' });

export function youtubeAdapter(o: YoutubeOptions): PlatformAdapter {
  const google = new GoogleClient({
    clientId: o.clientId, clientSecret: o.clientSecret,
    oauthUrl: o.oauthUrl ?? 'https://oauth2.googleapis.com',
    ...(o.oauthUrl ? {} : { authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth' }),
    apiUrl: o.apiUrl, uploadUrl: o.uploadUrl, timeoutMs: o.timeoutMs ?? 30_000,
  });
  const quota = new YoutubeQuota({ unitsPerDay: o.quota.unitsPerDay, insertUnits: o.quota.insertUnits, insertsPerDay: o.quota.uploadsPerDay || null }, o.now);
  const account: ConnectionKind = {
    kind: 'account',
    machineVersion: MACHINE_VERSION,
    machine: providedOAuthMachine,
    input: oauthInput,
    driver: (ctx) => youtubeDriver(ctx, {
      google, quota, chunkBytes: o.chunkBytes ?? 8 * 1024 * 1024, processingPollMs: o.processingPollMs ?? 5000,
      processingMaxMs: o.processingMaxMs ?? 30 * 60_000, privacy: 'private', ...(o.now ? { now: o.now } : {}),
    }),
    loginSteps: ['authorize'],
    oauth: google,
    send: {
      // The title is the text's first line (≤ 100), the description the text (≤ 5,000 bytes).
      text: { maxLength: 5000, parseModes: [] },
      // A retried upload continues its stored session (driver.ts): it never makes a second video.
      resendSafe: true,
      // Inserts are limited by the daily quota (refused before the call), not by a rate: one at a time per channel.
      pacing: () => ({ chat: [], connection: [{ n: 1, ms: 1000 }] }),
      media: { types: { video: { maxBytes: MAX_VIDEO_BYTES } }, captionMaxLength: 5000 },
    },
  };
  return {
    name: 'youtube',
    kinds: [account],
    errorCodes: {},
    createSchema,
    async prepare(body): Promise<NewConnectionPlan> {
      return { kind: String(body.kind), secrets: {}, login: { method: 'oauth' }, audit: { platform: 'youtube' } };
    },
    classify(err) {
      if (isAppError(err)) return err;
      if (err instanceof TypeError) return new AppError('PLATFORM_UNAVAILABLE', 'YouTube did not answer', { cause: err });
      return undefined;
    },
  };
}

export { YoutubeQuota };
