import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, isAppError } from '../../errors.ts';
import { OAuthTokenKeeper, SECRET } from '../../oauth/tokens.ts';
import type { Driver, DriverContext, OutboundMedia, OutboundMessage } from '../adapter.ts';
import type { OAuthSlots } from '../oauth-kind.ts';
import { ByteReader, FileReadError } from '../upload-stream.ts';
import type { TiktokClient } from './client.ts';

// One TikTok creator's I/O: the profile (user/info), and a message as a Direct Post: creator_info/query
// (privacy options), video/init (FILE_UPLOAD), the chunks PUT in order to the upload_url, status/fetch
// until PUBLISH_COMPLETE.
//
// EXACTLY ONCE: the publish_id and upload_url are stored (encrypted, as a connection secret named after
// the message) BEFORE the first chunk. A retry finds them and asks status/fetch: PUBLISH_COMPLETE is the
// answer (no second post), PROCESSING_UPLOAD with `uploaded_bytes` says which chunk comes next, so at most
// the chunk in flight is sent again. A crash between init and storing the record leaves an init with no
// bytes, which TikTok never publishes (it counts against the 6 inits a minute, nothing else).
//
// PACING: TikTok allows 6 video/init calls per minute per user access token (Direct Post reference,
// "Rate limits"). The driver counts its inits in a sliding minute and refuses the 7th before the call
// with PLATFORM_RATE_LIMITED and the seconds until the oldest leaves the window.

export interface TiktokDriverOptions {
  client: TiktokClient;
  /** Bytes per chunk: 5–64 MB per the Media Transfer Guide (10 MB default). */
  chunkBytes: number;
  /** privacy_level of posts; unaudited clients may post SELF_ONLY only. */
  privacy: string;
  initsPerMinute: number;
  statusPollMs: number;
  statusMaxMs: number;
  now?: () => number;
}

const MB = 1024 * 1024;
const KEEP_MS = 8 * 24 * 3600_000;
const CHUNK_TRIES = 5;

interface PublishRecord { publishId: string; uploadUrl: string; size: number; chunkSize: number; chunks: number; at: number }

const recordName = (messageId: string) => `tt_pub_${messageId.replace(/-/g, '').toLowerCase()}`;

/** The Media Transfer Guide's chunking: under 5 MB whole; else floor(size / chunk) chunks, the last one absorbing the rest. */
export function chunking(size: number, chunkBytes: number): { chunkSize: number; chunks: number } {
  if (size < 5 * MB) return { chunkSize: size, chunks: 1 };
  const chunkSize = Math.min(Math.max(chunkBytes, 5 * MB), 64 * MB, size);
  return { chunkSize, chunks: Math.floor(size / chunkSize) };
}

