import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, isAppError } from '../../errors.ts';
import { OAuthTokenKeeper, SECRET } from '../../oauth/tokens.ts';
import type { Driver, DriverContext, OutboundMedia, OutboundMessage } from '../adapter.ts';
import type { OAuthSlots } from '../oauth-kind.ts';
import { ByteReader, FileReadError } from '../upload-stream.ts';
import { type GoogleClient } from './google.ts';
import type { YoutubeQuota } from './quota.ts';

// One YouTube channel's I/O: the profile (channels.list mine=true), and a message as a video uploaded
// with the resumable protocol, then polled until processing ends.
//
// EXACTLY ONCE: the session URI is stored (encrypted, as a connection secret named after the message)
// BEFORE the first byte is sent. A retry of the same message — after a crash, a 5xx, a lost answer —
// finds it and asks the session how far it got (`Content-Range: bytes */total`): 200/201 means the
// video exists (its id is the answer: no second video), 308 + Range gives the last byte YouTube holds,
// and the upload continues from there (never from zero). A crash between the session's creation and
// storing its URI leaves a session with no bytes, which never becomes a video. The record is kept after
// success (the message may not be marked sent yet) and dropped after SESSION_KEEP_MS, past the
// session's own lifetime (about a week, per the resumable-upload guide).

export interface YoutubeDriverOptions {
  google: GoogleClient;
  quota: YoutubeQuota;
  /** Bytes per PUT: a multiple of 256 KiB (the protocol's rule); 8 MiB default. */
  chunkBytes: number;
  /** videos.list reads while processing, this far apart; the message stays `sending` meanwhile. */
  processingPollMs: number;
  /** After this long processing is not awaited any more: the video exists, the message is sent. */
  processingMaxMs: number;
  /** Default privacy of an uploaded video. */
  privacy: 'private' | 'unlisted' | 'public';
  now?: () => number;
}

const KIB256 = 256 * 1024;
const SESSION_KEEP_MS = 8 * 24 * 3600_000;
/** A chunk that fails (5xx, no answer) is retried this often in one send, from the last confirmed byte. */
const CHUNK_TRIES = 5;

interface SessionRecord { uri: string; total: number; at: number }

const sessionSecret = (messageId: string) => `yt_up_${messageId.replace(/-/g, '').toLowerCase()}`;

/** `text`'s first line as the title (≤ 100 characters, no < or >: videos.insert's rules), the whole as the description. */
export function videoMetadata(msg: OutboundMessage, privacy: string): { snippet: { title: string; description: string; categoryId: string }; status: { privacyStatus: string; selfDeclaredMadeForKids: boolean } } {
  const clean = (s: string) => s.replace(/[<>]/g, '');
  const firstLine = clean(msg.text).split('\n').find((l) => l.trim()) ?? '';
  const title = (firstLine.trim() || clean(msg.media?.filename ?? 'video')).slice(0, 100);
  let description = clean(msg.text);
  while (Buffer.byteLength(description) > 5000) description = description.slice(0, -1);
  return { snippet: { title, description, categoryId: '22' }, status: { privacyStatus: privacy, selfDeclaredMadeForKids: false } };
}

