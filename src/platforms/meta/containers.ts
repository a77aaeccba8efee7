import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, isAppError } from '../../errors.ts';
import type { Driver, DriverContext, MediaType, OutboundMedia, OutboundMessage } from '../adapter.ts';
import { graphAppError, graphVerdict, isGraphApiError, type GraphClient, type GraphFailure, type GraphVerdict } from './graph.ts';
import { PublishQuota } from './publish-quota.ts';
import type { MetaUserLogin } from './user-login.ts';
import { MetaTokenKeeper } from './user-tokens.ts';

// One Instagram or Threads account's I/O: the profile (GET /me), and a message published through a
// container: create (POST /{user}/media | /threads) → poll the container's status until FINISHED →
// publish (POST /{user}/media_publish | /threads_publish).
//
// EXACTLY ONCE: the container id is stored (encrypted, a connection secret named after the message)
// BEFORE the publish call. A container publishes once: Meta refuses a second publish of it, so a retry
// of the same message — after a crash, a lost answer, a 5xx — never makes a second post. The retry asks
// the container: FINISHED → publish it now (the first try never reached Meta); PUBLISHED → the post
// exists, its id is found by reading the account's media (the newest posts carrying this text, made
// after the container was created), never by publishing again. A crash between creating the container
// and storing its id leaves a container nobody publishes; Meta expires it after 24 hours.
//
// QUOTA: the account's publishing limit is read from the API (on connect, and again when older than
// `quotaStaleMs`) and counted locally; a post over it is refused before any call (429
// PLATFORM_QUOTA_EXCEEDED with retryAfter).

export interface ContainerPlatform {
  /** "Instagram", "Threads" (messages, never a token). */
  name: string;
  /** Prefix of the per-message record secret. */
  prefix: string;
  edges: { create: string; publish: string; list: string; limit: string };
  /** The container's status field: Instagram `status_code`, Threads `status`. */
  statusField: string;
  /** The text field of a post in the account's media list: Instagram `caption`, Threads `text`. */
  textField: string;
  profileFields: string;
  quotaName: string;
  /** Webhook fields each account subscribes the app to on connect (Instagram: POST /{user}/subscribed_apps). */
  subscribe?: string;
  /** Container parameters for a message (and its media's public link, when it has media). */
  containerParams(msg: OutboundMessage, link: string | undefined): Record<string, string>;
  /** Carousels (Instagram): item containers (is_carousel_item), then one CAROUSEL container naming them. */
  carousel?: {
    minItems: number;
    maxItems: number;
    types: readonly MediaType[];
    itemParams(item: OutboundMedia, link: string): Record<string, string>;
    /** The CAROUSEL container's parameters: its children (container ids) and the caption. */
    params(children: string[], caption: string): Record<string, string>;
  };
  /** The platform's own Graph codes, before the shared ones. */
  verdict(f: GraphFailure): GraphVerdict | undefined;
}

export interface ContainerDriverOptions {
  graph: GraphClient;
  login: MetaUserLogin;
  /**
   * The signed public URL the platform downloads a message's file from (`item`: the index of one of a
   * carousel's `items`); undefined: media cannot be sent.
   */
  mediaLink?: (msg: OutboundMessage, item?: number) => Promise<string | undefined> | string | undefined;
  refreshAfterMs: number;
  /** How often the connection's watcher checks the token (refresh when due). */
  watchMs: number;
  /** How often the watcher reads the profile, so revoked access shows without a send. */
  probeMs: number;
  /** Container status reads, this far apart (Instagram suggests no more than once a minute for 5 minutes on video). */
  pollMs: number;
  pollMaxMs: number;
  quotaStaleMs: number;
  now?: () => number;
}

/** A record outlives its container (24 hours) by a day, for a retry that comes late. */
const KEEP_MS = 48 * 3600_000;
const PUBLISH_TRIES = 4;

/**
 * What a message's publication has made so far. `containerId` is the container that publishes (a
 * CAROUSEL's for a carousel); a carousel's item containers are kept in `children` as each is created,
 * so a retry reuses them: items are never published on their own, only through their carousel.
 */
interface PublishRecord { containerId?: string; children?: string[]; userId: string; text: string; at: number; mediaId?: string }
type Created = PublishRecord & { containerId: string };

export interface ContainerDriver extends Driver {
  keeper: MetaTokenKeeper;
  quota: PublishQuota;
}

