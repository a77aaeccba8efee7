import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpFailure, listen, sendJson } from '../platforms/http-io.ts';
import { FaultBox, validRedirectUri } from '../platforms/oauth-kit.ts';
import type { ControlAnswer, PlatformEmulator, PlatformEmulatorOptions } from '../platforms/types.ts';
import { TiktokOAuth } from './oauth.ts';
import { Posting } from './posting.ts';
import { Publishes } from './publishes.ts';
import { defaultTiktokApp, TiktokState, type TiktokAppSettings } from './state.ts';
import { ChunkUploads } from './uploads.ts';
import { Webhooks } from './webhooks.ts';

// TikTok Login Kit v2 + Content Posting API (EMULATOR.md, "The other platforms"): `oauth` (TIKTOK_OAUTH_URL:
// /v2/auth/authorize/) and `api` (TIKTOK_API_URL: /v2/oauth/token/, /v2/oauth/revoke/, /v2/user/info/,
// /v2/post/publish/…, and the upload_url PUTs under /video/), plus the `/tiktok/…` control calls.

function answerError(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpFailure) return sendJson(res, err.status, err.body, err.headers);
  sendJson(res, 500, { data: {}, error: { code: 'internal_error', message: String(err), log_id: '' } });
}

const ok = (body: unknown): ControlAnswer => ({ status: 200, body });
const fail = (status: number, error: string): ControlAnswer => ({ status, body: { error } });

