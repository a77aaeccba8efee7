import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpFailure, readForm, redirect, sendErrorPage, sendJson } from '../platforms/http-io.ts';
import { opaque, pkceMatches, validRedirectUri, withQuery } from '../platforms/oauth-kit.ts';
import type { Creator, TiktokState } from './state.ts';

// TikTok Login Kit v2: GET /v2/auth/authorize/ (www.tiktok.com) redirects back with `code`, `scopes` and
// `state`; POST /v2/oauth/token/ and /v2/oauth/revoke/ (open.tiktokapis.com) exchange, refresh and revoke.
// Refresh tokens rotate: each refresh returns a new one and the one sent stops working at once.

const CODE_TTL_MS = 10 * 60 * 1000;
export const TIKTOK_SCOPES = new Set(['user.info.basic', 'user.info.profile', 'user.info.stats', 'video.list', 'video.upload', 'video.publish']);

interface Code { openId: string; redirectUri: string; scopes: string[]; expiresAt: number; challenge?: string; method?: string }
interface RefreshToken { openId: string; scopes: string[]; expiresAt: number }
export interface AccessToken { openId: string; scopes: string[]; expiresAt: number }

export interface TiktokOAuthCounters {
  authorizeRequests: number; tokenCalls: number; codeExchanges: number; refreshes: number; refreshFailures: number; revocations: number;
}
const zero = (): TiktokOAuthCounters => ({ authorizeRequests: 0, tokenCalls: 0, codeExchanges: 0, refreshes: 0, refreshFailures: 0, revocations: 0 });

export class TiktokOAuth {
  private consents: Array<{ openId?: string; deny: boolean }> = [];
  private codes = new Map<string, Code>();
  private refreshTokens = new Map<string, RefreshToken>();
  private accessTokens = new Map<string, AccessToken>();
  counters = zero();

  constructor(private readonly state: TiktokState) {}

  queueConsent(creator: Creator | undefined, deny: boolean): number {
    this.consents.push({ openId: creator?.openId, deny });
    return this.consents.length;
  }

  private fail(status: number, error: string, description: string): HttpFailure {
    return new HttpFailure(status, { error, error_description: description, log_id: this.state.logId() });
  }

