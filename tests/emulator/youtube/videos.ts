import { randomBytes } from 'node:crypto';
import { googleError, type YoutubeState } from './state.ts';

// Uploaded videos and how they render as `youtube#video` resources (videos resource reference):
// only the requested parts, processingDetails only for the owner, processing `processing` → `succeeded`.

export interface VideoMetadata {
  title: string;
  description: string;
  tags?: string[];
  categoryId: string;
  requestedPrivacy: 'public' | 'unlisted' | 'private';
  madeForKids?: boolean;
}

export interface Video extends VideoMetadata {
  id: string;
  channelId: string;
  privacy: 'public' | 'unlisted' | 'private';
  publishedAt: number;
  sha256: string;
  bytes: number;
  mimeType: string;
  ownerReads: number;
}

const PRIVACY = ['public', 'unlisted', 'private'] as const;
export const VIDEO_PARTS = new Set(['snippet', 'status', 'contentDetails', 'fileDetails', 'id', 'liveStreamingDetails', 'localizations',
  'player', 'processingDetails', 'recordingDetails', 'statistics', 'suggestions', 'topicDetails']);

export function parseParts(part: string | null): string[] {
  if (!part) throw googleError(400, 'required', 'Required parameter: part', 'global', { location: 'part', locationType: 'parameter' });
  const parts = part.split(',').map((p) => p.trim()).filter(Boolean);
  const bad = parts.find((p) => !VIDEO_PARTS.has(p));
  if (bad) throw googleError(400, 'unknownPart', `'${bad}'`, 'youtube.part', { location: 'part', locationType: 'parameter' });
  return parts;
}

/** The `video` resource sent when the session starts; invalid metadata is refused before any byte moves. */
export function parseMetadata(body: Record<string, unknown> | undefined): VideoMetadata {
  const snippet = (body?.snippet ?? {}) as Record<string, unknown>;
  const status = (body?.status ?? {}) as Record<string, unknown>;
  const title = snippet.title === undefined ? 'unknown' : snippet.title;
  // videos.insert errors: title ≤ 100 characters without < or >; description ≤ 5000 bytes, same rule.
  if (typeof title !== 'string' || !title.trim() || title.length > 100 || /[<>]/.test(title)) {
    throw googleError(400, 'invalidTitle', 'The request metadata specifies an invalid or empty video title.');
  }
  const description = snippet.description ?? '';
  if (typeof description !== 'string' || Buffer.byteLength(description) > 5000 || /[<>]/.test(description)) {
    throw googleError(400, 'invalidDescription', 'The request metadata specifies an invalid video description.');
  }
  const tags = snippet.tags;
  if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
    throw googleError(400, 'invalidTags', 'The request metadata specifies invalid video keywords.');
  }
  const privacy = status.privacyStatus ?? 'public';
  if (!PRIVACY.includes(privacy as never)) throw googleError(400, 'invalidVideoMetadata', 'The request metadata is invalid: status.privacyStatus.');
  const categoryId = snippet.categoryId ?? '22';
  if (typeof categoryId !== 'string' || !/^\d+$/.test(categoryId)) throw googleError(400, 'invalidCategoryId', 'The snippet.categoryId property specifies an invalid category ID.');
  return {
    title, description, tags: tags as string[] | undefined, categoryId, requestedPrivacy: privacy as Video['privacy'],
    madeForKids: typeof status.selfDeclaredMadeForKids === 'boolean' ? status.selfDeclaredMadeForKids : undefined,
  };
}

export class Videos {
  readonly all = new Map<string, Video>();

  constructor(private readonly state: YoutubeState) {}

  add(channelId: string, meta: VideoMetadata, file: { sha256: string; bytes: number; mimeType: string }): Video {
    const video: Video = {
      ...meta, ...file, id: randomBytes(8).toString('base64url').slice(0, 11), channelId,
      // Videos uploaded by unverified API projects are restricted to private viewing mode.
      privacy: this.state.app.verified ? meta.requestedPrivacy : 'private',
      publishedAt: this.state.clock.now(), ownerReads: 0,
    };
    this.all.set(video.id, video);
    return video;
  }

  processed(v: Video): boolean {
    const app = this.state.app;
    return v.ownerReads >= app.processingPolls || this.state.clock.now() >= v.publishedAt + app.processingSeconds * 1000;
  }

  render(v: Video, parts: string[], owner: boolean): Record<string, unknown> {
    const channel = this.state.channels.get(v.channelId);
    const done = this.processed(v);
    const out: Record<string, unknown> = { kind: 'youtube#video', etag: `${v.id}-${done ? 1 : 0}`, id: v.id };
    if (parts.includes('snippet')) {
      out.snippet = {
        publishedAt: new Date(v.publishedAt).toISOString(), channelId: v.channelId, title: v.title, description: v.description,
        thumbnails: { default: { url: `https://i.ytimg.com/vi/${v.id}/default.jpg`, width: 120, height: 90 } },
        channelTitle: channel?.title ?? '', ...(v.tags ? { tags: v.tags } : {}), categoryId: v.categoryId, liveBroadcastContent: 'none',
        localized: { title: v.title, description: v.description },
      };
    }
    if (parts.includes('status')) {
      out.status = {
        uploadStatus: done ? 'processed' : 'uploaded', privacyStatus: v.privacy, license: 'youtube', embeddable: true, publicStatsViewable: true,
        madeForKids: v.madeForKids ?? false, ...(v.madeForKids !== undefined ? { selfDeclaredMadeForKids: v.madeForKids } : {}),
      };
    }
    // processingDetails is visible to the video's owner only.
    if (parts.includes('processingDetails') && owner) {
      out.processingDetails = done
        ? { processingStatus: 'succeeded', fileDetailsAvailability: 'available', processingIssuesAvailability: 'available', thumbnailsAvailability: 'available' }
        : { processingStatus: 'processing', processingProgress: { partsTotal: 1000, partsProcessed: Math.min(999, 300 + v.ownerReads * 300), timeLeftMs: 30_000 } };
    }
    if (parts.includes('fileDetails') && owner) out.fileDetails = { fileSize: String(v.bytes), fileType: 'video', container: v.mimeType };
    return out;
  }

  reset(): void {
    this.all.clear();
  }
}
