import { randomBytes } from 'node:crypto';
import { HttpFailure } from '../platforms/http-io.ts';
import type { EmulatorApps, EmulatorClock } from '../platforms/types.ts';
import { Quota, type QuotaSettings } from './quota.ts';

// What the YouTube emulator knows besides tokens and uploads: channels, the Google Cloud project's
// settings (publishing status of the consent screen, audit, quota), and Google's error envelope.

export interface Channel { id: string; username: string; title: string; createdAt: number }

export interface GoogleAppSettings extends QuotaSettings {
  /**
   * The OAuth consent screen's publishing status. Google: refresh tokens issued while the app is in
   * "Testing" (external user type) expire after 7 days; "production" ones live until revoked or unused 6 months.
   */
  publishingStatus: 'testing' | 'production';
  /** Audited by YouTube's API compliance team; unaudited projects' uploads are forced private (July 2020). */
  verified: boolean;
  /** videos.list reads of a new video before its processing reports `succeeded`. */
  processingPolls: number;
  /** Or this much emulator time after the upload, whichever comes first. */
  processingSeconds: number;
  /** A resumable session URI stays valid about a week (the resumable-upload guide). */
  sessionTtlSeconds: number;
}

export const defaultGoogleApp = (): GoogleAppSettings => ({
  publishingStatus: 'testing', verified: false, unitsPerDay: 10_000, insertsPerDay: 100, insertUnitCost: 0,
  processingPolls: 2, processingSeconds: 60, sessionTtlSeconds: 7 * 24 * 3600,
});

export class YoutubeState {
  readonly channels = new Map<string, Channel>();
  app: GoogleAppSettings = defaultGoogleApp();
  readonly quota = new Quota(() => this.app);

  constructor(readonly clock: EmulatorClock, readonly apps: EmulatorApps) {}

  addChannel(username: string): Channel {
    if ([...this.channels.values()].some((c) => c.username === username)) throw new HttpFailure(409, { error: `channel ${username} exists` });
    // Channel ids are "UC" + 22 base64url characters.
    const channel: Channel = { id: `UC${randomBytes(16).toString('base64url').slice(0, 22)}`, username, title: username, createdAt: this.clock.now() };
    this.channels.set(channel.id, channel);
    return channel;
  }

  /** By channel id or username. */
  findChannel(ref: unknown): Channel | undefined {
    if (typeof ref !== 'string' || !ref) return undefined;
    return this.channels.get(ref) ?? [...this.channels.values()].find((c) => c.username === ref);
  }

  reset(): void {
    this.channels.clear();
    this.app = defaultGoogleApp();
    this.quota.reset();
  }
}

/** Google's JSON error envelope (YouTube Data API v3, "Errors"): `error.errors[0].reason` is the stable part. */
export function googleError(code: number, reason: string, message: string, domain = 'youtube.api', extra: Record<string, string> = {}): HttpFailure {
  return new HttpFailure(code, { error: { code, message, errors: [{ message, domain, reason, ...extra }] } });
}

export const quotaExceeded = (): HttpFailure => googleError(403, 'quotaExceeded',
  'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.', 'youtube.quota');

export const authError = (): HttpFailure => googleError(401, 'authError',
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  'global', { location: 'Authorization', locationType: 'header' });

export const insufficientScopes = (): HttpFailure => googleError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', 'global');

export const backendError = (): HttpFailure => googleError(503, 'backendError', 'Backend Error', 'global');

export const rateLimited = (): HttpFailure => googleError(429, 'rateLimitExceeded', 'Too many requests; retry later.', 'youtube.quota');
