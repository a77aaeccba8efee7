import { PlatformControlError, type ControlAnswer, type PlatformEmulator } from '../platforms/types.ts';
import { GraphError, accessTokenOf, graphTime, newId, selectFields, str, truthy, unknownObject } from '../meta/graph.ts';
import { defaultProcessingMs, page, type Container, type ContainerKind, type Post } from '../meta/publishing.ts';
import type { RequestContext, Route } from '../meta/server.ts';
import { UserPlatform, type UserPlatformOptions } from '../meta/user-platform.ts';

// The Threads API as its reference describes it:
// - OAuth host (threads.net): GET /oauth/authorize.
// - Graph host (graph.threads.net, optional /vN.N prefix): POST /oauth/access_token → {access_token,
//   user_id}; GET /access_token (th_exchange_token); GET /refresh_access_token (th_refresh_token);
//   GET /me; POST /{threads-user-id}/threads (TEXT, IMAGE, VIDEO, carousel items, CAROUSEL, replies with
//   reply_to_id); GET /{container-id}?fields=status,error_message; POST /{threads-user-id}/threads_publish;
//   GET /{threads-user-id}/threads; GET /{threads-media-id}; GET /{threads-user-id}/threads_publishing_limit.
// Limits: 250 posts and 1,000 replies per moving 24 hours (a carousel counts once), text 500 characters,
// a carousel 2–20 items.

export interface ThreadsOptions extends UserPlatformOptions {
  processingMs?: Partial<Record<ContainerKind, number>>;
  postLimit?: number;
  replyLimit?: number;
}

const PUBLISH_SCOPE = 'threads_content_publish';
const ID = '(me|\\d+)';
const thError = (code: number, message: string, subcode?: number) => new GraphError(400, code, message, { type: 'THApiException', subcode });

