import Joi from 'joi';
import { MACHINE_VERSION } from '../../../machines/oauth.machine.ts';
import { AppError, isAppError } from '../../errors.ts';
import type { ConnectionKind, NewConnectionPlan, OutboundMessage, PlatformAdapter } from '../adapter.ts';
import { containerDriver, type ContainerDriverOptions, type ContainerPlatform } from '../meta/containers.ts';
import { GraphClient, graphAppError, graphVerdict, isGraphApiError, type GraphFailure, type GraphVerdict } from '../meta/graph.ts';
import { MetaUserLogin } from '../meta/user-login.ts';
import { metaWebhooks } from '../meta/app-webhooks.ts';
import { parseThreadsWebhook } from '../meta/user-webhooks.ts';
import { oauthInput, providedOAuthMachine } from '../oauth-kind.ts';

// Threads (the Threads API) as an adapter of the platform interface: a Threads profile connected with
// the Threads authorization window, a message is a post published through a container: text (TEXT),
// an image (IMAGE) or a video (VIDEO) (docs/platforms/threads.md). References:
// developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions, …/long-lived-tokens,
// …/posts, …/troubleshooting (container status), …/reference/publishing, …/overview#rate-limiting.

export interface ThreadsOptions {
  appId: string;
  appSecret: string;
  /** META_VERIFY_TOKEN: with it, replies and mentions come by webhook (POST /v1/platform-webhooks/threads). */
  verifyToken?: string;
  /** graph.threads.net (THREADS_API_URL): Graph calls and the code exchange. */
  apiUrl: string;
  /** threads.net (THREADS_OAUTH_URL): the authorization window. */
  oauthUrl?: string;
  graphVersion?: string;
  mediaLink?: ContainerDriverOptions['mediaLink'];
  refreshAfterMs?: number;
  watchMs?: number;
  probeMs?: number;
  pollMs?: number;
  pollMaxMs?: number;
  quotaStaleMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export const SCOPES = ['threads_basic', 'threads_content_publish'];
/** With webhooks: replies and mentions ("Webhooks for Threads": threads_read_replies, threads_manage_mentions). */
export const WEBHOOK_SCOPES = ['threads_read_replies', 'threads_manage_mentions'];

const MB = 1024 * 1024;
const GB = 1024 * MB;

const createSchema = Joi.object({
  platform: Joi.string().valid('threads').required(),
  kind: Joi.string().valid('account').required(),
  redirectUri: Joi.string().uri({ scheme: ['https', 'http'] }).max(2048).description('where the browser goes after consent (default: the console)'),
}).label('CreateThreadsConnection').example({ platform: 'threads', kind: 'account' });

/**
 * Threads' own codes (THApiException): 9 the 24-hour limit of 250 posts; 9007 media not ready. The
 * rest are the shared Graph codes (meta/graph.ts).
 */
export function threadsVerdict(f: GraphFailure): GraphVerdict | undefined {
  if (f.code === 9) return { code: 'PLATFORM_QUOTA_EXCEEDED', category: 'quota-until', retryAfter: 3600, scope: 'connection' };
  if (f.code === 9007) return { code: 'PLATFORM_UNAVAILABLE', category: 'retry' };
  return undefined;
}

const platform: ContainerPlatform = {
  name: 'Threads',
  prefix: 'th',
  edges: { create: 'threads', publish: 'threads_publish', list: 'threads', limit: 'threads_publishing_limit' },
  statusField: 'status',
  textField: 'text',
  profileFields: 'id,username,name',
  quotaName: 'threads.posts.24h',
  containerParams(msg: OutboundMessage, link: string | undefined) {
    const text: Record<string, string> = msg.text ? { text: msg.text } : {};
    if (!msg.media) return { media_type: 'TEXT', ...text };
    if (msg.media.type === 'photo' && link) return { media_type: 'IMAGE', image_url: link, ...text };
    if (msg.media.type === 'video' && link) return { media_type: 'VIDEO', video_url: link, ...text };
    throw new AppError('PLATFORM_UNSUPPORTED', 'A Threads post is text, a photo or a video');
  },
  verdict: threadsVerdict,
};

export function threadsAdapter(o: ThreadsOptions): PlatformAdapter {
  const login = new MetaUserLogin({
    name: 'Threads', appId: o.appId, appSecret: o.appSecret,
    authorizeUrl: o.oauthUrl ?? 'https://threads.net', codeUrl: o.apiUrl, graphUrl: o.apiUrl,
    scopes: o.verifyToken ? [...SCOPES, ...WEBHOOK_SCOPES] : SCOPES, exchangeGrant: 'th_exchange_token', refreshGrant: 'th_refresh_token', timeoutMs: o.timeoutMs ?? 30_000,
  });
  const graph = new GraphClient({ baseUrl: o.apiUrl, version: o.graphVersion ?? 'v1.0', timeoutMs: o.timeoutMs ?? 30_000 });
  const account: ConnectionKind = {
    kind: 'account',
    machineVersion: MACHINE_VERSION,
    machine: providedOAuthMachine,
    input: oauthInput,
    driver: (ctx) => containerDriver(ctx, platform, {
      graph, login, ...(o.mediaLink ? { mediaLink: o.mediaLink } : {}),
      refreshAfterMs: o.refreshAfterMs ?? 7 * 86_400_000, watchMs: o.watchMs ?? 15 * 60_000, probeMs: o.probeMs ?? 6 * 3600_000,
      pollMs: o.pollMs ?? 5000, pollMaxMs: o.pollMaxMs ?? 10 * 60_000, quotaStaleMs: o.quotaStaleMs ?? 10 * 60_000, ...(o.now ? { now: o.now } : {}),
    }),
    loginSteps: ['authorize'],
    oauth: login,
    send: {
      // A post's text: 500 characters (Posts reference).
      text: { maxLength: 500, parseModes: [] },
      // A retried post asks its stored container (meta/containers.ts): never a second post.
      resendSafe: true,
      // The 250-a-day limit is counted by the driver (refused before the call); this keeps a burst polite.
      pacing: () => ({ chat: [], connection: [{ n: 5, ms: 1000 }] }),
      // Images up to 8 MB, videos up to 1 GB (Posts: "Media specifications"). Only with a media link.
      ...(o.mediaLink ? { media: { types: { photo: { maxBytes: 8 * MB }, video: { maxBytes: GB } }, captionMaxLength: 500 } } : {}),
    },
  };
  return {
    name: 'threads',
    kinds: [account],
    errorCodes: {},
    createSchema,
    // Threads subscribes the app to replies and mentions in the App Dashboard, not per account.
    webhooks: metaWebhooks({ appSecret: o.appSecret, ...(o.verifyToken ? { verifyToken: o.verifyToken } : {}) }, parseThreadsWebhook),
    async prepare(body): Promise<NewConnectionPlan> {
      return { kind: String(body.kind), secrets: {}, login: { method: 'oauth' }, audit: { platform: 'threads' } };
    },
    classify(err) {
      if (isAppError(err)) return err;
      if (isGraphApiError(err)) return graphAppError(err, graphVerdict(err.failure, threadsVerdict, 'read'), 'Threads');
      if (err instanceof TypeError) return new AppError('PLATFORM_UNAVAILABLE', 'Threads did not answer', { cause: err });
      return undefined;
    },
  };
}