  authorize(res: ServerResponse, url: URL): void {
    this.counters.authorizeRequests++;
    const q = Object.fromEntries(url.searchParams);
    if (q.client_key !== this.state.apps.tiktok.clientKey) return sendErrorPage(res, 400, 'client_key', 'Something went wrong: the client_key is not valid.');
    if (!validRedirectUri(q.redirect_uri)) return sendErrorPage(res, 400, 'redirect_uri', 'Something went wrong: the redirect_uri is not registered.');
    const back = (params: Record<string, string | undefined>) => redirect(res, withQuery(q.redirect_uri!, { ...params, state: q.state }));
    if (q.response_type !== 'code') return back({ error: 'unsupported_response_type', error_description: 'response_type must be code' });
    const scopes = (q.scope ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (scopes.length === 0 || scopes.some((s) => !TIKTOK_SCOPES.has(s))) return back({ error: 'invalid_scope', error_description: 'The scope is invalid or unknown.' });
    if (q.code_challenge && (q.code_challenge_method ?? 'S256') !== 'S256') return back({ error: 'invalid_request', error_description: 'code_challenge_method must be S256' });
    const consent = this.consents.shift() ?? { openId: [...this.state.creators.values()].at(-1)?.openId, deny: false };
    if (consent.deny || !consent.openId) return back({ error: 'access_denied', error_description: 'The user denied the authorization.' });
    const code = opaque('', 48);
    this.codes.set(code, { openId: consent.openId, redirectUri: q.redirect_uri!, scopes, expiresAt: this.state.clock.now() + CODE_TTL_MS, challenge: q.code_challenge, method: 'S256' });
    back({ code, scopes: scopes.join(',') });
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const form = await readForm(req, url);
    if (url.pathname === '/v2/oauth/token/') return sendJson(res, 200, this.token(form));
    this.revoke(form);
    sendJson(res, 200, {});
  }

  private clientOk(form: Record<string, string>): void {
    const app = this.state.apps.tiktok;
    if (form.client_key !== app.clientKey || form.client_secret !== app.clientSecret) throw this.fail(401, 'invalid_client', 'Client key or secret is invalid.');
  }

  private token(form: Record<string, string>): unknown {
    this.counters.tokenCalls++;
    this.clientOk(form);
    if (form.grant_type === 'authorization_code') return this.exchange(form);
    if (form.grant_type === 'refresh_token') return this.refresh(form);
    if (!form.grant_type) throw this.fail(400, 'invalid_request', 'The request parameters are malformed.');
    throw this.fail(400, 'unsupported_grant_type', `grant_type ${form.grant_type} is not supported.`);
  }

  private exchange(form: Record<string, string>): unknown {
    this.counters.codeExchanges++;
    const now = this.state.clock.now();
    if (!form.code) throw this.fail(400, 'invalid_request', 'The request parameters are malformed.');
    const code = this.codes.get(form.code);
    if (!code || code.expiresAt <= now) throw this.fail(400, 'invalid_grant', 'Authorization code is expired.');
    this.codes.delete(form.code);
    if (form.redirect_uri !== code.redirectUri) throw this.fail(400, 'invalid_grant', 'redirect_uri does not match the authorization request.');
    // TikTok's desktop flow documents a hex SHA-256 challenge, the web flow base64url: both are accepted.
    if (code.challenge && (!form.code_verifier || !pkceMatches(code.challenge, 'S256', form.code_verifier, true))) {
      throw this.fail(400, 'invalid_request', 'Code verifier or code challenge is invalid.');
    }
    return this.issue(code.openId, code.scopes, now + this.state.app.refreshTokenSeconds * 1000, now);
  }

  private refresh(form: Record<string, string>): unknown {
    const now = this.state.clock.now();
    const rt = form.refresh_token ? this.refreshTokens.get(form.refresh_token) : undefined;
    if (!rt || rt.expiresAt <= now) {
      this.counters.refreshFailures++;
      throw this.fail(400, 'invalid_grant', 'Refresh token is invalid or expired.');
    }
    this.counters.refreshes++;
    this.refreshTokens.delete(form.refresh_token!); // rotated: the one sent is dead from now on
    // The refresh token keeps the lifetime of the first one; refresh_expires_in says what is left of it.
    return this.issue(rt.openId, rt.scopes, rt.expiresAt, now);
  }

  private issue(openId: string, scopes: string[], refreshExpiresAt: number, now: number): unknown {
    const access = opaque('act.', 48);
    const refresh = opaque('rft.', 48);
    const accessTtl = this.state.app.accessTokenSeconds;
    this.accessTokens.set(access, { openId, scopes, expiresAt: now + accessTtl * 1000 });
    this.refreshTokens.set(refresh, { openId, scopes, expiresAt: refreshExpiresAt });
    return {
      access_token: access, expires_in: accessTtl, open_id: openId, refresh_expires_in: Math.floor((refreshExpiresAt - now) / 1000),
      refresh_token: refresh, scope: scopes.join(','), token_type: 'Bearer',
    };
  }

  /** POST /v2/oauth/revoke/ with the user access token: disconnects the app from the account. */
  private revoke(form: Record<string, string>): void {
    this.clientOk(form);
    const a = form.token ? this.accessTokens.get(form.token) : undefined;
    if (!a) throw this.fail(400, 'invalid_request', 'The token is invalid.');
    this.counters.revocations++;
    this.revokeCreator(a.openId);
  }

  revokeCreator(openId: string): number {
    let n = 0;
    for (const [t, a] of this.accessTokens) if (a.openId === openId && this.accessTokens.delete(t)) n++;
    for (const [t, r] of this.refreshTokens) if (r.openId === openId && this.refreshTokens.delete(t)) n++;
    return n;
  }

  authenticate(token: string | undefined): AccessToken | undefined {
    const a = token ? this.accessTokens.get(token) : undefined;
    return a && a.expiresAt > this.state.clock.now() ? a : undefined;
  }

  liveTokens(): { access: number; refresh: number } {
    const now = this.state.clock.now();
    return {
      access: [...this.accessTokens.values()].filter((a) => a.expiresAt > now).length,
      refresh: [...this.refreshTokens.values()].filter((r) => r.expiresAt > now).length,
    };
  }

  reset(): void {
    this.consents = [];
    this.codes.clear();
    this.refreshTokens.clear();
    this.accessTokens.clear();
    this.counters = zero();
  }
}
