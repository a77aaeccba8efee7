import type { EmulatorClock } from '../platforms/types.ts';
import { fetchMedia, type MediaResult } from './media.ts';
import { newId } from './graph.ts';

// Container publishing as Instagram ("Content Publishing") and Threads ("Posts") both define it: a
// container is created from a media URL (or text), the platform downloads and processes the media
// (IN_PROGRESS), then the container is FINISHED and can be published once (PUBLISHED); a download or
// processing failure is ERROR, and a container not published within 24 hours is EXPIRED. Processing time
// runs on the shared clock, so `POST /clock` finishes it too. Publishing counts against a moving 24-hour
// window (a carousel counts once).

export type ContainerStatus = 'IN_PROGRESS' | 'FINISHED' | 'ERROR' | 'EXPIRED' | 'PUBLISHED';
export type ContainerKind = 'image' | 'video' | 'text' | 'carousel';

export interface Container {
  id: string;
  accountId: string;
  kind: ContainerKind;
  /** The media_type as the client asked for it (IMAGE, REELS, STORIES, TEXT, CAROUSEL, …). */
  mediaType: string;
  caption?: string;
  isCarouselItem: boolean;
  children: string[];
  replyToId?: string;
  createdAt: number;
  /** When processing ends; Infinity while the download of a video is still running. */
  readyAt: number;
  error?: string;
  mediaSha256?: string;
  publishedId?: string;
}

export interface Post {
  id: string;
  accountId: string;
  containerId: string;
  /** What the platform calls the published object's type (IMAGE, VIDEO, CAROUSEL_ALBUM, TEXT_POST). */
  mediaType: string;
  productType?: string;
  caption?: string;
  mediaSha256: string | null;
  children?: Array<{ mediaType: string; mediaSha256: string | null }>;
  replyToId?: string;
  publishedAt: number;
}

export interface PublishingRules {
  /** Processing time after the download, per kind (ms on the shared clock). */
  processingMs: Record<ContainerKind, number>;
  containerTtlS: number;
  windowS: number;
  maxImageBytes: number;
  maxVideoBytes: number;
  downloadTimeoutMs: number;
}

export const defaultProcessingMs: Record<ContainerKind, number> = { text: 0, image: 200, video: 1500, carousel: 200 };

export class Publishing {
  readonly containers = new Map<string, Container>();
  private posts: Post[] = [];
  private readonly postsById = new Map<string, Post>();

  constructor(private readonly clock: EmulatorClock, readonly rules: PublishingRules) {}

  create(c: Omit<Container, 'id' | 'createdAt' | 'readyAt'>, readyAt?: number): Container {
    const now = this.clock.now();
    const container: Container = { ...c, id: newId(), createdAt: now, readyAt: readyAt ?? now + this.rules.processingMs[c.kind] };
    this.containers.set(container.id, container);
    return container;
  }

  /** Downloads an image before the create call answers (Instagram and Threads fail the call itself). */
  downloadImage(url: string | undefined): Promise<MediaResult> {
    return fetchMedia(url, { maxBytes: this.rules.maxImageBytes, timeoutMs: this.rules.downloadTimeoutMs });
  }

  /** Downloads a video after the create call answered: the container shows the outcome. */
  downloadVideoLater(c: Container, url: string | undefined, failure: (r: Exclude<MediaResult, { ok: true }>) => string): void {
    c.readyAt = Infinity;
    void fetchMedia(url, { maxBytes: this.rules.maxVideoBytes, timeoutMs: this.rules.downloadTimeoutMs }).then((r) => {
      if (!this.containers.has(c.id)) return;
      if (r.ok) {
        c.mediaSha256 = r.sha256;
        c.readyAt = this.clock.now() + this.rules.processingMs.video;
      } else {
        c.error = failure(r);
      }
    });
  }

  status(c: Container): ContainerStatus {
    if (c.publishedId) return 'PUBLISHED';
    if (c.error) return 'ERROR';
    const now = this.clock.now();
    if (now - c.createdAt >= this.rules.containerTtlS * 1000) return 'EXPIRED';
    if (c.kind === 'carousel') {
      for (const id of c.children) {
        const child = this.containers.get(id);
        const s = child ? this.status(child) : 'ERROR';
        if (s === 'ERROR' || s === 'EXPIRED') return 'ERROR';
        if (s === 'IN_PROGRESS') return 'IN_PROGRESS';
      }
    }
    return now < c.readyAt ? 'IN_PROGRESS' : 'FINISHED';
  }

  /** Posts (replies excluded, or replies only) published by `accountId` in the moving window. */
  usage(accountId: string, replies: boolean, sinceMs?: number): number {
    const from = Math.max(this.clock.now() - this.rules.windowS * 1000, sinceMs ?? -Infinity);
    let n = 0;
    for (let i = this.posts.length - 1; i >= 0; i--) {
      const p = this.posts[i]!;
      if (p.publishedAt <= from) break;
      if (p.accountId === accountId && Boolean(p.replyToId) === replies) n++;
    }
    return n;
  }

  publish(c: Container, post: Omit<Post, 'id' | 'publishedAt' | 'containerId' | 'accountId'>): Post {
    const p: Post = { ...post, id: newId(), containerId: c.id, accountId: c.accountId, publishedAt: this.clock.now() };
    c.publishedId = p.id;
    for (const id of c.children) {
      const child = this.containers.get(id);
      if (child) child.publishedId = p.id;
    }
    this.posts.push(p);
    this.postsById.set(p.id, p);
    return p;
  }

  post(id: string): Post | undefined {
    return this.postsById.get(id);
  }

  /** Newest first, as the platforms list an account's media. */
  postsOf(accountId: string): Post[] {
    return this.posts.filter((p) => p.accountId === accountId).reverse();
  }

  allPosts(accountId?: string): Post[] {
    return accountId ? this.posts.filter((p) => p.accountId === accountId) : [...this.posts];
  }

  reset(): void {
    this.containers.clear();
    this.posts = [];
    this.postsById.clear();
  }
}

/**
 * Graph paging over a list: `limit` (default 25, at most 100), an `after` cursor, and `paging.next` as
 * the full URL of the next page (`nextUrl` builds it from the cursor).
 */
export function page<T>(items: T[], params: Record<string, unknown>, render: (item: T) => unknown, nextUrl: (after: string, limit: number) => string): { data: unknown[]; paging?: unknown } {
  const limit = Math.min(100, Math.max(1, Number(params.limit ?? 25) || 25));
  const after = typeof params.after === 'string' ? Number(Buffer.from(params.after, 'base64url').toString()) : 0;
  const start = Number.isInteger(after) && after > 0 ? after : 0;
  const slice = items.slice(start, start + limit);
  if (slice.length === 0) return { data: [] };
  const cursor = (n: number) => Buffer.from(String(n)).toString('base64url');
  const end = start + slice.length;
  return {
    data: slice.map(render),
    paging: { cursors: { before: cursor(start), after: cursor(end) }, ...(end < items.length ? { next: nextUrl(cursor(end), limit) } : {}) },
  };
}
