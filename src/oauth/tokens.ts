import { AppError, isAppError } from '../errors.ts';
import type { OAuthLogin, OAuthTokens, SecretVault } from '../platforms/adapter.ts';

// A connection's OAuth tokens, kept by its driver (one per connection; the connection's actor is the
// only refresher, cluster-wide, because one node owns the connection's shard). The access token is
// refreshed REFRESH_MARGIN before the lifetime the token endpoint gave (expires_in), never on a guess;
// concurrent callers share one refresh. A rotated refresh token (TikTok) is written in the same save
// as the access token's expiry, before the old one is forgotten.

/** Refresh this long before expiry: covers a 200 MB upload's slowest chunk (~30 s) with room. */
export const REFRESH_MARGIN_MS = 5 * 60 * 1000;

export const SECRET = { access: 'access_token', refresh: 'refresh_token', expiresAt: 'access_expires_at', verifier: 'pkce_verifier' } as const;

/** Stores what a token endpoint answered: refresh token first (it may be the only copy of a rotated one). */
export async function storeTokens(vault: SecretVault, tokens: OAuthTokens, now: number): Promise<void> {
  if (tokens.refreshToken) await vault.save(SECRET.refresh, tokens.refreshToken);
  await vault.save(SECRET.access, tokens.accessToken);
  await vault.save(SECRET.expiresAt, String(now + tokens.expiresIn * 1000));
}

export class OAuthTokenKeeper {
  #cache?: { access: string; expiresAt: number; refresh?: string };
  #refreshing?: Promise<string>;
  /** Refreshes made by this keeper (tests and the bench read it). */
  refreshes = 0;

  constructor(
    private readonly vault: SecretVault,
    private readonly login: OAuthLogin,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the connection has been authorized (a refresh or access token is stored). */
  async authorized(): Promise<boolean> {
    if (this.#cache) return true;
    const s = await this.vault.load();
    if (!s[SECRET.access] && !s[SECRET.refresh]) return false;
    this.#cache = { access: s[SECRET.access] ?? '', expiresAt: Number(s[SECRET.expiresAt] ?? 0), ...(s[SECRET.refresh] ? { refresh: s[SECRET.refresh] } : {}) };
    return true;
  }

  /** A live access token: the stored one, or a fresh one when it expires within the margin. */
  async access(): Promise<string> {
    if (!(await this.authorized())) throw new AppError('PLATFORM_AUTH_REVOKED', 'The connection has no authorization: authorize it again');
    const c = this.#cache!;
    if (c.access && c.expiresAt - REFRESH_MARGIN_MS > this.now()) return c.access;
    return this.#refresh();
  }

  /** The platform refused the access token (401): the next access() refreshes. */
  expire(): void {
    if (this.#cache) this.#cache.expiresAt = 0;
  }

  forget(): void {
    this.#cache = undefined;
  }

  #refresh(): Promise<string> {
    this.#refreshing ??= (async () => {
      const refresh = this.#cache?.refresh;
      if (!refresh) throw new AppError('PLATFORM_AUTH_REVOKED', 'The access token expired and the platform gave no refresh token: authorize again');
      let tokens: OAuthTokens;
      try {
        tokens = await this.login.refresh(refresh);
      } catch (err) {
        if (isAppError(err)) throw err;
        throw new AppError('PLATFORM_UNAVAILABLE', 'The token endpoint did not answer', { cause: err });
      }
      const now = this.now();
      await storeTokens(this.vault, tokens, now);
      this.refreshes += 1;
      this.#cache = { access: tokens.accessToken, expiresAt: now + tokens.expiresIn * 1000, refresh: tokens.refreshToken ?? refresh };
      return tokens.accessToken;
    })().finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }
}
