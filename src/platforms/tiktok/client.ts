import { AppError } from '../../errors.ts';
import { retryAfterSeconds } from '../../net/retry-after.ts';
import type { OAuthLogin, OAuthTokens } from '../adapter.ts';
import { FileReadError, putStream } from '../upload-stream.ts';

// TikTok Login Kit v2 and the Content Posting API over plain fetch. References:
// developers.tiktok.com/doc/login-kit-web, /doc/oauth-user-access-token-management, /doc/content-posting-api-
// reference-direct-post, /doc/content-posting-api-media-transfer-guide, /doc/content-posting-api-reference-
// get-video-status, /doc/tiktok-api-v2-error-handling.

export interface TiktokClientOptions {
  clientKey: string;
  clientSecret: string;
  /** www.tiktok.com (authorize). */
  oauthUrl: string;
  /** open.tiktokapis.com (token, revoke, user info, posting). */
  apiUrl: string;
  timeoutMs: number;
}

export const SCOPES = ['user.info.basic', 'video.publish'];

/** A v2 error code → the service's code (docs/platforms/tiktok.md has the table). */
export function tiktokFailure(status: number, code: string, message: string, retryAfter: string | null): AppError {
  const what = `TikTok answered ${status} ${code}${message ? `: ${message}` : ''}`;
  switch (code) {
    case 'rate_limit_exceeded':
      return new AppError('PLATFORM_RATE_LIMITED', what, { retryAfter: retryAfterSeconds(retryAfter, 60) });
    // A moving 24 h: the oldest post leaves the window within the day; try again in an hour.
    case 'spam_risk_too_many_posts':
      return new AppError('PLATFORM_QUOTA_EXCEEDED', what, { retryAfter: 3600, scope: 'connection' });
    case 'reached_active_user_cap':
      return new AppError('PLATFORM_QUOTA_EXCEEDED', what, { retryAfter: 24 * 3600, scope: 'connection' });
    case 'access_token_invalid':
    case 'scope_not_authorized':
      return new AppError('PLATFORM_AUTH_REVOKED', what, { scope: 'connection' });
    case 'internal_error':
      return new AppError('PLATFORM_UNAVAILABLE', what);
    default:
      return status >= 500 ? new AppError('PLATFORM_UNAVAILABLE', what) : new AppError('PLATFORM_REJECTED', what);
  }
}

export class TiktokClient implements OAuthLogin {
  readonly pkce = true;

  constructor(private readonly o: TiktokClientOptions) {}

  authorizeUrl(p: { state: string; redirectUri: string; codeChallenge?: string }): string {
    const u = new URL(`${this.o.oauthUrl}/v2/auth/authorize/`);
    const q = {
      client_key: this.o.clientKey, scope: SCOPES.join(','), response_type: 'code', redirect_uri: p.redirectUri, state: p.state,
      ...(p.codeChallenge ? { code_challenge: p.codeChallenge, code_challenge_method: 'S256' } : {}),
    };
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    return u.toString();
  }

  exchange(p: { code: string; redirectUri: string; codeVerifier?: string }): Promise<OAuthTokens> {
    return this.#token({ grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, ...(p.codeVerifier ? { code_verifier: p.codeVerifier } : {}) });
  }

  /** Rotates: the answer carries a new refresh token and the one sent is dead from then on. */
  refresh(refreshToken: string): Promise<OAuthTokens> {
    return this.#token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  async revoke(accessToken: string): Promise<void> {
    const res = await this.#fetch(`${this.o.apiUrl}/v2/oauth/revoke/`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_key: this.o.clientKey, client_secret: this.o.clientSecret, token: accessToken }).toString(),
    });
    if (res.status >= 500) throw new AppError('PLATFORM_UNAVAILABLE', `TikTok revoke answered ${res.status}`);
  }

  async #token(form: Record<string, string>): Promise<OAuthTokens> {
    const res = await this.#fetch(`${this.o.apiUrl}/v2/oauth/token/`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form, client_key: this.o.clientKey, client_secret: this.o.clientSecret }).toString(),
    });
    const body = await res.json().catch(() => ({})) as Record<string, unknown>;
    if (res.ok && typeof body.access_token === 'string' && typeof body.expires_in === 'number') {
      return {
        accessToken: body.access_token, expiresIn: body.expires_in,
        ...(typeof body.refresh_token === 'string' ? { refreshToken: body.refresh_token } : {}),
        ...(typeof body.refresh_expires_in === 'number' ? { refreshExpiresIn: body.refresh_expires_in } : {}),
        ...(typeof body.scope === 'string' ? { scope: body.scope } : {}),
      };
    }
    if (res.status >= 500 || res.ok) throw new AppError('PLATFORM_UNAVAILABLE', `TikTok token endpoint answered ${res.status}`);
    if (body.error === 'invalid_grant' && form.grant_type === 'refresh_token') {
      throw new AppError('PLATFORM_AUTH_REVOKED', 'TikTok refused the refresh token (invalid_grant: revoked, expired or already rotated): authorize again', { scope: 'connection' });
    }
    throw new AppError('PLATFORM_REJECTED', `TikTok token endpoint refused the request (${typeof body.error === 'string' ? body.error : res.status})`);
  }

  /** A v2 API call: its `data`, or tiktokFailure. */
  async call(method: 'GET' | 'POST', path: string, token: string, body?: unknown): Promise<any> {
    const res = await this.#fetch(`${this.o.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json; charset=UTF-8' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = await res.json().catch(() => ({})) as { data?: unknown; error?: { code?: string; message?: string } };
    const code = json.error?.code ?? (res.ok ? 'ok' : 'unknown');
    if (!res.ok || code !== 'ok') throw tiktokFailure(res.status, code, json.error?.message ?? '', res.headers.get('retry-after'));
    return json.data ?? {};
  }

  /** One chunk PUT to the upload_url: 206 (more to come) or 201 (the last one). */
  /**
   * One chunk (bytes first … first+length-1 of `total`) streamed from `body` to the upload_url. Not over
   * fetch: undici copies a Buffer body (src/platforms/upload-stream.ts says why that matters).
   */
  async putChunk(uploadUrl: string, contentType: string, first: number, length: number, body: AsyncIterable<Buffer>, total: number): Promise<number> {
    let res;
    try {
      res = await putStream(uploadUrl, { 'content-type': contentType, 'content-range': `bytes ${first}-${first + length - 1}/${total}` }, length, body, Math.max(this.o.timeoutMs, 120_000));
    } catch (err) {
      if (err instanceof AppError || err instanceof FileReadError) throw err;
      throw new AppError('PLATFORM_UNAVAILABLE', 'TikTok did not answer', { cause: err, category: 'retry' });
    }
    if (res.status === 206 || res.status === 201 || res.status === 200) return res.status;
    let json: { error?: { code?: string; message?: string } } = {};
    try {
      json = JSON.parse(res.body);
    } catch { /* not JSON: the status says enough */ }
    const retry = res.headers['retry-after'];
    throw tiktokFailure(res.status, json.error?.code ?? 'unknown', json.error?.message ?? '', typeof retry === 'string' ? retry : null);
  }

  async #fetch(url: string, init: RequestInit, timeoutMs = this.o.timeoutMs): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new AppError('PLATFORM_UNAVAILABLE', 'TikTok did not answer', { cause: err, category: 'retry' });
    }
  }
}