export function tiktokDriver(ctx: DriverContext, o: TiktokDriverOptions): Driver & { keeper: OAuthTokenKeeper } {
  const now = o.now ?? Date.now;
  const keeper = new OAuthTokenKeeper(ctx.secrets, o.client, now);
  const inits: number[] = [];

  const withToken = async <T>(fn: (token: string) => Promise<T>): Promise<T> => {
    try {
      return await fn(await keeper.access());
    } catch (err) {
      if (isAppError(err) && err.code === 'PLATFORM_AUTH_REVOKED' && err.message.startsWith('TikTok answered 401 access_token_invalid')) {
        keeper.expire();
        return fn(await keeper.access());
      }
      throw err;
    }
  };

  const takeInit = () => {
    const t = now();
    while (inits.length && inits[0]! <= t - 60_000) inits.shift();
    if (inits.length >= o.initsPerMinute) {
      const wait = Math.max(1, Math.ceil((inits[0]! + 60_000 - t) / 1000));
      throw new AppError('PLATFORM_RATE_LIMITED', `TikTok takes ${o.initsPerMinute} post inits a minute per creator: paced`, { retryAfter: wait });
    }
    inits.push(t);
  };

  const slots: OAuthSlots = {
    async connect() {
      keeper.forget();
      if (!(await keeper.authorized())) return { authorized: false };
      const s = await ctx.secrets.load();
      for (const [name, v] of Object.entries(s)) if (name.startsWith('tt_pub_') && (parse(v)?.at ?? 0) + KEEP_MS < now()) await ctx.secrets.remove(name);
      const data = await ctx.guard(() => withToken((t) => o.client.call('GET', '/v2/user/info/?fields=open_id,display_name', t)));
      const user = data.user ?? {};
      if (typeof user.open_id !== 'string') throw new AppError('PLATFORM_UNAVAILABLE', 'TikTok answered user/info without open_id');
      return { authorized: true, profile: { platformUserId: user.open_id, displayName: user.display_name ?? user.open_id } };
    },
    async logOut() {
      const s = await ctx.secrets.load();
      if (s[SECRET.access]) await o.client.revoke(s[SECRET.access]);
      keeper.forget();
    },
    watch() { /* authorization.removed arrives as a platform webhook, not over a held link */ },
  };

  const status = (publishId: string) => withToken((t) => o.client.call('POST', '/v2/post/publish/status/fetch/', t, { publish_id: publishId }));

  /** PUTs the chunks from `startChunk` on, in order, each streamed from the file's pieces (no chunk buffer: src/platforms/upload-stream.ts). */
  async function uploadFrom(rec: PublishRecord, media: OutboundMedia, startChunk: number): Promise<void> {
    const file = new ByteReader(media.read());
    try {
      await file.passOver(startChunk * rec.chunkSize);
      for (let i = startChunk; i < rec.chunks; i++) {
        // The last chunk absorbs the rest (up to 2 × chunkSize - 1 bytes, per the Media Transfer Guide).
        const first = i * rec.chunkSize;
        const length = (i === rec.chunks - 1 ? rec.size : first + rec.chunkSize) - first;
        await o.client.putChunk(rec.uploadUrl, media.contentType, first, length, file.take(length), rec.size);
      }
    } finally {
      await file.close();
    }
  }

  async function send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const media = msg.media;
    if (!media || media.type !== 'video') throw new AppError('PLATFORM_UNSUPPORTED', 'A TikTok post is a video: send media of type video');
    const name = recordName(msg.id);
    let rec = parse((await ctx.secrets.load())[name]);
    let startChunk = 0;
    let uploaded = false;
    if (rec) {
      const st = await status(rec.publishId);
      if (st.status === 'FAILED') throw new AppError('PLATFORM_REJECTED', `TikTok could not publish the video (${st.fail_reason ?? 'failed'})`);
      if (st.status === 'PUBLISH_COMPLETE' || st.status === 'SEND_TO_USER_INBOX') return { platformMessageId: postIdOf(st, rec.publishId) };
      const done = Number(st.uploaded_bytes ?? 0);
      if (done >= rec.size) uploaded = true;
      else startChunk = Math.floor(done / rec.chunkSize);
    } else {
      const { chunkSize, chunks } = chunking(media.size, o.chunkBytes);
      const info = await withToken((t) => o.client.call('POST', '/v2/post/publish/creator_info/query/', t, {}));
      const options: string[] = Array.isArray(info.privacy_level_options) ? info.privacy_level_options : [];
      if (!options.includes(o.privacy)) throw new AppError('PLATFORM_REJECTED', `The creator does not offer privacy ${o.privacy} (offers ${options.join(', ')})`);
      takeInit();
      const title = [...msg.text].slice(0, 2200).join('');
      const data = await withToken((t) => o.client.call('POST', '/v2/post/publish/video/init/', t, {
        post_info: { title, privacy_level: o.privacy },
        source_info: { source: 'FILE_UPLOAD', video_size: media.size, chunk_size: chunkSize, total_chunk_count: chunks },
      }));
      if (typeof data.publish_id !== 'string' || typeof data.upload_url !== 'string') throw new AppError('PLATFORM_UNAVAILABLE', 'TikTok answered init without publish_id');
      rec = { publishId: data.publish_id, uploadUrl: data.upload_url, size: media.size, chunkSize, chunks, at: now() };
      await ctx.secrets.save(name, JSON.stringify(rec));
    }
    for (let tries = 0; !uploaded;) {
      try {
        await uploadFrom(rec, media, startChunk);
        uploaded = true;
      } catch (err) {
        if (isAppError(err) && !err.retryable) throw err;
        if (err instanceof FileReadError) throw err.cause; // the store failed, not the platform: nothing to re-send now
        if (++tries >= CHUNK_TRIES) throw err instanceof AppError ? err : new AppError('PLATFORM_UNAVAILABLE', 'The upload failed', { cause: err });
        const wait = isAppError(err) && err.retryAfter ? err.retryAfter * 1000 : 250 * 2 ** tries;
        await sleep(Math.min(8000, wait));
        const st = await status(rec.publishId).catch(() => undefined);
        const done = Number(st?.uploaded_bytes ?? startChunk * rec.chunkSize);
        if (done >= rec.size) uploaded = true;
        else startChunk = Math.floor(done / rec.chunkSize);
      }
    }
    const until = now() + o.statusMaxMs;
    for (;;) {
      const st = await status(rec.publishId);
      if (st.status === 'PUBLISH_COMPLETE' || st.status === 'SEND_TO_USER_INBOX') return { platformMessageId: postIdOf(st, rec.publishId) };
      if (st.status === 'FAILED') throw new AppError('PLATFORM_REJECTED', `TikTok could not publish the video (${st.fail_reason ?? 'failed'})`);
      // Still processing after the wait: the post is on its way; the publish id stands for it.
      if (now() >= until) return { platformMessageId: rec.publishId };
      await sleep(o.statusPollMs);
    }
  }

  return {
    keeper,
    quotas: () => {
      const live = inits.filter((t) => t > now() - 60_000);
      // The window frees its oldest entry first: that is when one more init fits.
      const resetsAt = new Date(live.length > 0 ? live[0]! + 60_000 : now()).toISOString();
      return [{ name: 'tiktok.post_inits.minute', used: live.length, limit: o.initsPerMinute, resetsAt }];
    },
    slots: slots as unknown as Driver['slots'],
    send,
    received: () => null,
    bytes: () => 0,
    trim: () => undefined,
    logOut: () => slots.logOut(),
    dispose: async () => undefined,
  };
}

/** The public post id when TikTok gives one (not for SELF_ONLY posts), else the publish id. */
const postIdOf = (st: any, publishId: string): string => {
  const ids = st.publicaly_available_post_id;
  return Array.isArray(ids) && ids.length > 0 ? String(ids[0]) : publishId;
};

function parse(v: string | undefined): PublishRecord | undefined {
  if (!v) return undefined;
  try {
    const r = JSON.parse(v) as PublishRecord;
    return typeof r.publishId === 'string' && typeof r.uploadUrl === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}
