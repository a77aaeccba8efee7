import { AppError } from '../../errors.ts';
import { retryAfterSeconds } from '../../net/retry-after.ts';
import type { OAuthLogin, OAuthTokens } from '../adapter.ts';
import { FileReadError, putStream } from '../upload-stream.ts';

// Google OAuth 2.0 for web server applications and the parts of the YouTube Data API v3 the adapter
// uses, over plain fetch (LIBRARIES.md: googleapis adds nothing the resumable protocol needs).
// References: developers.google.com/identity/protocols/oauth2/web-server, developers.google.com/youtube/v3/
// guides/using_resumable_upload_protocol, …/docs/videos/insert, …/docs/errors.

export interface GoogleOptions {
  clientId: string;
  clientSecret: string;
  /** accounts.google.com (authorize) and oauth2.googleapis.com (token, revoke): one base in the emulator. */
  oauthUrl: string;
  authorizeUrl?: string;
  apiUrl: string;
  uploadUrl: string;
  timeoutMs: number;
}

/** youtube.upload to insert, youtube.readonly to read the channel and the processing status. */
export const SCOPES = ['https://www.googleapis.com/auth/youtube.upload', 'https://www.googleapis.com/auth/youtube.readonly'];

interface GoogleErrorBody { error?: { code?: number; message?: string; errors?: Array<{ reason?: string }> } | string; error_description?: string }

const reasonOf = (body: GoogleErrorBody): string => (typeof body.error === 'object' ? body.error?.errors?.[0]?.reason ?? '' : body.error ?? '');

/**
 * A Google API error → the service's code (docs/errors): quotaExceeded → PLATFORM_QUOTA_EXCEEDED (until
 * Pacific midnight, filled in by the caller), rate limits → PLATFORM_RATE_LIMITED, 401 → PLATFORM_AUTH_REVOKED
 * (after a refresh was tried), other 4xx → PLATFORM_REJECTED, 5xx → PLATFORM_UNAVAILABLE (retry).
 */
export function googleFailure(status: number, body: GoogleErrorBody, retryAfter: string | null, quotaRetryS: () => number): AppError {
  const reason = reasonOf(body);
  const what = `YouTube answered ${status}${reason ? ` ${reason}` : ''}`;
  if (reason === 'quotaExceeded' || reason === 'dailyLimitExceeded' || reason === 'uploadLimitExceeded') {
    return new AppError('PLATFORM_QUOTA_EXCEEDED', `${what}: the daily YouTube quota is spent`, { retryAfter: quotaRetryS(), scope: 'connection' });
  }
  if (status === 429 || reason === 'rateLimitExceeded' || reason === 'userRateLimitExceeded') {
    return new AppError('PLATFORM_RATE_LIMITED', what, { retryAfter: retryAfterSeconds(retryAfter, 60) });
  }
  if (status === 401) return new AppError('PLATFORM_AUTH_REVOKED', `${what}: the access was revoked`, { scope: 'connection' });
  if (status >= 500) return new AppError('PLATFORM_UNAVAILABLE', what);
  return new AppError('PLATFORM_REJECTED', what);
}

export class GoogleClient implements OAuthLogin {
  readonly pkce = true; // Google takes S256 for web server apps too

  constructor(private readonly o: GoogleOptions) {}

  authorizeUrl(p: { state: string; redirectUri: string; codeChallenge?: string }): string {
    const u = new URL(this.o.authorizeUrl ?? `${this.o.oauthUrl}/o/oauth2/v2/auth`);
    const q = {
      client_id: this.o.clientId, redirect_uri: p.redirectUri, response_type: 'code', scope: SCOPES.join(' '), state: p.state,
      // offline: a refresh token; consent: ask again so one comes back even when this account consented before.
      access_type: 'offline', prompt: 'consent', include_granted_scopes: 'true',
      ...(p.codeChallenge ? { code_challenge: p.codeChallenge, code_challenge_method: 'S256' } : {}),
    };
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    return u.toString();
  }

  exchange(p: { code: string; redirectUri: string; codeVerifier?: string }): Promise<OAuthTokens> {
    return this.#token({ grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, ...(p.codeVerifier ? { code_verifier: p.codeVerifier } : {}) });
  }

  refresh(refreshToken: string): Promise<OAuthTokens> {
    return this.#token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  async revoke(token: string): Promise<void> {
    const res = await this.#fetch(`${this.o.oauthUrl}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
    // 400 invalid_token: already revoked, which is what logging out wants.
    if (res.status >= 500) throw new AppError('PLATFORM_UNAVAILABLE', `Google revoke answered ${res.status}`);
  }

