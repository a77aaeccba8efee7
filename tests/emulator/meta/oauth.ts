import { randomBytes } from 'node:crypto';
import { PlatformControlError, type EmulatorClock } from '../platforms/types.ts';
import type { Account, Accounts } from './accounts.ts';
import { GraphError, invalidParam, str, truthy, type Params } from './graph.ts';
import type { Answer } from './server.ts';
import type { TokenRecord, TokenStore } from './tokens.ts';

// The Authorization Window and the code exchange shared by Instagram (Business Login for Instagram) and
// Threads ("Get Access Tokens"): GET /oauth/authorize?client_id&redirect_uri&response_type=code&scope&state
// shows no page here: it redirects (302) at once to redirect_uri with `code` and the same `state` (both
// platforms append `#_`, which browsers keep out of the request), as the account that the next queued
// consent names, or with error=access_denied when that consent denies. A code lives 1 hour and works once;
// the exchange needs the same redirect_uri and the app secret.

export const CODE_TTL_S = 3600;

interface Consent { account?: Account; deny: boolean }
interface CodeRecord { accountId: string; redirectUri: string; scopes: string[]; expiresAt: number; used: boolean }

export interface OAuthOptions {
  clock: EmulatorClock;
  app: () => { appId: string; appSecret: string };
  accounts: Accounts;
  tokens: TokenStore;
  /** The scope every request must carry (instagram_business_basic, threads_basic). */
  requiredScope: string;
  platform: string;
}

export class OAuthFlow {
  private consents: Consent[] = [];
  private readonly codes = new Map<string, CodeRecord>();

  constructor(private readonly o: OAuthOptions) {}

  /** `POST /<platform>/consent {account?, deny?}`: who answers the next authorize request. */
  queueConsent(body: Params): { queued: number; accountId?: string } {
    if (body.deny !== undefined && typeof body.deny !== 'boolean' && !['true', 'false', '1', '0'].includes(String(body.deny))) {
      throw new PlatformControlError(400, 'deny must be a boolean');
    }
    const deny = truthy(body.deny);
    const account = body.account === undefined || body.account === null || body.account === '' ? undefined : this.o.accounts.resolve(body.account);
    this.consents.push({ account, deny });
    return { queued: this.consents.length, ...(account ? { accountId: account.id } : {}) };
  }

  authorize(p: Params): Answer {
    const app = this.o.app();
    if (str(p.client_id) !== app.appId) return page(400, 'Invalid Request: Request parameters are invalid: Invalid platform app');
    const redirectUri = str(p.redirect_uri);
    let target: URL;
    try {
      target = new URL(redirectUri ?? '');
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('scheme');
    } catch {
      return page(400, 'Invalid Request: Request parameters are invalid: Invalid redirect_uri');
    }
    if (p.response_type !== 'code') return page(400, 'Invalid Request: Request parameters are invalid: response_type must be code');
    const scopes = String(p.scope ?? '').split(/[\s,]+/).filter(Boolean);
    if (!scopes.includes(this.o.requiredScope)) return page(400, `Invalid Scopes: ${this.o.requiredScope} is required`);
    const consent = this.consents.shift();
    if (!consent) return page(409, `No consent is queued for ${this.o.platform}: POST /${this.o.platform}/consent {account} (or {deny: true}) before opening the authorize URL`);
    target.hash = '';
    const state = str(p.state);
    if (consent.deny) {
      target.searchParams.set('error', 'access_denied');
      target.searchParams.set('error_reason', 'user_denied');
      target.searchParams.set('error_description', 'The user denied your request.');
    } else {
      const account = consent.account ?? this.o.accounts.create(undefined, this.o.clock.now());
      const code = randomBytes(96).toString('base64url');
      this.codes.set(code, { accountId: account.id, redirectUri: redirectUri!, scopes, expiresAt: this.o.clock.now() + CODE_TTL_S * 1000, used: false });
      target.searchParams.set('code', code);
    }
    if (state !== undefined) target.searchParams.set('state', state);
    return { redirect: `${target.toString()}#_` };
  }

  /** POST …/oauth/access_token with grant_type=authorization_code → a short-lived token. */
  exchangeCode(p: Params): { token: TokenRecord; scopes: string[] } {
    const app = this.o.app();
    if (str(p.client_id) !== app.appId) throw invalidParam('Invalid platform app');
    if (str(p.client_secret) !== app.appSecret) throw new GraphError(400, 1, 'Error validating client secret.');
    if (p.grant_type !== 'authorization_code') throw invalidParam('Unsupported grant_type: use authorization_code');
    const code = str(p.code);
    const rec = code ? this.codes.get(code) : undefined;
    if (!rec) throw invalidParam('Invalid authorization code');
    if (rec.used) throw invalidParam('This authorization code has been used');
    if (this.o.clock.now() >= rec.expiresAt) throw invalidParam('This authorization code has expired');
    if (str(p.redirect_uri) !== rec.redirectUri) {
      throw invalidParam('Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request');
    }
    rec.used = true;
    return { token: this.o.tokens.issue('short', rec.accountId, rec.scopes), scopes: rec.scopes };
  }

  reset(): void {
    this.consents = [];
    this.codes.clear();
  }
}

const page = (status: number, text: string): Answer => ({ status, text });
