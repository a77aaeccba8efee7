import { createHash, randomBytes, randomInt, type Hash } from 'node:crypto';
import type { TiktokState } from './state.ts';

// One Content Posting API publish: its declared file, the chunks received, and its status
// (PROCESSING_UPLOAD → PUBLISH_COMPLETE for a direct post, SEND_TO_USER_INBOX for an inbox upload).

const MB = 1024 * 1024;
export const CHUNK_MIN = 5 * MB;
export const CHUNK_MAX = 64 * MB;
export const LAST_CHUNK_MAX = 128 * MB;
export const MAX_CHUNKS = 1000;

export type PrivacyLevel = 'PUBLIC_TO_EVERYONE' | 'MUTUAL_FOLLOW_FRIENDS' | 'FOLLOWER_OF_CREATOR' | 'SELF_ONLY';
export type PublishStatus = 'PROCESSING_UPLOAD' | 'PUBLISH_COMPLETE' | 'SEND_TO_USER_INBOX' | 'FAILED';

export interface Publish {
  publishId: string; uploadId: string; uploadToken: string; openId: string; kind: 'direct' | 'inbox';
  title?: string; privacy?: PrivacyLevel;
  videoSize: number; chunkSize: number; totalChunks: number;
  chunksReceived: number; committed: number; hash: Hash; bytesReceived: number; puts: number; busy: boolean;
  createdAt: number; uploadedAt?: number; statusPolls: number;
  status: PublishStatus; postId?: string; publishedAt?: number; sha256?: string;
}

export function chunkBounds(p: Pick<Publish, 'videoSize' | 'chunkSize' | 'totalChunks'>, i: number): { first: number; last: number } {
  const first = i * p.chunkSize;
  const last = i === p.totalChunks - 1 ? p.videoSize - 1 : first + p.chunkSize - 1;
  return { first, last };
}

/**
 * The Media Transfer Guide's chunk rules: 5–64 MB chunks, the last one up to 128 MB (it absorbs the trailing
 * bytes), total_chunk_count = floor(video_size / chunk_size), 1–1000 chunks, a file under 5 MB in one piece.
 * Returns the rule broken, or undefined.
 */
export function chunkRuleBroken(videoSize: number, chunkSize: number, totalChunks: number): string | undefined {
  if (![videoSize, chunkSize, totalChunks].every((n) => Number.isSafeInteger(n) && n > 0)) return 'video_size, chunk_size and total_chunk_count must be positive integers';
  if (videoSize < CHUNK_MIN) return chunkSize === videoSize && totalChunks === 1 ? undefined : 'a video under 5 MB is uploaded whole: chunk_size = video_size, total_chunk_count = 1';
  if (chunkSize < CHUNK_MIN || chunkSize > CHUNK_MAX) return 'chunk_size must be between 5 MB and 64 MB';
  if (totalChunks !== Math.floor(videoSize / chunkSize)) return 'total_chunk_count must be floor(video_size / chunk_size)';
  if (totalChunks > MAX_CHUNKS) return 'at most 1000 chunks';
  if (videoSize - chunkSize * (totalChunks - 1) > LAST_CHUNK_MAX) return 'the last chunk may not exceed 128 MB';
  return undefined;
}

export class Publishes {
  readonly all = new Map<string, Publish>();

  constructor(private readonly state: TiktokState) {}

  create(openId: string, kind: Publish['kind'], file: { videoSize: number; chunkSize: number; totalChunks: number }, post?: { title?: string; privacy: PrivacyLevel }): Publish {
    const digits = () => `7${String(randomInt(1e9)).padStart(9, '0')}${String(randomInt(1e9)).padStart(9, '0')}`;
    const p: Publish = {
      publishId: kind === 'direct' ? `v_pub_file~v2-1.${digits()}` : `v_inbox_file~v2.${digits()}`,
      uploadId: digits(), uploadToken: randomBytes(16).toString('hex'), openId, kind, title: post?.title, privacy: post?.privacy, ...file,
      chunksReceived: 0, committed: 0, hash: createHash('sha256'), bytesReceived: 0, puts: 0, busy: false,
      createdAt: this.state.clock.now(), statusPolls: 0, status: 'PROCESSING_UPLOAD',
    };
    this.all.set(p.publishId, p);
    return p;
  }

  byUpload(uploadId: string | null, token: string | null): Publish | undefined {
    return [...this.all.values()].find((p) => p.uploadId === uploadId && p.uploadToken === token);
  }

  /** After the last chunk TikTok processes the file; the post appears once processing is over. */
  settle(p: Publish): void {
    if (p.status !== 'PROCESSING_UPLOAD' || p.uploadedAt === undefined) return;
    const app = this.state.app;
    if (p.statusPolls < app.processingPolls && this.state.clock.now() < p.uploadedAt + app.processingSeconds * 1000) return;
    p.status = p.kind === 'direct' ? 'PUBLISH_COMPLETE' : 'SEND_TO_USER_INBOX';
    if (p.kind === 'direct') {
      p.postId = `7${String(randomInt(1e9)).padStart(9, '0')}${String(randomInt(1e9)).padStart(9, '0')}`;
      p.publishedAt = this.state.clock.now();
    }
  }

  /** Direct posts by `openId` in the moving 24 hours before `now` (the daily post cap). */
  postsInDay(openId: string, now: number): number {
    return [...this.all.values()].filter((p) => p.openId === openId && p.kind === 'direct' && p.createdAt > now - 24 * 3600 * 1000).length;
  }

  /** Creators who made a direct post through this client in the moving 24 hours (the unaudited user cap). */
  postersInDay(now: number): Set<string> {
    return new Set([...this.all.values()].filter((p) => p.kind === 'direct' && p.createdAt > now - 24 * 3600 * 1000).map((p) => p.openId));
  }

  reset(): void {
    this.all.clear();
  }
}