  async #token(form: Record<string, string>): Promise<OAuthTokens> {
    const res = await this.#fetch(`${this.o.oauthUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form, client_id: this.o.clientId, client_secret: this.o.clientSecret }).toString(),
    });
    const body = await res.json().catch(() => ({})) as Record<string, unknown>;
    if (res.ok && typeof body.access_token === 'string' && typeof body.expires_in === 'number') {
      return {
        accessToken: body.access_token, expiresIn: body.expires_in,
        ...(typeof body.refresh_token === 'string' ? { refreshToken: body.refresh_token } : {}),
        ...(typeof body.scope === 'string' ? { scope: body.scope } : {}),
      };
    }
    if (res.status >= 500 || res.ok) throw new AppError('PLATFORM_UNAVAILABLE', `Google token endpoint answered ${res.status}`);
    // invalid_grant: the refresh token (or code) expired, was revoked, or the 7-day "Testing" limit passed.
    if (body.error === 'invalid_grant' && form.grant_type === 'refresh_token') {
      throw new AppError('PLATFORM_AUTH_REVOKED', 'Google refused the refresh token (invalid_grant: revoked or expired): authorize again', { scope: 'connection' });
    }
    throw new AppError('PLATFORM_REJECTED', `Google token endpoint refused the request (${typeof body.error === 'string' ? body.error : res.status})`);
  }

  /** GET on the Data API with a bearer token; the parsed body, or a googleFailure. */
  async get(path: string, token: string, quotaRetryS: () => number): Promise<any> {
    const res = await this.#fetch(`${this.o.apiUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw googleFailure(res.status, body as GoogleErrorBody, res.headers.get('retry-after'), quotaRetryS);
    return body;
  }

  /** videos.insert, resumable: the session URI (Location), before any byte of the file moves. */
  async startUpload(token: string, meta: unknown, size: number, contentType: string, quotaRetryS: () => number): Promise<string> {
    const res = await this.#fetch(`${this.o.uploadUrl}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=UTF-8',
        'x-upload-content-length': String(size), 'x-upload-content-type': contentType,
      },
      body: JSON.stringify(meta),
    });
    const body = await res.json().catch(() => ({}));
    const location = res.headers.get('location');
    if (!res.ok) throw googleFailure(res.status, body as GoogleErrorBody, res.headers.get('retry-after'), quotaRetryS);
    if (!location) throw new AppError('PLATFORM_UNAVAILABLE', 'YouTube started an upload without a session URI');
    return location;
  }

  /**
   * One PUT to the session URI: a chunk (`bytes first-last/total`) or a status query (`bytes *\/total`).
   * Answers the video on 200/201, or how many bytes the server holds on 308 (its Range header).
   */
  async put(uri: string, total: number): Promise<{ done: true; video: any } | { done: false; committed: number } | { gone: true }> {
    const res = await this.#fetch(uri, { method: 'PUT', headers: { 'content-range': `bytes */${total}` } });
    if (res.status === 308) {
      await res.arrayBuffer().catch(() => undefined);
      const m = /^bytes=0-(\d+)$/.exec(res.headers.get('range') ?? '');
      return { done: false, committed: m ? Number(m[1]) + 1 : 0 };
    }
    const body = await res.json().catch(() => ({}));
    if (res.status === 200 || res.status === 201) return { done: true, video: body };
    // The session URI lives about a week; after that the server forgets it (and it never made a video).
    if (res.status === 404 || res.status === 410) return { gone: true };
    throw googleFailure(res.status, body as GoogleErrorBody, res.headers.get('retry-after'), () => 3600);
  }

  /**
   * One chunk of a resumable upload, streamed from `body` (bytes first … first+length-1 of `total`):
   * what `put` answers. Not over fetch: undici copies a Buffer body, and a chunk buffer per upload is
   * what the streaming avoids (src/platforms/upload-stream.ts).
   */
  async putChunk(uri: string, total: number, first: number, length: number, body: AsyncIterable<Buffer>): Promise<{ done: true; video: any } | { done: false; committed: number } | { gone: true }> {
    const range = `bytes ${first}-${first + length - 1}/${total}`;
    let res;
    try {
      res = await putStream(uri, { 'content-range': range }, length, body, Math.max(this.o.timeoutMs, 120_000));
    } catch (err) {
      if (err instanceof AppError || err instanceof FileReadError) throw err;
      throw new AppError('PLATFORM_UNAVAILABLE', 'YouTube did not answer', { cause: err, category: 'retry' });
    }
    if (res.status === 308) {
      const m = /^bytes=0-(\d+)$/.exec(String(res.headers.range ?? ''));
      return { done: false, committed: m ? Number(m[1]) + 1 : 0 };
    }
    let json: any = {};
    try {
      json = JSON.parse(res.body);
    } catch { /* not JSON: the status says enough */ }
    if (res.status === 200 || res.status === 201) return { done: true, video: json };
    if (res.status === 404 || res.status === 410) return { gone: true };
    const retry = res.headers['retry-after'];
    throw googleFailure(res.status, json as GoogleErrorBody, typeof retry === 'string' ? retry : null, () => 3600);
  }

  async #fetch(url: string, init: RequestInit, timeoutMs = this.o.timeoutMs): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      // No answer: the request may have reached Google (the caller decides whether that matters).
      throw new AppError('PLATFORM_UNAVAILABLE', 'YouTube did not answer', { cause: err, category: 'retry' });
    }
  }
}