export function containerDriver(ctx: DriverContext, p: ContainerPlatform, o: ContainerDriverOptions): ContainerDriver {
  const now = o.now ?? Date.now;
  const keeper = new MetaTokenKeeper(ctx.secrets, o.login, o.refreshAfterMs, now);
  const quota = new PublishQuota(p.quotaName, o.quotaStaleMs, now);
  const recordName = (messageId: string) => `${p.prefix}_pub_${messageId.replace(/-/g, '').toLowerCase()}`;
  let userId: string | undefined;

  const failure = (err: unknown, phase: 'connect' | 'send' | 'read'): unknown => {
    if (!isGraphApiError(err)) return err;
    return graphAppError(err, graphVerdict(err.failure, p.verdict, phase), p.name);
  };

  const call = async <T>(method: 'GET' | 'POST', path: string, phase: 'connect' | 'send' | 'read', body?: unknown, query?: Record<string, string>): Promise<T> => {
    const token = await keeper.access();
    try {
      return await o.graph.call<T>(method, path, token, body, query);
    } catch (err) {
      throw failure(err, phase);
    }
  };

  const me = async (): Promise<{ id: string; username?: string; name?: string }> => {
    const u = await call<{ id?: string; user_id?: string; username?: string; name?: string }>('GET', '/me', 'connect', undefined, { fields: p.profileFields });
    const id = u.user_id ?? u.id;
    if (typeof id !== 'string') throw new AppError('PLATFORM_UNAVAILABLE', `${p.name} answered /me without an id`);
    userId = id;
    return { id, ...(u.username ? { username: u.username } : {}), ...(u.name ? { name: u.name } : {}) };
  };

  const readQuota = async (): Promise<void> => {
    const r = await call<{ data?: Array<{ quota_usage?: number; config?: { quota_total?: number; quota_duration?: number } }> }>(
      'GET', `/${userId}/${p.edges.limit}`, 'read', undefined, { fields: 'quota_usage,config' });
    const row = r.data?.[0];
    if (typeof row?.quota_usage === 'number' && typeof row.config?.quota_total === 'number') {
      quota.sync({ usage: row.quota_usage, total: row.config.quota_total, durationS: row.config.quota_duration ?? 86_400 });
    }
  };

  const slots = {
    async connect() {
      keeper.forget();
      if (!(await keeper.authorized())) return { authorized: false };
      const s = await ctx.secrets.load();
      for (const [name, v] of Object.entries(s)) if (name.startsWith(`${p.prefix}_pub_`) && (parse(v)?.at ?? 0) + KEEP_MS < now()) await ctx.secrets.remove(name);
      const u = await ctx.guard(() => me());
      await readQuota().catch((err) => ctx.logger.warn(`${p.name} publishing limit not read`, { connectionId: ctx.connectionId, code: isAppError(err) ? err.code : 'unknown' }));
      // Without the subscription the account's comments and messages never reach the webhook; posting
      // works without it, so a refusal is logged, and the next connect asks again.
      if (p.subscribe) {
        await call('POST', `/${u.id}/subscribed_apps`, 'read', { subscribed_fields: p.subscribe })
          .catch((err) => ctx.logger.warn(`${p.name} webhook subscription refused`, { connectionId: ctx.connectionId, code: isAppError(err) ? err.code : 'unknown' }));
      }
      return { authorized: true, profile: { platformUserId: u.id, displayName: u.name || u.username || u.id, ...(u.username ? { username: u.username } : {}) } };
    },
    // The token's refresh is the connection's own (one refresher per connection): checked every
    // watchMs; a 5xx or no answer is tried again next time, only 190 ends in error (REVOKED).
    watch(sendBack: (e: { type: string; error?: unknown }) => void): () => void {
      let busy = false;
      let lastProbe = now();
      const tick = async () => {
        if (busy) return;
        busy = true;
        try {
          await keeper.refreshIfDue().catch((err) => {
            if (isAppError(err) && err.code === 'PLATFORM_AUTH_REVOKED') throw err;
            ctx.logger.info(`${p.name} token refresh failed; trying again later`, { connectionId: ctx.connectionId, code: isAppError(err) ? err.code : 'unknown' });
          });
          if (now() - lastProbe >= o.probeMs) {
            lastProbe = now();
            await me().catch((err) => {
              if (isAppError(err) && err.category === 'reauthorize') throw err;
            });
          }
        } catch (err) {
          sendBack({ type: 'REVOKED', error: err });
        } finally {
          busy = false;
        }
      };
      const timer = setInterval(() => void tick(), o.watchMs);
      timer.unref();
      return () => clearInterval(timer);
    },
    // Neither platform has an endpoint that revokes a user token: forgetting it is the logout.
    async logOut() {
      keeper.forget();
    },
  };

  const status = async (containerId: string): Promise<string> => {
    const r = await call<Record<string, unknown>>('GET', `/${containerId}`, 'read', undefined, { fields: `id,${p.statusField}` });
    return String(r[p.statusField] ?? '');
  };

  /** The post a PUBLISHED container became: the oldest of the account's newest posts with this text, made after the container. */
  const publishedId = async (rec: Created): Promise<string> => {
    const r = await call<{ data?: Array<Record<string, unknown>> }>('GET', `/${rec.userId}/${p.edges.list}`, 'read', undefined, { fields: `id,${p.textField},timestamp`, limit: '50' });
    const since = rec.at - 5_000; // Graph timestamps have whole seconds; clocks differ a little
    const hits = (r.data ?? []).filter((m) => String(m[p.textField] ?? '') === rec.text && Date.parse(String(m.timestamp ?? '')) >= since);
    const oldest = hits.at(-1);
    // Not among the newest 50 (a busy account): the container id stands for the post, which exists.
    return typeof oldest?.id === 'string' ? oldest.id : rec.containerId;
  };

  const finish = async (name: string, rec: PublishRecord, mediaId: string) => {
    await ctx.secrets.save(name, JSON.stringify({ ...rec, mediaId })).catch(() => undefined);
    return { platformMessageId: mediaId };
  };

  async function send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const name = recordName(msg.id);
    let rec = parse((await ctx.secrets.load())[name]);
    if (rec?.mediaId) return { platformMessageId: rec.mediaId };
    if (rec?.containerId) {
      const st = await status(rec.containerId).catch((err) => {
        // A container Meta no longer knows (100): it expired unpublished; start again.
        if (isAppError(err) && err.category === 'rejected') return 'EXPIRED';
        throw err;
      });
      if (st === 'PUBLISHED') return finish(name, rec, await publishedId(rec as Created));
      if (st === 'EXPIRED') {
        await ctx.secrets.remove(name);
        rec = undefined;
      } else if (st === 'ERROR') {
        throw new AppError('PLATFORM_REJECTED', `${p.name} could not process the post's media`);
      }
    }
    let ready: Created;
    if (rec?.containerId) ready = rec as Created;
    else {
      if (!userId) await me();
      if (quota.stale && quota.waitS() === 0) await readQuota();
      const wait = quota.waitS();
      if (wait) throw new AppError('PLATFORM_QUOTA_EXCEEDED', `${p.name} publishes at most ${quota.view()[0]?.limit} posts per account in 24 hours`, { retryAfter: wait, scope: 'connection' });
      ready = msg.items?.length ? await createCarousel(msg, name, rec) : await createSingle(msg, name);
    }
    for (let tries = 0; ; tries++) {
      const st = await awaitFinished(ready);
      if (st === 'PUBLISHED') return finish(name, ready, await publishedId(ready));
      try {
        const r = await call<{ id?: string }>('POST', `/${ready.userId}/${p.edges.publish}`, 'send', { creation_id: ready.containerId });
        quota.note();
        if (typeof r.id !== 'string') return finish(name, ready, await publishedId(ready));
        return finish(name, ready, r.id);
      } catch (err) {
        if (isAppError(err) && err.code === 'PLATFORM_QUOTA_EXCEEDED') {
          await readQuota().catch(() => undefined);
          throw err;
        }
        if (isAppError(err) && err.category === 'reauthorize') throw err;
        // Did it publish (an answer lost, a repeat of a publish that went through)? The container says.
        const after = await status(ready.containerId).catch(() => undefined);
        if (after === 'PUBLISHED') {
          quota.note();
          return finish(name, ready, await publishedId(ready));
        }
        if (tries + 1 >= PUBLISH_TRIES || !(after === 'FINISHED' || after === 'IN_PROGRESS') || (isAppError(err) && !err.retryable)) throw err;
        await sleep(Math.min(4000, 250 * 2 ** tries));
      }
    }
  }

  async function createSingle(msg: OutboundMessage, name: string): Promise<Created> {
    const link = msg.media ? await o.mediaLink?.(msg) : undefined;
    if (msg.media && !link) throw new AppError('PLATFORM_UNSUPPORTED', `${p.name} downloads media from a public link: this service has no signed media link configured`);
    const params = p.containerParams(msg, link);
    const created = await call<{ id?: string }>('POST', `/${userId}/${p.edges.create}`, 'read', params);
    if (typeof created.id !== 'string') throw new AppError('PLATFORM_UNAVAILABLE', `${p.name} created a container without an id`);
    const rec: Created = { containerId: created.id, userId: userId!, text: params.caption ?? params.text ?? '', at: now() };
    await ctx.secrets.save(name, JSON.stringify(rec));
    return rec;
  }

  // A carousel: an item container per file (each stored as soon as it exists), then the CAROUSEL
  // container naming them (stored before it is published, like a single post's). A retry after a
  // crash reuses the stored items while Meta still has them; an item made but not yet stored when the
  // process died is left to expire (24 h): items never become posts on their own.
  async function createCarousel(msg: OutboundMessage, name: string, prior: PublishRecord | undefined): Promise<Created> {
    const c = p.carousel;
    const items = msg.items ?? [];
    if (!c) throw new AppError('PLATFORM_UNSUPPORTED', `${p.name} posts carry one file, not several`);
    if (items.length < c.minItems || items.length > c.maxItems) {
      throw new AppError('PLATFORM_UNSUPPORTED', `A ${p.name} carousel has ${c.minItems} to ${c.maxItems} photos or videos, not ${items.length}`);
    }
    const odd = items.find((i) => !c.types.includes(i.type));
    if (odd) throw new AppError('PLATFORM_UNSUPPORTED', `A ${p.name} carousel holds ${c.types.join(' and ')} files, not ${odd.type}`);
    let children = prior?.children ?? [];
    for (const id of children) {
      const st = await status(id).catch(() => 'EXPIRED');
      if (st !== 'FINISHED' && st !== 'IN_PROGRESS') {
        children = [];
        break;
      }
    }
    const base: PublishRecord = { userId: userId!, text: msg.text, at: prior?.at ?? now() };
    for (let i = children.length; i < items.length; i++) {
      const link = await o.mediaLink?.(msg, i);
      if (!link) throw new AppError('PLATFORM_UNSUPPORTED', `${p.name} downloads media from a public link: this service has no signed media link configured`);
      const created = await call<{ id?: string }>('POST', `/${userId}/${p.edges.create}`, 'read', c.itemParams(items[i]!, link));
      if (typeof created.id !== 'string') throw new AppError('PLATFORM_UNAVAILABLE', `${p.name} created a carousel item without an id`);
      children = [...children, created.id];
      await ctx.secrets.save(name, JSON.stringify({ ...base, children }));
    }
    const created = await call<{ id?: string }>('POST', `/${userId}/${p.edges.create}`, 'read', c.params(children, msg.text));
    if (typeof created.id !== 'string') throw new AppError('PLATFORM_UNAVAILABLE', `${p.name} created a carousel without an id`);
    const rec: Created = { ...base, children, containerId: created.id };
    await ctx.secrets.save(name, JSON.stringify(rec));
    return rec;
  }

  /** Polls the container until it can be published (FINISHED) or was (PUBLISHED). */
  async function awaitFinished(rec: Created): Promise<string> {
    const until = now() + o.pollMaxMs;
    for (;;) {
      const st = await status(rec.containerId);
      if (st === 'FINISHED' || st === 'PUBLISHED') return st;
      if (st === 'ERROR') throw new AppError('PLATFORM_REJECTED', `${p.name} could not process the post's media (container ERROR)`);
      if (st === 'EXPIRED') throw new AppError('PLATFORM_REJECTED', `${p.name} expired the container before it was published`);
      if (now() >= until) throw new AppError('PLATFORM_UNAVAILABLE', `${p.name} is still processing the media; the post is tried again later`);
      await sleep(o.pollMs);
    }
  }

  return {
    keeper,
    quota,
    quotas: () => quota.view(),
    slots: slots as unknown as Driver['slots'],
    send,
    received: () => null,
    bytes: () => 0,
    trim: () => undefined,
    logOut: () => slots.logOut(),
    dispose: async () => undefined,
  };
}

function parse(v: string | undefined): PublishRecord | undefined {
  if (!v) return undefined;
  try {
    const r = JSON.parse(v) as PublishRecord;
    return (typeof r.containerId === 'string' || Array.isArray(r.children)) && typeof r.userId === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}
