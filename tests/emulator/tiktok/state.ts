import { randomBytes, randomUUID } from 'node:crypto';
import { HttpFailure } from '../platforms/http-io.ts';
import type { EmulatorApps, EmulatorClock } from '../platforms/types.ts';

// TikTok creators, the app's settings (audit, token lifetimes, limits) and TikTok's v2 response envelope
// `{ data, error: { code, message, log_id } }` ("Error Handling", API v2), `code: "ok"` on success.

export interface Creator {
  openId: string; unionId: string; username: string; nickname: string;
  /** A private TikTok account offers FOLLOWER_OF_CREATOR instead of PUBLIC_TO_EVERYONE. */
  privateAccount: boolean;
  createdAt: number;
}

export interface TiktokAppSettings {
  /** Unaudited clients may post SELF_ONLY only, for at most `unauditedUsersPerDay` creators a day. */
  audited: boolean;
  /**
   * Token lifetimes. The current "Manage OAuth Access Tokens" page says 2 hours and 180 days; its older
   * revision said 24 hours and 365 days. Settings, so the daemon reads expires_in instead of assuming.
   */
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  /** Per user access token, per minute (Direct Post / Upload / Creator Info / Fetch Status pages). */
  initsPerMinute: number;
  creatorInfoPerMinute: number;
  statusFetchesPerMinute: number;
  /** Direct posts per creator in a moving 24 h before `spam_risk_too_many_posts` (not in TikTok's docs; ~15 is what integrators report). */
  postsPerDay: number;
  unauditedUsersPerDay: number;
  /** Status fetches after the last chunk that still say PROCESSING_UPLOAD, or this much emulator time. */
  processingPolls: number;
  processingSeconds: number;
  maxVideoPostDurationSec: number;
}

export const defaultTiktokApp = (): TiktokAppSettings => ({
  audited: false, accessTokenSeconds: 2 * 3600, refreshTokenSeconds: 180 * 24 * 3600,
  initsPerMinute: 6, creatorInfoPerMinute: 20, statusFetchesPerMinute: 30, postsPerDay: 15, unauditedUsersPerDay: 5,
  processingPolls: 1, processingSeconds: 60, maxVideoPostDurationSec: 600,
});

export class TiktokState {
  readonly creators = new Map<string, Creator>();
  app: TiktokAppSettings = defaultTiktokApp();

  constructor(readonly clock: EmulatorClock, readonly apps: EmulatorApps) {}

  addCreator(username: string, privateAccount: boolean): Creator {
    if ([...this.creators.values()].some((c) => c.username === username)) throw new HttpFailure(409, { error: `creator ${username} exists` });
    const c: Creator = { openId: `-000${randomUUID()}`, unionId: randomUUID(), username, nickname: username, privateAccount, createdAt: this.clock.now() };
    this.creators.set(c.openId, c);
    return c;
  }

  findCreator(ref: unknown): Creator | undefined {
    if (typeof ref !== 'string' || !ref) return undefined;
    return this.creators.get(ref) ?? [...this.creators.values()].find((c) => c.username === ref);
  }

  /** TikTok's log_id: a UTC timestamp and 18 hex digits, e.g. 202210112248442CB9319E1FB30C1073F3. */
  logId(): string {
    const t = new Date(this.clock.now()).toISOString().replace(/\D/g, '').slice(0, 14);
    return t + randomBytes(9).toString('hex').toUpperCase();
  }

  reset(): void {
    this.creators.clear();
    this.app = defaultTiktokApp();
  }
}

/** HTTP status per v2 error code, from the v2 error table and the Content Posting pages. */
const STATUS: Record<string, number> = {
  access_token_invalid: 401, scope_not_authorized: 401, invalid_params: 400, invalid_file_upload: 400, rate_limit_exceeded: 429,
  spam_risk_too_many_posts: 403, spam_risk_user_banned_from_posting: 403, reached_active_user_cap: 403,
  unaudited_client_can_only_post_to_private_accounts: 403, privacy_level_option_mismatch: 400, internal_error: 500,
};

export function tiktokError(state: TiktokState, code: string, message: string, headers: Record<string, string> = {}): HttpFailure {
  return new HttpFailure(STATUS[code] ?? 400, { data: {}, error: { code, message, log_id: state.logId() } }, headers);
}

export const tiktokOk = (state: TiktokState, data: unknown) => ({ data, error: { code: 'ok', message: '', log_id: state.logId() } });
