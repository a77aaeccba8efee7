import {
  PlatformControlError, type ControlAnswer, type EmulatorApps, type EmulatorClock, type PlatformEmulator, type PlatformEmulatorOptions, type PlatformFault,
} from '../platforms/types.ts';
import { Accounts, type Account } from './accounts.ts';
import { PlatformFaults } from './faults.ts';
import { GraphError, accessTokenOf, invalidParam, str, unknownObject } from './graph.ts';
import { OAuthFlow } from './oauth.ts';
import { Publishing, type Post, type PublishingRules } from './publishing.ts';
import { MetaHttpServer, type RequestContext, type Route } from './server.ts';
import { TokenStore, revokeReasons, type RevokeReason, type TokenRecord } from './tokens.ts';
import { WebhookSender } from './webhooks.ts';

// What Instagram (API with Instagram Login) and Threads share: accounts that approve an OAuth request,
// user tokens (short → long → refreshed), container publishing with a 24-hour quota, webhooks signed
// with the app secret, faults, and the control calls common to both (EMULATOR.md "The other platforms").
// Each platform adds its own Graph routes and error codes.

export interface UserPlatformSpec {
  name: 'instagram' | 'threads';
  tokenPrefix: string;
  requiredScope: string;
  publishScope: string;
  exchangeGrant: string;
  refreshGrant: string;
  rules: PublishingRules;
  /** How a post shows in `GET /<platform>/posts`. */
  postView: (p: Post) => Record<string, unknown>;
}

export interface UserPlatformOptions extends PlatformEmulatorOptions {
  webhookRetries?: number;
  webhookRetryDelayMs?: number;
}

export class UserPlatform {
  readonly clock: EmulatorClock;
  readonly accounts = new Accounts();
  readonly tokens: TokenStore;
  readonly oauth: OAuthFlow;
  readonly faults = new PlatformFaults();
  readonly webhooks: WebhookSender;
  readonly publishing: Publishing;
  private readonly apps: EmulatorApps;

  constructor(readonly spec: UserPlatformSpec, opts: UserPlatformOptions) {
    this.clock = opts.clock;
    this.apps = opts.apps;
    const meta = () => this.apps.meta;
    this.tokens = new TokenStore(this.clock, spec.tokenPrefix, () => meta().appId);
    this.oauth = new OAuthFlow({ clock: this.clock, app: meta, accounts: this.accounts, tokens: this.tokens, requiredScope: spec.requiredScope, platform: spec.name });
    this.webhooks = new WebhookSender({ app: meta, retries: opts.webhookRetries, retryDelayMs: opts.webhookRetryDelayMs });
    this.publishing = new Publishing(this.clock, spec.rules);
  }

  /** The caller's token and the account a path names (`me` or its id); another account's id is unknown to it. */
  caller(ctx: RequestContext, pathId: string): { token: TokenRecord; account: Account } {
    const token = this.tokens.check(accessTokenOf(ctx.req, ctx.params));
    const id = pathId === 'me' ? token.subject : pathId;
    const account = this.accounts.get(id);
    if (!account || account.id !== token.subject) throw unknownObject(pathId, ctx.method);
    return { token, account };
  }

  requireScope(token: TokenRecord, scope: string): void {
    if (!token.scopes.includes(scope)) throw new GraphError(400, 10, `(#10) Application does not have permission for this action (${scope} was not granted)`);
  }

  /** GET /access_token (short → long) and GET /refresh_access_token on the Graph host. */
  tokenRoutes(): Route[] {
    const answer = (rec: TokenRecord) => ({ body: { access_token: rec.token, token_type: 'bearer', expires_in: this.tokens.expiresInS(rec) } });
    return [
      { method: 'GET', pattern: /^\/access_token$/, handler: (ctx) => {
        if (ctx.params.grant_type !== this.spec.exchangeGrant) throw invalidParam(`(#100) grant_type must be ${this.spec.exchangeGrant}`);
        if (str(ctx.params.client_secret) !== this.apps.meta.appSecret) throw new GraphError(400, 1, 'Error validating client secret.');
        return answer(this.tokens.exchange(accessTokenOf(ctx.req, ctx.params)));
      } },
      { method: 'GET', pattern: /^\/refresh_access_token$/, handler: (ctx) => {
        if (ctx.params.grant_type !== this.spec.refreshGrant) throw invalidParam(`(#100) grant_type must be ${this.spec.refreshGrant}`);
        return answer(this.tokens.refresh(accessTokenOf(ctx.req, ctx.params)));
      } },
    ];
  }

  /** The control calls both platforms answer; `extra` handles the platform's own. */
  async control(method: string, path: string, query: URLSearchParams, body: Record<string, unknown>,
    extra?: (method: string, path: string, body: Record<string, unknown>) => Promise<ControlAnswer | undefined>): Promise<ControlAnswer | undefined> {
    try {
      const key = `${method} ${path}`;
      switch (key) {
        case 'POST /accounts': {
          const acc = this.accounts.create(body.username, this.clock.now());
          return ok({ accountId: acc.id, username: acc.username });
        }
        case 'POST /consent':
          return ok(this.oauth.queueConsent(body));
        case 'POST /revoke': {
          const acc = this.accounts.resolve(body.account);
          const reason = (body.reason ?? 'deauthorized') as RevokeReason;
          if (!revokeReasons.includes(reason)) throw new PlatformControlError(400, `reason must be one of ${revokeReasons.join(', ')}`);
          return ok({ accountId: acc.id, tokens: this.tokens.revoke(acc.id, reason) });
        }
        case 'POST /webhook-url':
          return ok(await this.webhooks.register(body));
        case 'GET /webhooks':
          return ok(this.webhooks.deliveries());
        case 'GET /posts': {
          const accountId = query.get('accountId') ?? undefined;
          return ok(this.publishing.allPosts(accountId).map(this.spec.postView));
        }
        default:
          return extra ? await extra(method, path, body) : undefined;
      }
    } catch (err) {
      if (err instanceof PlatformControlError) return { status: err.status, body: { error: err.message } };
      throw err;
    }
  }

  /** Starts the OAuth and Graph listeners and assembles the PlatformEmulator. */
  async start(host: string, routes: { oauth: Route[]; api: Route[] }, rateLimit: () => GraphError,
    extraControl?: (method: string, path: string, body: Record<string, unknown>) => Promise<ControlAnswer | undefined>): Promise<PlatformEmulator> {
    const faults = { faults: this.faults, rateLimit };
    const oauth = new MetaHttpServer(`${this.spec.name}-oauth`, routes.oauth, faults);
    const api = new MetaHttpServer(`${this.spec.name}-api`, routes.api, faults);
    const urls = { api: await api.listen(host), oauth: await oauth.listen(host) };
    return {
      name: this.spec.name,
      urls,
      control: (method, path, query, body) => this.control(method, path, query, (body ?? {}) as Record<string, unknown>, extraControl),
      fault: (f: PlatformFault) => this.faults.arm(f),
      reset: () => {
        this.accounts.reset();
        this.tokens.reset();
        this.oauth.reset();
        this.faults.reset();
        this.webhooks.reset();
        this.publishing.reset();
      },
      stop: async () => {
        this.webhooks.close();
        await Promise.all([oauth.close(), api.close()]);
      },
    };
  }
}

export const ok = (body: unknown): ControlAnswer => ({ status: 200, body });
