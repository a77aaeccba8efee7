import Joi from 'joi';
import { MACHINE_VERSION } from '../../../machines/oauth.machine.ts';
import { AppError, isAppError } from '../../errors.ts';
import type { ConnectionKind, NewConnectionPlan, OutboundMessage, PlatformAdapter } from '../adapter.ts';
import { containerDriver, type ContainerDriverOptions, type ContainerPlatform } from '../meta/containers.ts';
import { GraphClient, graphAppError, graphVerdict, isGraphApiError, type GraphFailure, type GraphVerdict } from '../meta/graph.ts';
import { MetaUserLogin } from '../meta/user-login.ts';
import { metaWebhooks } from '../meta/app-webhooks.ts';
import { parseInstagramWebhook } from '../meta/user-webhooks.ts';
import { oauthInput, providedOAuthMachine } from '../oauth-kind.ts';

// Instagram (the Instagram API with Instagram Login) as an adapter of the platform interface: a
// professional account connected with Business Login for Instagram, a message is a post published
// through a container: an image (IMAGE), a video (REELS) (docs/platforms/instagram.md). References:
// developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/business-login,
// …/content-publishing, …/reference/ig-user/media, …/ig-user/media_publish, …/ig-container,
// …/ig-user/content_publishing_limit, …/error-codes.

