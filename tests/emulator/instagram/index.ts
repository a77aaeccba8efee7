import { PlatformControlError, type ControlAnswer, type PlatformEmulator } from '../platforms/types.ts';
import { GraphError, accessTokenOf, graphTime, invalidParam, newId, selectFields, str, truthy, unknownObject } from '../meta/graph.ts';
import type { MediaResult } from '../meta/media.ts';
import { defaultProcessingMs, page, type Container, type ContainerKind, type ContainerStatus, type Post } from '../meta/publishing.ts';
import type { RequestContext, Route } from '../meta/server.ts';
import { UserPlatform, ok, type UserPlatformOptions } from '../meta/user-platform.ts';

// Instagram API with Instagram Login, as the Instagram Platform reference describes it:
// - OAuth host (www.instagram.com / api.instagram.com): GET /oauth/authorize, POST /oauth/access_token
//   → {data: [{access_token, user_id, permissions}]}, errors as {error_type, code, error_message}.
// - Graph host (graph.instagram.com, optional /vNN.N prefix): GET /access_token (ig_exchange_token),
//   GET /refresh_access_token (ig_refresh_token), GET /me, POST /{ig-user-id}/media (containers: image,
//   REELS, STORIES, carousel items and CAROUSEL), GET /{container-id}?fields=status_code,
//   POST /{ig-user-id}/media_publish, GET /{ig-user-id}/media, GET /{media-id},
//   GET /{ig-user-id}/content_publishing_limit, POST|GET|DELETE /{ig-user-id}/subscribed_apps.
// Limits: 50 published posts per moving 24 hours (the reference's content_publishing_limit sample), an
// image at most 8 MiB, a carousel 2–10 items, a caption 2,200 characters.

export interface InstagramOptions extends UserPlatformOptions {
  processingMs?: Partial<Record<ContainerKind, number>>;
  postLimit?: number;
}

const PUBLISH_SCOPE = 'instagram_business_content_publish';
const WEBHOOK_FIELDS = ['comments', 'live_comments', 'mentions', 'messages', 'message_reactions', 'messaging_optins', 'messaging_postbacks', 'messaging_referral', 'messaging_seen', 'story_insights'];
const ID = '(me|\\d+)';

const downloadError = (r: Exclude<MediaResult, { ok: true }>): GraphError => {
  if (r.reason === 'timeout') return new GraphError(400, -2, 'It takes too long to download the media.', { subcode: 2207003, transient: true, userTitle: 'Timeout' });
  if (r.reason === 'too-large') return new GraphError(400, 36000, 'The image size is too large.', { subcode: 2207004, userTitle: 'Image size too large', userMsg: 'The image is too large to download. It should be less than 8 MiB.' });
  return new GraphError(400, 9004, 'Media download has failed. The media URI doesn\'t meet our requirements.', { subcode: 2207052, userMsg: `The media could not be fetched from this URI (${r.detail}).` });
};

const statusText: Record<ContainerStatus, string> = {
  IN_PROGRESS: 'In Progress: Media is still being processed.',
  FINISHED: 'Finished: Media has been uploaded and it is complete.',
  ERROR: 'Error',
  EXPIRED: 'Expired: The container was not published within 24 hours and has expired.',
  PUBLISHED: 'Published: Media has been published.',
};

