import { AppError } from '../../errors.ts';
import type { OAuthLogin, OAuthTokens } from '../adapter.ts';

// The user login Instagram (API with Instagram Login, "Business Login for Instagram") and Threads
// ("Get Access Tokens and Permissions") share: the authorization window on the platform's site, the
// code exchanged for a short-lived token (1 hour), at once exchanged for a long-lived one (60 days,
// `ig_exchange_token` / `th_exchange_token`), which is refreshed with itself (`ig_refresh_token` /
// `th_refresh_token`) once it is at least 24 hours old. There is no refresh token: the long-lived
// token is both. Neither platform documents PKCE for this flow, so none is sent.
// References: developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/
// business-login, …/reference/access_token, …/reference/refresh_access_token; developers.facebook.com/
// docs/threads/get-started/get-access-tokens-and-permissions, …/long-lived-tokens.

export interface MetaUserLoginOptions {
  /** Display name in messages (never a token): "Instagram", "Threads". */
  name: string;
  appId: string;
  appSecret: string;
  /** Where the browser authorizes: www.instagram.com, threads.net. */
  authorizeUrl: string;
  /** POST of the code: api.instagram.com/oauth/access_token, graph.threads.net/oauth/access_token. */
  codeUrl: string;
  /** graph.instagram.com, graph.threads.net: /access_token and /refresh_access_token (unversioned). */
  graphUrl: string;
  scopes: string[];
  exchangeGrant: string;
  refreshGrant: string;
  timeoutMs: number;
}

interface ErrorBody { error?: { code?: number; message?: string; error_subcode?: number } | string; error_type?: string; code?: number; error_message?: string }

export class MetaUserLogin implements OAuthLogin {
  readonly pkce = false;

  constructor(private readonly o: MetaUserLoginOptions) {}

  authorizeUrl(p: { state: string; redirectUri: string }): string {
    const u = new URL(`${this.o.authorizeUrl}/oauth/authorize`);
    const q = { client_id: this.o.appId, redirect_uri: p.redirectUri, response_type: 'code', scope: this.o.scopes.join(','), state: p.state };
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    return u.toString();
  }

  /** The code → a short-lived token → at once a long-lived one (the short one lives an hour: never stored). */
  async exchange(p: { code: string; redirectUri: string }): Promise<OAuthTokens> {
    const res = await this.#fetch(`${this.o.codeUrl}/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: this.o.appId, client_secret: this.o.appSecret, grant_type: 'authorization_code', redirect_uri: p.redirectUri, code: p.code }).toString(),
    });
    const body = await res.json().catch(() => ({})) as Record<string, unknown> & ErrorBody;
    // Instagram documents {data: [{access_token, user_id, permissions}]} and also answers it flat; Threads flat.
    const row = (Array.isArray(body.data) ? body.data[0] : body) as Record<string, unknown> | undefined;
    if (!res.ok || typeof row?.access_token !== 'string') throw this.#failure(res.status, body, 'code');
    return this.#tokenCall('/access_token', { grant_type: this.o.exchangeGrant, client_secret: this.o.appSecret }, row.access_token, 'exchange');
  }

  /** A long-lived token (≥ 24 h old, not expired) → a new one valid 60 days from now. */
  refresh(token: string): Promise<OAuthTokens> {
    return this.#tokenCall('/refresh_access_token', { grant_type: this.o.refreshGrant }, token, 'refresh');
  }

  async #tokenCall(path: string, query: Record<string, string>, token: string, what: 'exchange' | 'refresh'): Promise<OAuthTokens> {
    const u = new URL(`${this.o.graphUrl}${path}`);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    const res = await this.#fetch(u.toString(), { headers: { authorization: `Bearer ${token}` } });
    const body = await res.json().catch(() => ({})) as Record<string, unknown> & ErrorBody;
    if (res.ok && typeof body.access_token === 'string' && typeof body.expires_in === 'number') {
      return { accessToken: body.access_token, expiresIn: body.expires_in };
    }
    throw this.#failure(res.status, body, what);
  }

  /**
   * 190 (token invalid, expired or the app deauthorized) → PLATFORM_AUTH_REVOKED; 5xx, 1, 2 and
   * is_transient → PLATFORM_UNAVAILABLE (retry, never revocation); any other refusal → PLATFORM_REJECTED
   * (a used or expired code, a token younger than 24 h). The message carries Meta's code, never a token.
   */
  #failure(status: number, body: ErrorBody, what: 'code' | 'exchange' | 'refresh'): AppError {
    const e = typeof body.error === 'object' ? body.error : undefined;
    const code = e?.code ?? body.code ?? 0;
    const text = (e?.message ?? body.error_message ?? `HTTP ${status}`).slice(0, 200);
    const msg = `${this.o.name} token ${what} answered ${status} (code ${code}${e?.error_subcode ? `, subcode ${e.error_subcode}` : ''}): ${text}`;
    if (status >= 500 || status === 0 || code === 1 || code === 2 || (status === 200)) return new AppError('PLATFORM_UNAVAILABLE', msg, { category: 'retry' });
    if (code === 190 && what !== 'code') return new AppError('PLATFORM_AUTH_REVOKED', `${msg}: authorize again`, { scope: 'connection' });
    return new AppError('PLATFORM_REJECTED', msg);
  }

  async #fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(this.o.timeoutMs) });
    } catch (err) {
      throw new AppError('PLATFORM_UNAVAILABLE', `${this.o.name} did not answer`, { cause: err, category: 'retry' });
    }
  }
}
