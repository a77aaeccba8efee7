import { createHash } from 'node:crypto';
import { AppError, isAppError } from '../../errors.ts';
import { SECRET } from '../../oauth/tokens.ts';
import type { SecretVault } from '../adapter.ts';
import type { MetaUserLogin } from './user-login.ts';

// A connection's long-lived Instagram or Threads token, kept by its driver (the connection's own actor
// is the one refresher: one node owns its shard). Meta refreshes a long-lived token with itself, and
// only once it is at least 24 hours old (REFRESH_MIN_AGE_MS); the new one lives 60 days from then. The
// keeper refreshes once the token is `refreshAfterMs` old (7 days by default: 53 days of slack for a
// refresh that keeps failing), checked where a token is used and by the connection's watcher.
//
// A refresh that fails on the network or with a 5xx leaves the old token in use (it is still valid)
// and is tried again later: it is never taken for revocation. Only 190 is (PLATFORM_AUTH_REVOKED).
// The token's age is stored next to it (`meta_token_issued`: time and a fingerprint of the token it
// belongs to), because the core's callback stores the token without it: a token the keeper has not
// seen before is dated from when it first sees it, which can only make it wait longer.

export const REFRESH_MIN_AGE_MS = 24 * 3600_000;
const ISSUED = 'meta_token_issued';

const fingerprint = (token: string) => createHash('sha256').update(token).digest('base64url').slice(0, 16);

export class MetaTokenKeeper {
  #cache?: { access: string; expiresAt: number; issuedAt: number };
  #refreshing?: Promise<void>;
  /** Refreshes made by this keeper, and refresh calls that failed without revocation (tests read them). */
  refreshes = 0;
  refreshFailures = 0;
  /** The last refresh failure that was not a revocation (kept for the logs; retried later). */
  lastFailure?: AppError;

  constructor(
    private readonly vault: SecretVault,
    private readonly login: MetaUserLogin,
    private readonly refreshAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the callback stored a token for this connection. */
  async authorized(): Promise<boolean> {
    if (this.#cache) return true;
    const s = await this.vault.load();
    const access = s[SECRET.access];
    if (!access) return false;
    const [at, fp] = (s[ISSUED] ?? '').split(':');
    let issuedAt = Number(at);
    if (!Number.isFinite(issuedAt) || issuedAt <= 0 || fp !== fingerprint(access)) {
      issuedAt = this.now();
      await this.vault.save(ISSUED, `${issuedAt}:${fingerprint(access)}`);
    }
    this.#cache = { access, expiresAt: Number(s[SECRET.expiresAt] ?? 0), issuedAt };
    return true;
  }

  /** The token to call with; refreshed first when due (a failed refresh that is not revocation keeps the old one). */
  async access(): Promise<string> {
    if (!(await this.authorized())) throw new AppError('PLATFORM_AUTH_REVOKED', 'The connection has no authorization: authorize it again');
    if (this.due()) {
      try {
        await this.refresh();
      } catch (err) {
        if (isAppError(err) && err.code === 'PLATFORM_AUTH_REVOKED') throw err;
        if (this.#cache!.expiresAt <= this.now()) throw err;
      }
    }
    return this.#cache!.access;
  }

  /** Old enough to refresh (≥ 24 h, Meta's rule) and past the keeper's own age for it. */
  due(): boolean {
    const c = this.#cache;
    if (!c) return false;
    const age = this.now() - c.issuedAt;
    return age >= Math.max(REFRESH_MIN_AGE_MS, this.refreshAfterMs);
  }

  /** Refreshes when due; concurrent callers share one call. Throws what the refresh threw. */
  async refreshIfDue(): Promise<boolean> {
    if (!(await this.authorized()) || !this.due()) return false;
    await this.refresh();
    return true;
  }

  forget(): void {
    this.#cache = undefined;
  }

  private refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      const c = this.#cache!;
      try {
        const t = await this.login.refresh(c.access);
        const now = this.now();
        // The new token, its expiry and its age in one go; the old one stays valid until it expires
        // (Meta does not retire it), so a crash between these saves loses nothing.
        await this.vault.save(SECRET.access, t.accessToken);
        await this.vault.save(SECRET.expiresAt, String(now + t.expiresIn * 1000));
        await this.vault.save(ISSUED, `${now}:${fingerprint(t.accessToken)}`);
        this.#cache = { access: t.accessToken, expiresAt: now + t.expiresIn * 1000, issuedAt: now };
        this.refreshes += 1;
        this.lastFailure = undefined;
      } catch (err) {
        const e = isAppError(err) ? err : new AppError('PLATFORM_UNAVAILABLE', 'The token refresh failed', { cause: err, category: 'retry' });
        if (e.code !== 'PLATFORM_AUTH_REVOKED') {
          this.lastFailure = e;
          this.refreshFailures += 1;
        }
        throw e;
      }
    })().finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }
}