export async function startInstagramEmulator(opts: InstagramOptions): Promise<PlatformEmulator> {
  const postLimit = opts.postLimit ?? 50;
  const ig = new UserPlatform({
    name: 'instagram',
    tokenPrefix: 'IGAA',
    requiredScope: 'instagram_business_basic',
    publishScope: PUBLISH_SCOPE,
    exchangeGrant: 'ig_exchange_token',
    refreshGrant: 'ig_refresh_token',
    rules: {
      processingMs: { ...defaultProcessingMs, ...opts.processingMs },
      containerTtlS: 86_400,
      windowS: 86_400,
      maxImageBytes: 8 * 1024 * 1024,
      maxVideoBytes: 300 * 1024 * 1024,
      downloadTimeoutMs: 30_000,
    },
    postView: (p) => ({ id: p.id, accountId: p.accountId, ...(p.caption ? { caption: p.caption } : {}), mediaType: p.mediaType, mediaSha256: p.mediaSha256, ...(p.children ? { children: p.children } : {}), publishedAt: new Date(p.publishedAt).toISOString() }),
  }, opts);

  const mediaView = (p: Post) => {
    const account = ig.accounts.get(p.accountId);
    return {
      id: p.id,
      caption: p.caption,
      media_type: p.mediaType,
      media_product_type: p.productType,
      timestamp: graphTime(p.publishedAt),
      permalink: `https://www.instagram.com/p/${Buffer.from(p.id).toString('base64url').slice(0, 11)}/`,
      username: account?.username,
      owner: { id: p.accountId },
      ...(p.children ? { children: { data: p.children.map((_c, i) => ({ id: `${p.id}${i}` })) } } : {}),
    };
  };

  const containerView = (c: Container) => {
    const s = ig.publishing.status(c);
    return { id: c.id, status_code: s, status: s === 'ERROR' ? `Error: ${c.error ?? 'The media could not be processed.'}` : statusText[s] };
  };

  const createContainer = async (ctx: RequestContext, m: RegExpExecArray) => {
    const { token, account } = ig.caller(ctx, m[1]!);
    ig.requireScope(token, PUBLISH_SCOPE);
    const p = ctx.params;
    const isItem = truthy(p.is_carousel_item);
    const type = str(p.media_type)?.toUpperCase() ?? 'IMAGE';
    const caption = str(p.caption);
    if (caption && caption.length > 2200) throw invalidParam('(#100) The caption is longer than 2,200 characters.');
    const base = { accountId: account.id, mediaType: type, caption: isItem ? undefined : caption, isCarouselItem: isItem, children: [] as string[] };
    if (type === 'CAROUSEL') {
      const children = String(p.children ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      if (children.length < 2 || children.length > 10) throw invalidParam('(#100) A carousel needs 2 to 10 children (container ids, comma-separated).');
      for (const id of children) {
        const child = ig.publishing.containers.get(id);
        if (!child || child.accountId !== account.id || !child.isCarouselItem || child.publishedId) {
          throw invalidParam(`(#100) The child container ${id} is not an unpublished carousel item of this account.`);
        }
      }
      return { body: { id: ig.publishing.create({ ...base, kind: 'carousel', children }).id } };
    }
    // A carousel item is an image (media_type IMAGE or none) or a video (VIDEO); reels and stories are
    // posts of their own ("Carousel posts": "images, videos, or a mix").
    const imageTypes = isItem ? ['IMAGE'] : ['IMAGE', 'STORIES'];
    const videoTypes = isItem ? ['VIDEO'] : ['REELS', 'STORIES'];
    const videoUrl = str(p.video_url);
    const imageUrl = str(p.image_url);
    if (type === 'VIDEO' && !isItem) throw invalidParam('(#100) The media_type VIDEO is no longer supported for feed posts; use REELS.');
    if (videoTypes.includes(type) && (videoUrl || type !== 'STORIES')) {
      if (!videoUrl) throw invalidParam('(#100) The parameter video_url is required.');
      const c = ig.publishing.create({ ...base, kind: 'video' });
      ig.publishing.downloadVideoLater(c, videoUrl, (r) => downloadError(r).message);
      return { body: { id: c.id } };
    }
    if (!imageTypes.includes(type)) throw invalidParam(isItem ? '(#100) A carousel item\'s media_type must be IMAGE or VIDEO.' : '(#100) media_type must be one of IMAGE, REELS, STORIES, CAROUSEL.');
    if (!imageUrl) throw invalidParam('(#100) The parameter image_url is required.');
    const r = await ig.publishing.downloadImage(imageUrl);
    if (!r.ok) throw downloadError(r);
    return { body: { id: ig.publishing.create({ ...base, kind: 'image', mediaSha256: r.sha256 }).id } };
  };

  const publish = (ctx: RequestContext, m: RegExpExecArray) => {
    const { token, account } = ig.caller(ctx, m[1]!);
    ig.requireScope(token, PUBLISH_SCOPE);
    const id = str(ctx.params.creation_id);
    if (!id) throw invalidParam('(#100) The parameter creation_id is required.');
    const c = ig.publishing.containers.get(id);
    if (!c || c.accountId !== account.id) throw unknownObject(id, 'POST');
    if (c.isCarouselItem) throw invalidParam('(#100) A carousel item cannot be published on its own; publish its CAROUSEL container.');
    switch (ig.publishing.status(c)) {
      case 'PUBLISHED': throw invalidParam('(#100) This container has already been published.');
      case 'IN_PROGRESS': throw new GraphError(400, 9007, 'Media ID is not available', { subcode: 2207027, userTitle: 'Media ID is not available', userMsg: 'The media is not ready for publishing, please wait for a moment' });
      case 'ERROR': throw new GraphError(400, -1, 'Create media fail, please try to re-create media', { subcode: 2207032 });
      case 'EXPIRED': throw new GraphError(400, -2, 'The media you are trying to access has expired. Please try to upload again.', { subcode: 2207020 });
      case 'FINISHED': break;
    }
    if (ig.publishing.usage(account.id, false) >= postLimit) {
      throw new GraphError(400, 9, 'Application request limit reached', { subcode: 2207042, userTitle: 'Publishing limit reached', userMsg: 'You reached maximum number of posts that is allowed to be published by Content Publishing API.' });
    }
    const kids = c.children.map((cid) => ig.publishing.containers.get(cid)!);
    const post = ig.publishing.publish(c, {
      mediaType: c.kind === 'carousel' ? 'CAROUSEL_ALBUM' : c.kind === 'video' ? 'VIDEO' : 'IMAGE',
      productType: c.mediaType === 'STORIES' ? 'STORY' : c.mediaType === 'REELS' ? 'REELS' : 'FEED',
      caption: c.caption,
      mediaSha256: c.kind === 'carousel' ? null : c.mediaSha256 ?? null,
      ...(c.kind === 'carousel' ? { children: kids.map((k) => ({ mediaType: k.kind === 'video' ? 'VIDEO' : 'IMAGE', mediaSha256: k.mediaSha256 ?? null })) } : {}),
    });
    return { body: { id: post.id } };
  };

  const readNode = (ctx: RequestContext, m: RegExpExecArray) => {
    const id = m[1]!;
    if (id === 'me' || ig.accounts.get(id)) {
      const { account } = ig.caller(ctx, id);
      const user = { id: account.id, user_id: account.id, username: account.username, account_type: 'BUSINESS', name: account.username, media_count: ig.publishing.postsOf(account.id).length };
      return { body: selectFields(user, ctx.params.fields, ['id']) };
    }
    const token = ig.tokens.check(accessTokenOf(ctx.req, ctx.params));
    const c = ig.publishing.containers.get(id);
    if (c && c.accountId === token.subject) return { body: selectFields(containerView(c), ctx.params.fields, ['id']) };
    const p = ig.publishing.post(id);
    if (p && p.accountId === token.subject) return { body: selectFields(mediaView(p), ctx.params.fields, ['id']) };
    throw unknownObject(id, 'GET');
  };

  const listMedia = (ctx: RequestContext, m: RegExpExecArray) => {
    const { account } = ig.caller(ctx, m[1]!);
    const posts = ig.publishing.postsOf(account.id).filter((p) => p.productType !== 'STORY');
    const url = new URL(`${emu.urls.api}/${account.id}/media`);
    return { body: page(posts, ctx.params, (p) => selectFields(mediaView(p), ctx.params.fields, ['id']), (after, limit) => {
      url.search = new URLSearchParams({ ...(str(ctx.params.fields) ? { fields: String(ctx.params.fields) } : {}), limit: String(limit), after, access_token: accessTokenOf(ctx.req, ctx.params) ?? '' }).toString();
      return url.toString();
    }) };
  };

  const publishingLimit = (ctx: RequestContext, m: RegExpExecArray) => {
    const { account } = ig.caller(ctx, m[1]!);
    let sinceMs: number | undefined;
    if (ctx.params.since !== undefined) {
      const s = Number(ctx.params.since);
      if (!Number.isFinite(s) || s * 1000 < ig.clock.now() - 86_400_000) throw invalidParam('(#100) since must be a Unix timestamp no older than 24 hours');
      sinceMs = s * 1000;
    }
    const row = { quota_usage: ig.publishing.usage(account.id, false, sinceMs), config: { quota_total: postLimit, quota_duration: 86_400 } };
    const fields = str(ctx.params.fields)?.split(',').map((f) => f.trim()) ?? ['quota_usage'];
    return { body: { data: [Object.fromEntries(Object.entries(row).filter(([k]) => fields.includes(k)))] } };
  };

  const subscribe = (ctx: RequestContext, m: RegExpExecArray) => {
    const { account } = ig.caller(ctx, m[1]!);
    if (ctx.method === 'DELETE') {
      account.subscribedFields.clear();
      return { body: { success: true } };
    }
    if (ctx.method === 'GET') {
      return { body: { data: account.subscribedFields.size ? [{ id: opts.apps.meta.appId, name: 'Integration Service (emulator)', subscribed_fields: [...account.subscribedFields] }] : [] } };
    }
    const fields = String(ctx.params.subscribed_fields ?? '').split(',').map((f) => f.trim()).filter(Boolean);
    if (fields.length === 0) throw invalidParam('(#100) The parameter subscribed_fields is required.');
    const bad = fields.find((f) => !WEBHOOK_FIELDS.includes(f));
    if (bad) throw invalidParam(`(#100) Param subscribed_fields[0] must be one of {${WEBHOOK_FIELDS.join(', ')}} - got "${bad}".`);
    for (const f of fields) account.subscribedFields.add(f);
    return { body: { success: true } };
  };

  const tokenFromCode = (ctx: RequestContext) => {
    try {
      const { token, scopes } = ig.oauth.exchangeCode(ctx.params);
      return { body: { data: [{ access_token: token.token, user_id: token.subject, permissions: scopes.join(',') }] } };
    } catch (err) {
      // api.instagram.com answers in its own shape, not Graph's envelope.
      if (err instanceof GraphError) return { status: 400, body: { error_type: 'OAuthException', code: 400, error_message: err.message } };
      throw err;
    }
  };

  const events = async (method: string, path: string, body: Record<string, unknown>): Promise<ControlAnswer | undefined> => {
    if (`${method} ${path}` !== 'POST /events') return undefined;
    const account = ig.accounts.resolve(body.account);
    const type = body.type ?? 'comment';
    const text = str(body.text);
    if (!text) throw new PlatformControlError(400, 'text is required');
    const from = (body.from ?? {}) as { id?: unknown; username?: unknown };
    const fromId = str(from.id) ?? newId();
    const fromName = str(from.username) ?? `visitor_${fromId.slice(-4)}`;
    const now = ig.clock.now();
    let field: string;
    let entry: Record<string, unknown>;
    const id = newId();
    if (type === 'comment') {
      const mediaId = str(body.mediaId) ?? ig.publishing.postsOf(account.id)[0]?.id;
      if (!mediaId) throw new PlatformControlError(400, 'mediaId is required (the account has published nothing)');
      field = 'comments';
      const product = ig.publishing.post(mediaId)?.productType ?? 'FEED';
      entry = { id: account.id, time: Math.floor(now / 1000), changes: [{ field, value: { from: { id: fromId, username: fromName }, media: { id: mediaId, media_product_type: product }, id, text } }] };
    } else if (type === 'message') {
      field = 'messages';
      entry = { id: account.id, time: now, messaging: [{ sender: { id: fromId }, recipient: { id: account.id }, timestamp: now, message: { mid: `aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj${id}`, text } }] };
    } else {
      throw new PlatformControlError(400, 'type must be comment or message');
    }
    if (!account.subscribedFields.has(field)) {
      return ok({ id, delivered: false, reason: `account ${account.id} has not subscribed the app to ${field} (POST /${account.id}/subscribed_apps)` });
    }
    const d = await ig.webhooks.deliver({ object: 'instagram', entry: [entry] }, { badSignature: truthy(body.badSignature) });
    return ok({ id, delivered: d?.ok ?? false, ...(d ? { status: d.status } : { reason: 'no webhook URL registered' }) });
  };

  const api: Route[] = [
    ...ig.tokenRoutes(),
    { method: 'POST', pattern: new RegExp(`^/${ID}/media$`), handler: createContainer },
    { method: 'POST', pattern: new RegExp(`^/${ID}/media_publish$`), handler: publish },
    { method: 'GET', pattern: new RegExp(`^/${ID}/media$`), handler: listMedia },
    { method: 'GET', pattern: new RegExp(`^/${ID}/content_publishing_limit$`), handler: publishingLimit },
    { method: 'POST', pattern: new RegExp(`^/${ID}/subscribed_apps$`), handler: subscribe },
    { method: 'GET', pattern: new RegExp(`^/${ID}/subscribed_apps$`), handler: subscribe },
    { method: 'DELETE', pattern: new RegExp(`^/${ID}/subscribed_apps$`), handler: subscribe },
    { method: 'GET', pattern: new RegExp(`^/${ID}$`), handler: readNode },
  ];
  const oauth: Route[] = [
    { method: 'GET', pattern: /^\/oauth\/authorize\/?$/, handler: (ctx) => ig.oauth.authorize(ctx.params), noFaults: true },
    { method: 'POST', pattern: /^\/oauth\/access_token\/?$/, handler: tokenFromCode },
  ];
  const rateLimit = () => new GraphError(400, 4, '(#4) Application request limit reached', { transient: true });
  const emu = await ig.start(opts.host ?? '127.0.0.1', { oauth, api }, rateLimit, async (method, path, body) => {
    try {
      return await events(method, path, body);
    } catch (err) {
      if (err instanceof PlatformControlError) return { status: err.status, body: { error: err.message } };
      throw err;
    }
  });
  return emu;
}