export async function startThreadsEmulator(opts: ThreadsOptions): Promise<PlatformEmulator> {
  const postLimit = opts.postLimit ?? 250;
  const replyLimit = opts.replyLimit ?? 1000;
  const th = new UserPlatform({
    name: 'threads',
    tokenPrefix: 'THAA',
    requiredScope: 'threads_basic',
    publishScope: PUBLISH_SCOPE,
    exchangeGrant: 'th_exchange_token',
    refreshGrant: 'th_refresh_token',
    rules: {
      processingMs: { ...defaultProcessingMs, ...opts.processingMs },
      containerTtlS: 86_400,
      windowS: 86_400,
      maxImageBytes: 8 * 1024 * 1024,
      maxVideoBytes: 1024 * 1024 * 1024,
      downloadTimeoutMs: 30_000,
    },
    postView: (p) => ({ id: p.id, accountId: p.accountId, ...(p.caption ? { caption: p.caption } : {}), mediaType: p.mediaType, mediaSha256: p.mediaSha256, ...(p.children ? { children: p.children } : {}), ...(p.replyToId ? { replyToId: p.replyToId } : {}), publishedAt: new Date(p.publishedAt).toISOString() }),
  }, opts);

  const mediaView = (p: Post) => ({
    id: p.id,
    media_product_type: 'THREADS',
    media_type: p.mediaType,
    text: p.caption,
    timestamp: graphTime(p.publishedAt),
    permalink: `https://www.threads.net/@${th.accounts.get(p.accountId)?.username ?? 'unknown'}/post/${Buffer.from(p.id).toString('base64url').slice(0, 11)}`,
    username: th.accounts.get(p.accountId)?.username,
    owner: { id: p.accountId },
    is_reply: Boolean(p.replyToId),
    ...(p.replyToId ? { replied_to: { id: p.replyToId } } : {}),
  });

  const containerView = (c: Container) => {
    const status = th.publishing.status(c);
    return { id: c.id, status, ...(status === 'ERROR' ? { error_message: c.error ?? 'UNKNOWN' } : {}) };
  };

  const createContainer = async (ctx: RequestContext, m: RegExpExecArray) => {
    const { token, account } = th.caller(ctx, m[1]!);
    th.requireScope(token, PUBLISH_SCOPE);
    const p = ctx.params;
    const type = str(p.media_type)?.toUpperCase();
    const isItem = truthy(p.is_carousel_item);
    const text = str(p.text);
    if (text && [...text].length > 500) throw thError(100, '(#100) Param text must be at most 500 characters long.');
    const replyToId = str(p.reply_to_id);
    if (replyToId && !th.publishing.post(replyToId)) throw unknownObject(replyToId, 'POST');
    const base = { accountId: account.id, mediaType: type ?? '', caption: isItem ? undefined : text, isCarouselItem: isItem, children: [] as string[], replyToId };
    switch (type) {
      case 'TEXT':
        if (!text) throw thError(100, '(#100) The parameter text is required for a TEXT post.');
        if (isItem) throw thError(100, '(#100) A carousel item must be an IMAGE or a VIDEO.');
        return { body: { id: th.publishing.create({ ...base, kind: 'text' }).id } };
      case 'IMAGE': {
        const url = str(p.image_url);
        if (!url) throw thError(100, '(#100) The parameter image_url is required.');
        const r = await th.publishing.downloadImage(url);
        if (!r.ok) throw thError(100, `(#100) The image could not be downloaded from image_url (${r.detail}).`);
        return { body: { id: th.publishing.create({ ...base, kind: 'image', mediaSha256: r.sha256 }).id } };
      }
      case 'VIDEO': {
        const url = str(p.video_url);
        if (!url) throw thError(100, '(#100) The parameter video_url is required.');
        const c = th.publishing.create({ ...base, kind: 'video' });
        th.publishing.downloadVideoLater(c, url, () => 'FAILED_DOWNLOADING_VIDEO');
        return { body: { id: c.id } };
      }
      case 'CAROUSEL': {
        const children = String(p.children ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (children.length < 2 || children.length > 20) throw thError(100, '(#100) A carousel needs 2 to 20 children (container ids, comma-separated).');
        for (const id of children) {
          const child = th.publishing.containers.get(id);
          if (!child || child.accountId !== account.id || !child.isCarouselItem || child.publishedId) {
            throw thError(100, `(#100) The child container ${id} is not an unpublished carousel item of this profile.`);
          }
        }
        return { body: { id: th.publishing.create({ ...base, kind: 'carousel', children }).id } };
      }
      default:
        throw thError(100, '(#100) Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}.');
    }
  };

  const publish = (ctx: RequestContext, m: RegExpExecArray) => {
    const { token, account } = th.caller(ctx, m[1]!);
    th.requireScope(token, PUBLISH_SCOPE);
    const id = str(ctx.params.creation_id);
    if (!id) throw thError(100, '(#100) The parameter creation_id is required.');
    const c = th.publishing.containers.get(id);
    if (!c || c.accountId !== account.id) throw unknownObject(id, 'POST');
    if (c.isCarouselItem) throw thError(100, '(#100) A carousel item cannot be published on its own; publish its CAROUSEL container.');
    switch (th.publishing.status(c)) {
      case 'PUBLISHED': throw thError(100, '(#100) This container has already been published.');
      case 'IN_PROGRESS': throw thError(9007, 'The media is not ready to be published. Please wait a moment.');
      case 'ERROR': throw thError(100, `(#100) The container failed: ${c.error ?? 'UNKNOWN'}`);
      case 'EXPIRED': throw thError(100, '(#100) The container was not published within 24 hours and has expired.');
      case 'FINISHED': break;
    }
    const reply = Boolean(c.replyToId);
    if (th.publishing.usage(account.id, reply) >= (reply ? replyLimit : postLimit)) {
      throw thError(9, reply ? '(#9) The profile has reached its limit of 1,000 replies in 24 hours.' : '(#9) The profile has reached its limit of 250 posts in 24 hours.');
    }
    const kids = c.children.map((cid) => th.publishing.containers.get(cid)!);
    const post = th.publishing.publish(c, {
      mediaType: c.kind === 'carousel' ? 'CAROUSEL_ALBUM' : c.kind === 'video' ? 'VIDEO' : c.kind === 'image' ? 'IMAGE' : 'TEXT_POST',
      caption: c.caption,
      replyToId: c.replyToId,
      mediaSha256: c.kind === 'carousel' || c.kind === 'text' ? null : c.mediaSha256 ?? null,
      ...(c.kind === 'carousel' ? { children: kids.map((k) => ({ mediaType: k.kind === 'video' ? 'VIDEO' : 'IMAGE', mediaSha256: k.mediaSha256 ?? null })) } : {}),
    });
    return { body: { id: post.id } };
  };

  const readNode = (ctx: RequestContext, m: RegExpExecArray) => {
    const id = m[1]!;
    if (id === 'me' || th.accounts.get(id)) {
      const { account } = th.caller(ctx, id);
      const user = { id: account.id, username: account.username, name: account.username, threads_biography: '', threads_profile_picture_url: `https://scontent.cdninstagram.com/emulator/${account.id}.jpg` };
      return { body: selectFields(user, ctx.params.fields, ['id']) };
    }
    const token = th.tokens.check(accessTokenOf(ctx.req, ctx.params));
    const c = th.publishing.containers.get(id);
    if (c && c.accountId === token.subject) return { body: selectFields(containerView(c), ctx.params.fields, ['id']) };
    const post = th.publishing.post(id);
    if (post) return { body: selectFields(mediaView(post), ctx.params.fields, ['id']) };
    throw unknownObject(id, 'GET');
  };

  const listThreads = (ctx: RequestContext, m: RegExpExecArray) => {
    const { account } = th.caller(ctx, m[1]!);
    const posts = th.publishing.postsOf(account.id).filter((p) => !p.replyToId);
    const url = new URL(`${emu.urls.api}/${account.id}/threads`);
    return { body: page(posts, ctx.params, (p) => selectFields(mediaView(p), ctx.params.fields, ['id']), (after, limit) => {
      url.search = new URLSearchParams({ ...(str(ctx.params.fields) ? { fields: String(ctx.params.fields) } : {}), limit: String(limit), after, access_token: accessTokenOf(ctx.req, ctx.params) ?? '' }).toString();
      return url.toString();
    }) };
  };

  const publishingLimit = (ctx: RequestContext, m: RegExpExecArray) => {
    const { account } = th.caller(ctx, m[1]!);
    const row: Record<string, unknown> = {
      quota_usage: th.publishing.usage(account.id, false),
      config: { quota_total: postLimit, quota_duration: 86_400 },
      reply_quota_usage: th.publishing.usage(account.id, true),
      reply_config: { quota_total: replyLimit, quota_duration: 86_400 },
    };
    const fields = str(ctx.params.fields)?.split(',').map((f) => f.trim()) ?? ['quota_usage', 'config', 'reply_quota_usage', 'reply_config'];
    return { body: { data: [Object.fromEntries(Object.entries(row).filter(([k]) => fields.includes(k)))] } };
  };

  const tokenFromCode = (ctx: RequestContext) => {
    const { token } = th.oauth.exchangeCode(ctx.params);
    return { body: { access_token: token.token, user_id: token.subject } };
  };

  const api: Route[] = [
    { method: 'POST', pattern: /^\/oauth\/access_token\/?$/, handler: tokenFromCode },
    ...th.tokenRoutes(),
    { method: 'POST', pattern: new RegExp(`^/${ID}/threads$`), handler: createContainer },
    { method: 'POST', pattern: new RegExp(`^/${ID}/threads_publish$`), handler: publish },
    { method: 'GET', pattern: new RegExp(`^/${ID}/threads$`), handler: listThreads },
    { method: 'GET', pattern: new RegExp(`^/${ID}/threads_publishing_limit$`), handler: publishingLimit },
    { method: 'GET', pattern: new RegExp(`^/${ID}$`), handler: readNode },
  ];
  const oauth: Route[] = [
    { method: 'GET', pattern: /^\/oauth\/authorize\/?$/, handler: (ctx) => th.oauth.authorize(ctx.params), noFaults: true },
  ];
  // `POST /threads/events {account, type: reply|mention, text, from?: {username}, postId?, badSignature?}`:
  // the notification "Webhooks for Threads" shows, one object per delivery, signed like every Meta
  // webhook. Threads subscribes the app to `replies` and `mentions` in the App Dashboard, so there is no
  // per-account subscription to check. A reply names the account's post it answers (default: its newest).
  const events = async (method: string, path: string, body: Record<string, unknown>): Promise<ControlAnswer | undefined> => {
    if (`${method} ${path}` !== 'POST /events') return undefined;
    try {
      const account = th.accounts.resolve(body.account);
      const type = body.type ?? 'reply';
      const text = str(body.text);
      if (!text) throw new PlatformControlError(400, 'text is required');
      const from = (body.from ?? {}) as { username?: unknown };
      const username = str(from.username) ?? `visitor_${newId().slice(-4)}`;
      const now = th.clock.now();
      const id = newId();
      const shortcode = Buffer.from(id).toString('base64url').slice(0, 11);
      const value: Record<string, unknown> = {
        id, username, text, media_type: 'TEXT_POST', permalink: `https://www.threads.net/@${username}/post/${shortcode}`, shortcode,
        timestamp: new Date(now).toISOString().replace(/\.\d{3}Z$/, '+0000'),
      };
      let field: string;
      if (type === 'reply') {
        const postId = str(body.postId) ?? th.publishing.postsOf(account.id).find((p) => !p.replyToId)?.id;
        if (!postId) throw new PlatformControlError(400, 'postId is required (the account has published nothing)');
        field = 'replies';
        Object.assign(value, { replied_to: { id: postId }, root_post: { id: postId, owner_id: account.id, username: account.username } });
      } else if (type === 'mention') {
        field = 'mentions';
      } else {
        throw new PlatformControlError(400, 'type must be reply or mention');
      }
      const payload = {
        app_id: opts.apps.meta.appId, topic: 'moderate', target_id: account.id, time: Math.floor(now / 1000),
        subscription_id: '1000000000000001', has_uid_field: false, values: { value, field },
      };
      const d = await th.webhooks.deliver(payload, { badSignature: truthy(body.badSignature) });
      return { status: 200, body: { id, delivered: d?.ok ?? false, ...(d ? { status: d.status } : { reason: 'no webhook URL registered' }) } };
    } catch (err) {
      if (err instanceof PlatformControlError) return { status: err.status, body: { error: err.message } };
      throw err;
    }
  };
  const rateLimit = () => new GraphError(400, 4, '(#4) Application request limit reached', { transient: true });
  const emu = await th.start(opts.host ?? '127.0.0.1', { oauth, api }, rateLimit, events);
  return emu;
}