export async function startTiktokEmulator(opts: PlatformEmulatorOptions): Promise<PlatformEmulator> {
  const host = opts.host ?? '127.0.0.1';
  const state = new TiktokState(opts.clock, opts.apps);
  const faults = new FaultBox();
  const oauth = new TiktokOAuth(state);
  const publishes = new Publishes(state);
  const webhooks = new Webhooks(state);
  let apiBase = '';
  const posting = new Posting(state, oauth, publishes, faults, () => apiBase);
  const uploads = new ChunkUploads(state, publishes, faults);

  const oauthListener = await listen(host, async (req, res, url) => {
    if (req.method === 'GET' && url.pathname === '/v2/auth/authorize/') return oauth.authorize(res, url);
    throw new HttpFailure(404, { error: 'not_found' });
  }, answerError);
  const apiListener = await listen(host, async (req: IncomingMessage, res, url) => {
    if (req.method === 'POST' && (url.pathname === '/v2/oauth/token/' || url.pathname === '/v2/oauth/revoke/')) return oauth.handle(req, res, url);
    if (url.pathname === '/video/') return uploads.handle(req, res, url);
    return posting.handle(req, res, url);
  }, answerError);
  apiBase = apiListener.url;

  const settled = () => {
    for (const p of publishes.all.values()) publishes.settle(p);
    return [...publishes.all.values()];
  };

  const control = async (method: string, path: string, _query: URLSearchParams, body: unknown): Promise<ControlAnswer | undefined> => {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    switch (`${method} ${path}`) {
      case 'POST /accounts': {
        if (typeof b.username !== 'string' || !/^[\w.]{2,24}$/.test(b.username)) return fail(400, 'username: 2-24 letters, digits, _ or .');
        if (b.private !== undefined && typeof b.private !== 'boolean') return fail(400, 'private: boolean');
        try {
          const c = state.addCreator(b.username, b.private === true);
          return ok({ accountId: c.openId, openId: c.openId, username: c.username });
        } catch (err) {
          if (err instanceof HttpFailure) return { status: err.status, body: err.body };
          throw err;
        }
      }
      case 'POST /consent': {
        const creator = b.account === undefined ? undefined : state.findCreator(b.account);
        if (b.account !== undefined && !creator) return fail(404, 'unknown account');
        if (b.deny !== true && !creator && state.creators.size === 0) return fail(404, 'no creator to approve as: POST /tiktok/accounts first');
        return ok({ queued: oauth.queueConsent(creator ?? [...state.creators.values()].at(-1), b.deny === true) });
      }
      case 'POST /revoke': {
        const creator = state.findCreator(b.account);
        if (!creator) return fail(b.account === undefined ? 400 : 404, b.account === undefined ? 'account is required' : 'unknown account');
        return ok({ revoked: oauth.revokeCreator(creator.openId) });
      }
      case 'POST /webhook-url':
        if (!validRedirectUri(typeof b.url === 'string' ? b.url : undefined)) return fail(400, 'url: an absolute http(s) URL');
        webhooks.url = b.url as string;
        return ok({ url: webhooks.url });
      case 'POST /events': {
        const creator = state.findCreator(b.account);
        if (typeof b.event !== 'string' || !b.event) return fail(400, 'event is required, e.g. authorization.removed');
        if (!creator) return fail(b.account === undefined ? 400 : 404, b.account === undefined ? 'account is required' : 'unknown account');
        if (!webhooks.url) return fail(409, 'no webhook URL: POST /tiktok/webhook-url first');
        let content = (typeof b.content === 'object' && b.content !== null ? b.content : {}) as Record<string, unknown>;
        if (b.event === 'authorization.removed') {
          // The access token is already revoked when the app receives this event.
          oauth.revokeCreator(creator.openId);
          content = { reason: typeof b.reason === 'number' ? b.reason : 1 };
        }
        return ok(await webhooks.deliver(b.event, creator.openId, content));
      }
      case 'GET /posts':
        return ok(settled().filter((p) => p.postId).map((p) => ({
          id: p.postId, publishId: p.publishId, accountId: p.openId, caption: p.title ?? '', mediaType: 'video', mediaSha256: p.sha256,
          bytes: p.videoSize, privacy: p.privacy, publishedAt: new Date(p.publishedAt!).toISOString(),
        })));
      case 'GET /uploads':
        return ok(settled().map((p) => ({
          publishId: p.publishId, accountId: p.openId, kind: p.kind, status: p.status, videoSize: p.videoSize, chunkSize: p.chunkSize,
          totalChunks: p.totalChunks, chunksReceived: p.chunksReceived, committed: p.committed, bytesReceived: p.bytesReceived, puts: p.puts,
        })));
      case 'GET /webhooks':
        return ok(webhooks.deliveries);
      case 'GET /stats': {
        const all = [...publishes.all.values()];
        return ok({ ...oauth.counters, ...oauth.liveTokens(), publishes: all.length, posts: all.filter((p) => p.postId).length, bytesReceived: all.reduce((n, p) => n + p.bytesReceived, 0) });
      }
      case 'GET /app':
        return ok(state.app);
      case 'POST /app': {
        const next = applySettings(state.app, b);
        if (typeof next === 'string') return fail(400, next);
        state.app = next;
        return ok(state.app);
      }
      default:
        return undefined;
    }
  };

  return {
    name: 'tiktok',
    urls: { api: apiListener.url, oauth: oauthListener.url },
    control,
    fault: (f) => faults.arm(f),
    reset: () => {
      state.reset();
      oauth.reset();
      publishes.reset();
      posting.reset();
      webhooks.reset();
      faults.clear();
    },
    stop: async () => {
      await Promise.all([oauthListener.stop(), apiListener.stop()]);
    },
  };
}

function applySettings(current: TiktokAppSettings, patch: Record<string, unknown>): TiktokAppSettings | string {
  const next = { ...current };
  const defaults = defaultTiktokApp();
  for (const [key, value] of Object.entries(patch)) {
    if (!(key in defaults)) return `unknown setting ${key}`;
    if (key === 'audited') {
      if (typeof value !== 'boolean') return 'audited: boolean';
      next.audited = value;
    } else {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return `${key}: a number ≥ 0`;
      (next as unknown as Record<string, number>)[key] = value;
    }
  }
  return next;
}
