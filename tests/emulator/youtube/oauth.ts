import type { IncomingMessage, ServerResponse } from 'node:http';
import { basicAuth, HttpFailure, readForm, redirect, sendErrorPage, sendJson } from '../platforms/http-io.ts';
import { opaque, pkceMatches, validRedirectUri, withQuery } from '../platforms/oauth-kit.ts';
import type { Channel, YoutubeState } from './state.ts';

// Google OAuth 2.0 for web server applications ("Using OAuth 2.0 for Web Server Applications"):
// GET /o/oauth2/v2/auth (accounts.google.com) redirects straight back with a code, approving as the
// channel named by `POST /youtube/consent`; POST /token and POST /revoke (oauth2.googleapis.com).

const HOUR_S = 3600;
const DAY_MS = 24 * 3600 * 1000;
/** Google answers expires_in 3599 for its one-hour access tokens. */
const ACCESS_EXPIRES_IN = HOUR_S - 1;
const CODE_TTL_MS = 10 * 60 * 1000;
/** "Testing" consent screens: refresh tokens expire after 7 days. */
const TESTING_REFRESH_MS = 7 * DAY_MS;
/** A refresh token unused for six months stops working. */
const UNUSED_REFRESH_MS = 183 * DAY_MS;
/** Google limits live refresh tokens per account per client (100 today); issuing more kills the oldest. */
const REFRESH_TOKENS_PER_GRANT = 100;

interface Code {
  channelId: string; clientId: string; redirectUri: string; scopes: string[]; expiresAt: number;
  challenge?: string; method?: string; issueRefresh: boolean;
}
interface Grant { channelId: string; clientId: string; scopes: Set<string>; refreshTokens: string[] }
interface RefreshToken { grant: string; issuedAt: number; lastUsedAt: number; expiresAt?: number }
export interface AccessToken { channelId: string; clientId: string; scopes: string[]; expiresAt: number; grant: string }

export interface OAuthCounters {
  authorizeRequests: number; tokenCalls: number; codeExchanges: number; refreshes: number; refreshFailures: number; revocations: number;
}

const zeroCounters = (): OAuthCounters => ({ authorizeRequests: 0, tokenCalls: 0, codeExchanges: 0, refreshes: 0, refreshFailures: 0, revocations: 0 });

const tokenError = (status: number, error: string, description: string) => new HttpFailure(status, { error, error_description: description });

export class GoogleOAuth {
  private consents: Array<{ channelId?: string; deny: boolean }> = [];
  private codes = new Map<string, Code>();
  private grants = new Map<string, Grant>();
  private refreshTokens = new Map<string, RefreshToken>();
  private accessTokens = new Map<string, AccessToken>();
  counters = zeroCounters();

  constructor(private readonly state: YoutubeState) {}