export function youtubeDriver(ctx: DriverContext, o: YoutubeDriverOptions): Driver & { keeper: OAuthTokenKeeper } {
  const now = o.now ?? Date.now;
  const keeper = new OAuthTokenKeeper(ctx.secrets, o.google, now);
  const quotaRetry = () => o.quota.retryAfterS();

  // A call with the access token; a 401 refreshes once (an access token revoked early, a clock skew).
  const withToken = async <T>(fn: (token: string) => Promise<T>): Promise<T> => {
    try {
      return await fn(await keeper.access());
    } catch (err) {
      if (isAppError(err) && err.code === 'PLATFORM_AUTH_REVOKED' && err.message.startsWith('YouTube answered 401')) {
        keeper.expire();
        return fn(await keeper.access());
      }
      throw err;
    }
  };

  const spendRead = () => {
    const wait = o.quota.take('read');
    if (wait) throw new AppError('PLATFORM_QUOTA_EXCEEDED', 'The daily YouTube quota is spent', { retryAfter: wait, scope: 'connection' });
  };

  const noteQuota = (err: unknown) => {
    if (isAppError(err) && err.code === 'PLATFORM_QUOTA_EXCEEDED') o.quota.spent();
    return err;
  };

  const slots: OAuthSlots = {
    async connect() {
      keeper.forget(); // the callback may have stored new tokens
      if (!(await keeper.authorized())) return { authorized: false };
      await dropOldSessions();
      spendRead();
      const body = await ctx.guard(() => withToken((t) => o.google.get('/youtube/v3/channels?part=snippet&mine=true', t, quotaRetry))).catch((e) => { throw noteQuota(e); });
      const ch = body.items?.[0];
      if (!ch) throw new AppError('PLATFORM_REJECTED', 'This Google account has no YouTube channel');
      const custom = typeof ch.snippet?.customUrl === 'string' ? ch.snippet.customUrl.replace(/^@/, '') : undefined;
      return { authorized: true, profile: { platformUserId: ch.id, displayName: ch.snippet?.title ?? ch.id, ...(custom ? { username: custom } : {}) } };
    },
    async logOut() {
      const s = await ctx.secrets.load();
      const token = s[SECRET.refresh] ?? s[SECRET.access];
      if (token) await o.google.revoke(token);
      keeper.forget();
    },
    watch() { /* YouTube pushes nothing a connection must hold open */ },
  };

  async function dropOldSessions(): Promise<void> {
    const s = await ctx.secrets.load();
    for (const [name, value] of Object.entries(s)) {
      if (!name.startsWith('yt_up_')) continue;
      const rec = parseRecord(value);
      if (!rec || rec.at + SESSION_KEEP_MS < now()) await ctx.secrets.remove(name);
    }
  }

  /**
   * PUTs the file from `offset` in chunks of `chunkBytes`, each streamed from the file's pieces (no chunk
   * buffer: src/platforms/upload-stream.ts); answers the video once YouTube has every byte, or where to
   * resume when the server holds other than what was sent (a partial chunk, a resent overlap).
   */
  async function upload(rec: SessionRecord, media: OutboundMedia, offset: number): Promise<any> {
    const file = new ByteReader(media.read());
    try {
      await file.passOver(offset);
      let first = offset;
      while (first < rec.total) {
        const n = Math.min(o.chunkBytes, rec.total - first);
        const r = await o.google.putChunk(rec.uri, rec.total, first, n, file.take(n));
        if ('gone' in r) throw new AppError('PLATFORM_UNAVAILABLE', 'The upload session disappeared', { category: 'retry' });
        if (r.done) return r.video;
        if (r.committed !== first + n) return { resumeAt: r.committed };
        first += n;
      }
    } finally {
      await file.close();
    }
    const q = await o.google.put(rec.uri, rec.total);
    if ('done' in q && q.done) return q.video;
    throw new AppError('PLATFORM_UNAVAILABLE', 'YouTube holds every byte but made no video yet');
  }

  async function send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const media = msg.media;
    if (!media || media.type !== 'video') throw new AppError('PLATFORM_UNSUPPORTED', 'A YouTube post is a video: send media of type video');
    if (o.chunkBytes % KIB256 !== 0) throw new Error('chunkBytes must be a multiple of 256 KiB');
    const name = sessionSecret(msg.id);
    let rec = parseRecord((await ctx.secrets.load())[name]);
    let offset = 0;
    let video: any;
    if (rec) {
      const r = await o.google.put(rec.uri, rec.total);
      if ('gone' in r) rec = undefined; // expired unused: a new session (the old one never became a video)
      else if (r.done) video = r.video;
      else offset = r.committed;
    }
    if (!rec && !video) {
      const wait = o.quota.take('insert');
      if (wait) throw new AppError('PLATFORM_QUOTA_EXCEEDED', 'The daily YouTube upload quota is spent', { retryAfter: wait, scope: 'connection' });
      const meta = videoMetadata(msg, o.privacy);
      const uri = await withToken((t) => o.google.startUpload(t, meta, media.size, media.contentType, quotaRetry)).catch((e) => { throw noteQuota(e); });
      rec = { uri, total: media.size, at: now() };
      await ctx.secrets.save(name, JSON.stringify(rec));
    }
    for (let tries = 0; !video;) {
      try {
        const r = await upload(rec!, media, offset);
        if (r && typeof r.resumeAt === 'number') { offset = r.resumeAt; continue; }
        video = r;
      } catch (err) {
        if (isAppError(err) && !err.retryable) throw err;
        if (err instanceof FileReadError) throw err.cause; // the store failed, not the platform: nothing to re-send now
        if (++tries >= CHUNK_TRIES) throw err instanceof AppError ? err : new AppError('PLATFORM_UNAVAILABLE', 'The upload failed', { cause: err });
        await sleep(Math.min(8000, 250 * 2 ** tries));
        // Where did it get? The server's answer, never ours: a chunk may have landed though its answer was lost.
        const q = await o.google.put(rec!.uri, rec!.total).catch(() => ({ done: false as const, committed: offset }));
        if ('gone' in q) throw new AppError('PLATFORM_UNAVAILABLE', 'The upload session disappeared');
        if (q.done) video = q.video;
        else offset = q.committed;
      }
    }
    const id = typeof video?.id === 'string' ? video.id : undefined;
    if (!id) throw new AppError('PLATFORM_UNAVAILABLE', 'YouTube finished the upload without a video id', { category: 'outcome-unknown' });
    await awaitProcessing(id);
    return { platformMessageId: id };
  }

  /** Polls videos.list until processing ends: `succeeded` → sent; `failed`/`rejected` → PLATFORM_REJECTED. */
  async function awaitProcessing(id: string): Promise<void> {
    const until = now() + o.processingMaxMs;
    for (;;) {
      if (o.quota.take('read')) return; // no quota left to look: the video exists, that is enough
      const body = await withToken((t) => o.google.get(`/youtube/v3/videos?part=processingDetails,status&id=${encodeURIComponent(id)}`, t, quotaRetry))
        .catch((e) => { noteQuota(e); return undefined; });
      const item = body?.items?.[0];
      const state = item?.processingDetails?.processingStatus;
      if (state === 'succeeded' || state === 'terminated') return;
      if (state === 'failed' || item?.status?.uploadStatus === 'rejected' || item?.status?.uploadStatus === 'failed') {
        throw new AppError('PLATFORM_REJECTED', `YouTube could not process the video (${item?.status?.rejectionReason ?? item?.status?.failureReason ?? state})`);
      }
      if (now() >= until) return;
      await sleep(o.processingPollMs);
    }
  }

  return {
    keeper,
    quotas: () => o.quota.view(),
    slots: slots as unknown as Driver['slots'],
    send,
    received: () => null,
    bytes: () => 0,
    trim: () => undefined,
    logOut: () => slots.logOut(),
    dispose: async () => undefined,
  };
}

function parseRecord(v: string | undefined): SessionRecord | undefined {
  if (!v) return undefined;
  try {
    const r = JSON.parse(v) as SessionRecord;
    return typeof r.uri === 'string' && typeof r.total === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}