export interface InstagramOptions {
  appId: string;
  appSecret: string;
  /** META_VERIFY_TOKEN: with it, comments and messages come by webhook (POST /v1/platform-webhooks/instagram). */
  verifyToken?: string;
  /** graph.instagram.com (INSTAGRAM_API_URL). */
  apiUrl: string;
  /** www.instagram.com for authorize and api.instagram.com for the code (one base when INSTAGRAM_OAUTH_URL is set). */
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

export const SCOPES = ['instagram_business_basic', 'instagram_business_content_publish'];
/** With webhooks: reading comments and messages (Business Login for Instagram, "Permissions"). */
export const WEBHOOK_SCOPES = ['instagram_business_manage_comments', 'instagram_business_manage_messages'];
/** The fields each connected account subscribes the app to (POST /{ig-user-id}/subscribed_apps). */
const WEBHOOK_FIELDS = 'comments,messages';

const MB = 1024 * 1024;

const createSchema = Joi.object({
  platform: Joi.string().valid('instagram').required(),
  kind: Joi.string().valid('account').required(),
  redirectUri: Joi.string().uri({ scheme: ['https', 'http'] }).max(2048).description('where the browser goes after consent (default: the console)'),
}).label('CreateInstagramConnection').example({ platform: 'instagram', kind: 'account' });

/**
 * Instagram's own codes ("Error codes" of the Instagram Platform): 9 / 2207042 the 24-hour publishing
 * limit; 9007 / 2207027 media not ready; -2 / 2207003 a download timeout (transient); 2207020 an
 * expired container, 2207032 a failed create, 9004 / 2207052 a media URL it cannot fetch, 36000 an
 * image too large: refusals of this post.
 */
export function instagramVerdict(f: GraphFailure): GraphVerdict | undefined {
  if (f.code === 9 || f.subcode === 2207042) return { code: 'PLATFORM_QUOTA_EXCEEDED', category: 'quota-until', retryAfter: 3600, scope: 'connection' };
  if (f.code === 9007 || f.subcode === 2207027 || f.subcode === 2207003) return { code: 'PLATFORM_UNAVAILABLE', category: 'retry' };
  if (f.subcode === 2207020 || f.subcode === 2207032 || f.subcode === 2207052 || f.code === 9004 || f.code === 36000) return { code: 'PLATFORM_REJECTED', category: 'rejected' };
  return undefined;
}

const platform: ContainerPlatform = {
  name: 'Instagram',
  prefix: 'ig',
  edges: { create: 'media', publish: 'media_publish', list: 'media', limit: 'content_publishing_limit' },
  statusField: 'status_code',
  textField: 'caption',
  profileFields: 'user_id,username,name',
  quotaName: 'instagram.posts.24h',
  containerParams(msg: OutboundMessage, link: string | undefined) {
    const caption: Record<string, string> = msg.text ? { caption: msg.text } : {};
    if (msg.media?.type === 'photo' && link) return { media_type: 'IMAGE', image_url: link, ...caption };
    // A feed video is a reel since 2023 (media_type VIDEO is refused for feed posts).
    if (msg.media?.type === 'video' && link) return { media_type: 'REELS', video_url: link, ...caption };
    throw new AppError('PLATFORM_UNSUPPORTED', 'An Instagram post is a photo or a video: send media of type photo or video');
  },
  // Carousels (Content Publishing, "Carousel posts"): 2 to 10 images and videos, each an item container
  // (is_carousel_item; a video item is media_type VIDEO), then a CAROUSEL container with their ids as
  // `children` and the caption; the carousel counts as one post against the 24-hour limit.
  carousel: {
    minItems: 2,
    maxItems: 10,
    types: ['photo', 'video'],
    itemParams(item, link): Record<string, string> {
      if (item.type === 'photo') return { is_carousel_item: 'true', media_type: 'IMAGE', image_url: link };
      if (item.type === 'video') return { is_carousel_item: 'true', media_type: 'VIDEO', video_url: link };
      throw new AppError('PLATFORM_UNSUPPORTED', 'An Instagram carousel holds photos and videos only');
    },
    params: (children, caption) => ({ media_type: 'CAROUSEL', children: children.join(','), ...(caption ? { caption } : {}) }),
  },
  verdict: instagramVerdict,
};

export function instagramAdapter(o: InstagramOptions): PlatformAdapter {
  const login = new MetaUserLogin({
    name: 'Instagram', appId: o.appId, appSecret: o.appSecret,
    authorizeUrl: o.oauthUrl ?? 'https://www.instagram.com', codeUrl: o.oauthUrl ?? 'https://api.instagram.com', graphUrl: o.apiUrl,
    scopes: o.verifyToken ? [...SCOPES, ...WEBHOOK_SCOPES] : SCOPES, exchangeGrant: 'ig_exchange_token', refreshGrant: 'ig_refresh_token', timeoutMs: o.timeoutMs ?? 30_000,
  });
  const graph = new GraphClient({ baseUrl: o.apiUrl, version: o.graphVersion ?? 'v23.0', timeoutMs: o.timeoutMs ?? 30_000 });
  const account: ConnectionKind = {
    kind: 'account',
    machineVersion: MACHINE_VERSION,
    machine: providedOAuthMachine,
    input: oauthInput,
    driver: (ctx) => containerDriver(ctx, o.verifyToken ? { ...platform, subscribe: WEBHOOK_FIELDS } : platform, {
      graph, login, ...(o.mediaLink ? { mediaLink: o.mediaLink } : {}),
      refreshAfterMs: o.refreshAfterMs ?? 7 * 86_400_000, watchMs: o.watchMs ?? 15 * 60_000, probeMs: o.probeMs ?? 6 * 3600_000,
      pollMs: o.pollMs ?? 5000, pollMaxMs: o.pollMaxMs ?? 10 * 60_000, quotaStaleMs: o.quotaStaleMs ?? 10 * 60_000, ...(o.now ? { now: o.now } : {}),
    }),
    loginSteps: ['authorize'],
    oauth: login,
    send: {
      // The caption: 2,200 characters (ig-user/media).
      text: { maxLength: 2200, parseModes: [] },
      // A retried post asks its stored container (meta/containers.ts): never a second post.
      resendSafe: true,
      // The 50-a-day limit is counted by the driver (refused before the call); this keeps a burst polite.
      pacing: () => ({ chat: [], connection: [{ n: 5, ms: 1000 }] }),
      // Images: JPEG up to 8 MiB; reels up to 300 MB (Content Publishing "Limitations"). Only with a media link.
      ...(o.mediaLink ? { media: { types: { photo: { maxBytes: 8 * MB }, video: { maxBytes: 300 * MB } }, captionMaxLength: 2200, carousel: { minItems: 2, maxItems: 10, types: ['photo', 'video'] } } } : {}),
    },
  };
  return {
    name: 'instagram',
    kinds: [account],
    errorCodes: {},
    createSchema,
    webhooks: metaWebhooks({ appSecret: o.appSecret, ...(o.verifyToken ? { verifyToken: o.verifyToken } : {}) }, parseInstagramWebhook),
    async prepare(body): Promise<NewConnectionPlan> {
      return { kind: String(body.kind), secrets: {}, login: { method: 'oauth' }, audit: { platform: 'instagram' } };
    },
    classify(err) {
      if (isAppError(err)) return err;
      if (isGraphApiError(err)) return graphAppError(err, graphVerdict(err.failure, instagramVerdict, 'read'), 'Instagram');
      if (err instanceof TypeError) return new AppError('PLATFORM_UNAVAILABLE', 'Instagram did not answer', { cause: err });
      return undefined;
    },
  };
}