  queueConsent(channel: Channel | undefined, deny: boolean): number {
    this.consents.push({ channelId: channel?.id, deny });
    return this.consents.length;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method === 'GET' && (url.pathname === '/o/oauth2/v2/auth' || url.pathname === '/o/oauth2/auth')) return this.authorize(res, url);
    if (req.method === 'POST' && url.pathname === '/token') return sendJson(res, 200, this.token(await readForm(req, url), basicAuth(req)));
    if ((req.method === 'POST' || req.method === 'GET') && url.pathname === '/revoke') {
      this.revokeToken((await readForm(req, url)).token);
      return sendJson(res, 200, {});
    }
    throw new HttpFailure(404, { error: 'not_found' });
  }

  private authorize(res: ServerResponse, url: URL): void {
    this.counters.authorizeRequests++;
    const q = Object.fromEntries(url.searchParams);
    // Without a known client or a usable redirect URI Google shows its own error page and never redirects.
    if (q.client_id !== this.state.apps.google.clientId) return sendErrorPage(res, 401, 'Error 401: invalid_client', 'The OAuth client was not found.');
    if (!validRedirectUri(q.redirect_uri)) return sendErrorPage(res, 400, 'Error 400: redirect_uri_mismatch', 'The redirect_uri is not an absolute http(s) URI.');
    if (!q.scope) return sendErrorPage(res, 400, 'Error 400: invalid_request', 'Missing required parameter: scope');
    const method = q.code_challenge_method ?? (q.code_challenge ? 'plain' : undefined);
    if (method && method !== 'S256' && method !== 'plain') return sendErrorPage(res, 400, 'Error 400: invalid_request', 'Invalid code_challenge_method');
    const back = (params: Record<string, string | undefined>) => redirect(res, withQuery(q.redirect_uri!, { ...params, state: q.state }));
    if (q.response_type !== 'code') return back({ error: 'unsupported_response_type' });

    const consent = this.consents.shift() ?? { channelId: this.lastChannel()?.id, deny: false };
    if (consent.deny || !consent.channelId) return back({ error: 'access_denied' });
    const grantKey = `${consent.channelId} ${q.client_id}`;
    const prior = this.grants.get(grantKey);
    const prompts = (q.prompt ?? '').split(' ');
    const scopes = q.scope.split(' ').filter(Boolean);
    if (q.include_granted_scopes === 'true' && prior) for (const s of prior.scopes) if (!scopes.includes(s)) scopes.push(s);
    // A refresh token comes back only for access_type=offline, and only the first time this account
    // consents to this client, unless prompt=consent asks for the consent screen again.
    const issueRefresh = q.access_type === 'offline' && (!prior || prior.refreshTokens.length === 0 || prompts.includes('consent'));
    const code = opaque('4/0A', 32);
    this.codes.set(code, {
      channelId: consent.channelId, clientId: q.client_id, redirectUri: q.redirect_uri!, scopes, expiresAt: this.state.clock.now() + CODE_TTL_MS,
      challenge: q.code_challenge, method, issueRefresh,
    });
    back({ code, scope: scopes.join(' ') });
  }

  private lastChannel(): Channel | undefined {
    return [...this.state.channels.values()].at(-1);
  }

  private token(form: Record<string, string>, basic: { id: string; secret: string } | undefined): unknown {
    this.counters.tokenCalls++;
    const clientId = form.client_id ?? basic?.id;
    const secret = form.client_secret ?? basic?.secret;
    const app = this.state.apps.google;
    if (clientId !== app.clientId || secret !== app.clientSecret) throw tokenError(401, 'invalid_client', 'Unauthorized');
    if (form.grant_type === 'authorization_code') return this.exchange(form);
    if (form.grant_type === 'refresh_token') return this.refresh(form);
    if (!form.grant_type) throw tokenError(400, 'invalid_request', 'Missing required parameter: grant_type');
    throw tokenError(400, 'unsupported_grant_type', `Invalid grant_type: ${form.grant_type}`);
  }

  private exchange(form: Record<string, string>): unknown {
    this.counters.codeExchanges++;
    const now = this.state.clock.now();
    if (!form.code) throw tokenError(400, 'invalid_request', 'Missing required parameter: code');
    const code = this.codes.get(form.code);
    if (!code || code.expiresAt <= now) throw tokenError(400, 'invalid_grant', 'Bad Request');
    this.codes.delete(form.code); // single use, also when the exchange fails below
    if (form.redirect_uri !== code.redirectUri) throw tokenError(400, 'redirect_uri_mismatch', 'Bad Request');
    if (code.challenge) {
      if (!form.code_verifier) throw tokenError(400, 'invalid_grant', 'Missing code verifier.');
      if (!pkceMatches(code.challenge, code.method ?? 'plain', form.code_verifier)) throw tokenError(400, 'invalid_grant', 'Invalid code verifier.');
    }
    const grantKey = `${code.channelId} ${code.clientId}`;
    const grant = this.grants.get(grantKey) ?? { channelId: code.channelId, clientId: code.clientId, scopes: new Set<string>(), refreshTokens: [] };
    for (const s of code.scopes) grant.scopes.add(s);
    this.grants.set(grantKey, grant);
    const access = this.issueAccess(grant, grantKey, code.scopes, now);
    const body: Record<string, unknown> = { access_token: access, expires_in: ACCESS_EXPIRES_IN, scope: code.scopes.join(' '), token_type: 'Bearer' };
    if (code.issueRefresh) body.refresh_token = this.issueRefresh(grant, grantKey, now);
    return body;
  }

  private refresh(form: Record<string, string>): unknown {
    const now = this.state.clock.now();
    if (!form.refresh_token) throw tokenError(400, 'invalid_request', 'Missing required parameter: refresh_token');
    const rt = this.refreshTokens.get(form.refresh_token);
    const grant = rt ? this.grants.get(rt.grant) : undefined;
    const dead = !rt || !grant || (rt.expiresAt !== undefined && rt.expiresAt <= now) || rt.lastUsedAt + UNUSED_REFRESH_MS <= now;
    if (dead) {
      this.counters.refreshFailures++;
      throw tokenError(400, 'invalid_grant', 'Token has been expired or revoked.');
    }
    this.counters.refreshes++;
    rt.lastUsedAt = now;
    const scopes = [...grant.scopes];
    // Google keeps the refresh token: the answer carries a new access token only.
    return { access_token: this.issueAccess(grant, rt.grant, scopes, now), expires_in: ACCESS_EXPIRES_IN, scope: scopes.join(' '), token_type: 'Bearer' };
  }

  private issueAccess(grant: Grant, grantKey: string, scopes: string[], now: number): string {
    const token = opaque('ya29.', 48);
    this.accessTokens.set(token, { channelId: grant.channelId, clientId: grant.clientId, scopes, expiresAt: now + HOUR_S * 1000, grant: grantKey });
    return token;
  }

  private issueRefresh(grant: Grant, grantKey: string, now: number): string {
    const token = opaque('1//0', 48);
    const testing = this.state.app.publishingStatus === 'testing';
    this.refreshTokens.set(token, { grant: grantKey, issuedAt: now, lastUsedAt: now, expiresAt: testing ? now + TESTING_REFRESH_MS : undefined });
    grant.refreshTokens.push(token);
    while (grant.refreshTokens.length > REFRESH_TOKENS_PER_GRANT) this.refreshTokens.delete(grant.refreshTokens.shift()!);
    return token;
  }

  /** POST /revoke: an access or a refresh token; either revokes the whole grant (all of its tokens). */
  private revokeToken(token: string | undefined): void {
    const grantKey = token ? this.refreshTokens.get(token)?.grant ?? this.accessTokens.get(token)?.grant : undefined;
    if (!grantKey) throw tokenError(400, 'invalid_token', 'Token expired or revoked');
    this.counters.revocations++;
    this.dropGrant(grantKey);
  }

  /** `POST /youtube/revoke {account}`: the account removes the app's access (every client). */
  revokeChannel(channelId: string): number {
    let n = 0;
    for (const [key, grant] of this.grants) {
      if (grant.channelId !== channelId) continue;
      n += this.dropGrant(key);
    }
    return n;
  }

  private dropGrant(grantKey: string): number {
    const grant = this.grants.get(grantKey);
    let n = 0;
    for (const t of grant?.refreshTokens ?? []) if (this.refreshTokens.delete(t)) n++;
    for (const [t, a] of this.accessTokens) if (a.grant === grantKey && this.accessTokens.delete(t)) n++;
    this.grants.delete(grantKey);
    return n;
  }

  /** The live access token behind a bearer credential, or undefined (expired, revoked, unknown). */
  authenticate(token: string | undefined): AccessToken | undefined {
    const a = token ? this.accessTokens.get(token) : undefined;
    if (!a || a.expiresAt <= this.state.clock.now()) return undefined;
    return a;
  }

  liveTokens(): { access: number; refresh: number } {
    const now = this.state.clock.now();
    return { access: [...this.accessTokens.values()].filter((a) => a.expiresAt > now).length, refresh: this.refreshTokens.size };
  }

  reset(): void {
    this.consents = [];
    this.codes.clear();
    this.grants.clear();
    this.refreshTokens.clear();
    this.accessTokens.clear();
    this.counters = zeroCounters();
  }
}
