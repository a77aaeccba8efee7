import type { ServerResponse } from 'node:http';
import { HttpFailure, listen, sendJson } from '../platforms/http-io.ts';
import { FaultBox } from '../platforms/oauth-kit.ts';
import type { ControlAnswer, PlatformEmulator, PlatformEmulatorOptions } from '../platforms/types.ts';
import { DataApi } from './api.ts';
import { GoogleOAuth } from './oauth.ts';
import { defaultGoogleApp, YoutubeState, type GoogleAppSettings } from './state.ts';
import { ResumableUploads } from './uploads.ts';
import { Videos } from './videos.ts';

// YouTube Data API v3 + Google OAuth 2.0 (EMULATOR.md, "The other platforms"): three loopback listeners,
// `api` (YOUTUBE_API_URL: /youtube/v3/…), `upload` (YOUTUBE_UPLOAD_URL: /upload/youtube/v3/videos) and
// `oauth` (GOOGLE_OAUTH_URL: /o/oauth2/v2/auth, /token, /revoke), and the `/youtube/…` control calls.

function answerError(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpFailure) return sendJson(res, err.status, err.body, err.headers);
  sendJson(res, 500, { error: { code: 500, message: String(err), errors: [{ reason: 'internalError', domain: 'global', message: String(err) }] } });
}

const ok = (body: unknown): ControlAnswer => ({ status: 200, body });
const fail = (status: number, error: string): ControlAnswer => ({ status, body: { error } });

export async function startYoutubeEmulator(opts: PlatformEmulatorOptions): Promise<PlatformEmulator> {
  const host = opts.host ?? '127.0.0.1';
  const state = new YoutubeState(opts.clock, opts.apps);
  const faults = new FaultBox();
  const oauth = new GoogleOAuth(state);
  const videos = new Videos(state);
  let uploadBase = '';
  const uploads = new ResumableUploads(state, oauth, videos, faults, () => uploadBase);
  const api = new DataApi(state, oauth, videos, faults);

  const oauthListener = await listen(host, (req, res, url) => oauth.handle(req, res, url), answerError);
  const apiListener = await listen(host, (req, res, url) => api.handle(req, res, url), answerError);
  const uploadListener = await listen(host, (req, res, url) => uploads.handle(req, res, url), answerError);
  uploadBase = uploadListener.url;

  const control = async (method: string, path: string, _query: URLSearchParams, body: unknown): Promise<ControlAnswer | undefined> => {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const route = `${method} ${path}`;
    switch (route) {
      case 'POST /accounts': {
        if (typeof b.username !== 'string' || !/^[\w.-]{1,64}$/.test(b.username)) return fail(400, 'username: 1-64 letters, digits, _ . -');
        try {
          const c = state.addChannel(b.username);
          return ok({ accountId: c.id, channelId: c.id, title: c.title });
        } catch (err) {
          if (err instanceof HttpFailure) return { status: err.status, body: err.body };
          throw err;
        }
      }
      case 'POST /consent': {
        const deny = b.deny === true;
        const channel = b.account === undefined ? undefined : state.findChannel(b.account);
        if (b.account !== undefined && !channel) return fail(404, 'unknown account');
        if (!deny && !channel && state.channels.size === 0) return fail(404, 'no channel to approve as: POST /youtube/accounts first');
        return ok({ queued: oauth.queueConsent(channel ?? [...state.channels.values()].at(-1), deny) });
      }
      case 'POST /revoke': {
        const channel = state.findChannel(b.account);
        if (!channel) return fail(b.account === undefined ? 400 : 404, b.account === undefined ? 'account is required' : 'unknown account');
        return ok({ revoked: oauth.revokeChannel(channel.id) });
      }
      case 'GET /videos':
        // Every video the API created, each once (a resumed upload is still one video).
        return ok([...videos.all.values()].map((v) => {
          return {
            id: v.id, accountId: v.channelId, title: v.title, description: v.description, mediaType: 'video', mediaSha256: v.sha256,
            bytes: v.bytes, privacy: v.privacy, requestedPrivacy: v.requestedPrivacy, publishedAt: new Date(v.publishedAt).toISOString(),
          };
        }));
      case 'GET /uploads':
        return ok(uploads.list());
      case 'GET /quota':
        return ok(state.quota.view(state.clock.now()));
      case 'GET /stats': {
        const sessions = uploads.list();
        return ok({
          ...oauth.counters, ...oauth.liveTokens(), videos: videos.all.size, uploadSessions: sessions.length,
          bytesReceived: sessions.reduce((n, s) => n + s.bytesReceived, 0), quota: state.quota.view(state.clock.now()),
        });
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
    name: 'youtube',
    urls: { api: apiListener.url, upload: uploadListener.url, oauth: oauthListener.url },
    control,
    fault: (f) => faults.arm(f),
    reset: () => {
      state.reset();
      oauth.reset();
      videos.reset();
      uploads.reset();
      faults.clear();
    },
    stop: async () => {
      await Promise.all([oauthListener.stop(), apiListener.stop(), uploadListener.stop()]);
    },
  };
}

/** `POST /youtube/app {…}`: a partial update of the Google Cloud project's settings, validated. */
function applySettings(current: GoogleAppSettings, patch: Record<string, unknown>): GoogleAppSettings | string {
  const next = { ...current };
  const defaults = defaultGoogleApp();
  for (const [key, value] of Object.entries(patch)) {
    if (!(key in defaults)) return `unknown setting ${key}`;
    if (key === 'publishingStatus') {
      if (value !== 'testing' && value !== 'production') return 'publishingStatus: testing | production';
      next.publishingStatus = value;
    } else if (key === 'verified') {
      if (typeof value !== 'boolean') return 'verified: boolean';
      next.verified = value;
    } else if (key === 'insertsPerDay' && value === null) {
      next.insertsPerDay = null;
    } else {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return `${key}: a number ≥ 0`;
      (next as unknown as Record<string, number>)[key] = value;
    }
  }
  return next;
}
