import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearer, readJson, sendJson } from '../platforms/http-io.ts';
import { SlidingWindow, type FaultBox } from '../platforms/oauth-kit.ts';
import type { AccessToken, TiktokOAuth } from './oauth.ts';
import { chunkRuleBroken, type PrivacyLevel, type Publish, type Publishes } from './publishes.ts';
import { tiktokError, tiktokOk, type Creator, type TiktokState } from './state.ts';

// Content Posting API (open.tiktokapis.com/v2/post/publish/…): creator_info/query, video/init (Direct
// Post), inbox/video/init (Upload), status/fetch; plus user/info for the connect flow. Each user access
// token has its own per-minute budget per endpoint; a refresh brings a new token and a new budget.

const MINUTE_MS = 60_000;

export class Posting {
  private windows = new SlidingWindow(MINUTE_MS);

  constructor(
    private readonly state: TiktokState,
    private readonly oauth: TiktokOAuth,
    private readonly publishes: Publishes,
    private readonly faults: FaultBox,
    private readonly uploadBase: () => string,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const route = `${req.method} ${url.pathname}`;
    const fault = await this.faults.next();
    if (fault === 'http-5xx') throw tiktokError(this.state, 'internal_error', 'Something went wrong. Please try again later.');
    if (fault === 'rate-limit') throw tiktokError(this.state, 'rate_limit_exceeded', 'The API rate limit was exceeded. Please try again later.');
    const bearerToken = bearer(req);
    const token = this.oauth.authenticate(bearerToken);
    if (!token) throw tiktokError(this.state, 'access_token_invalid', 'The access token is invalid or not found in the request.');
    const creator = this.state.creators.get(token.openId);
    if (!creator) throw tiktokError(this.state, 'access_token_invalid', 'The access token is invalid or not found in the request.');
    const key = bearerToken!;
    switch (route) {
      case 'GET /v2/user/info/':
        return sendJson(res, 200, tiktokOk(this.state, { user: this.userInfo(token, creator, url) }));
      case 'POST /v2/post/publish/creator_info/query/':
        this.need(token, 'video.publish');
        this.limit(`creator_info ${key}`, this.state.app.creatorInfoPerMinute);
        this.postable(creator);
        return sendJson(res, 200, tiktokOk(this.state, this.creatorInfo(creator)));
      case 'POST /v2/post/publish/video/init/':
        this.need(token, 'video.publish');
        this.limit(`init ${key}`, this.state.app.initsPerMinute);
        return sendJson(res, 200, tiktokOk(this.state, this.init(creator, 'direct', await this.body(req))));
      case 'POST /v2/post/publish/inbox/video/init/':
        this.need(token, 'video.upload');
        this.limit(`inbox ${key}`, this.state.app.initsPerMinute);
        return sendJson(res, 200, tiktokOk(this.state, this.init(creator, 'inbox', await this.body(req))));
      case 'POST /v2/post/publish/status/fetch/':
        if (!token.scopes.includes('video.publish') && !token.scopes.includes('video.upload')) this.need(token, 'video.publish');
        this.limit(`status ${key}`, this.state.app.statusFetchesPerMinute);
        return sendJson(res, 200, tiktokOk(this.state, this.status(creator, await this.body(req))));
      default:
        throw tiktokError(this.state, 'invalid_params', `${route} is not an endpoint.`);
    }
  }

  private need(token: AccessToken, scope: string): void {
    if (!token.scopes.includes(scope)) throw tiktokError(this.state, 'scope_not_authorized', `The user did not authorize the scope required for completing this request (${scope}).`);
  }

  private limit(key: string, perMinute: number): void {
    const took = this.windows.take(key, perMinute, this.state.clock.now());
    if (!took.ok) {
      throw tiktokError(this.state, 'rate_limit_exceeded', 'The API rate limit was exceeded. Please try again later.', { 'retry-after': String(Math.ceil(took.retryAfterMs / 1000)) });
    }
  }

  private async body(req: IncomingMessage): Promise<Record<string, unknown>> {
    return await readJson(req, (why) => tiktokError(this.state, 'invalid_params', why)) ?? {};
  }

  private userInfo(token: AccessToken, c: Creator, url: URL): Record<string, unknown> {
    this.need(token, 'user.info.basic');
    const fields = (url.searchParams.get('fields') ?? 'open_id').split(',').map((f) => f.trim());
    const all: Record<string, unknown> = {
      open_id: c.openId, union_id: c.unionId, avatar_url: `https://p16.tiktokcdn.com/${c.username}.jpeg`, display_name: c.nickname,
    };
    if (fields.includes('username') || fields.includes('bio_description')) {
      this.need(token, 'user.info.profile');
      all.username = c.username;
      all.bio_description = '';
    }
    return Object.fromEntries(fields.filter((f) => f in all).map((f) => [f, all[f]]));
  }

  private creatorInfo(c: Creator): Record<string, unknown> {
    return {
      creator_avatar_url: `https://p16.tiktokcdn.com/${c.username}.jpeg`, creator_username: c.username, creator_nickname: c.nickname,
      privacy_level_options: this.privacyOptions(c), comment_disabled: false, duet_disabled: false, stitch_disabled: false,
      max_video_post_duration_sec: this.state.app.maxVideoPostDurationSec,
    };
  }

  private privacyOptions(c: Creator): PrivacyLevel[] {
    return c.privateAccount ? ['FOLLOWER_OF_CREATOR', 'MUTUAL_FOLLOW_FRIENDS', 'SELF_ONLY'] : ['PUBLIC_TO_EVERYONE', 'MUTUAL_FOLLOW_FRIENDS', 'SELF_ONLY'];
  }

  /** The daily cap and, for unaudited clients, the 5-creators-a-day cap. */
  private postable(c: Creator): void {
    const now = this.state.clock.now();
    if (this.publishes.postsInDay(c.openId, now) >= this.state.app.postsPerDay) {
      throw tiktokError(this.state, 'spam_risk_too_many_posts', 'The daily post cap from the API is reached for the current user.');
    }
    const posters = this.publishes.postersInDay(now);
    if (!this.state.app.audited && !posters.has(c.openId) && posters.size >= this.state.app.unauditedUsersPerDay) {
      throw tiktokError(this.state, 'reached_active_user_cap', 'The daily active user cap for an unaudited client is reached.');
    }
  }

  private init(c: Creator, kind: Publish['kind'], body: Record<string, unknown>): Record<string, unknown> {
    const source = (body.source_info ?? {}) as Record<string, unknown>;
    if (source.source === 'PULL_FROM_URL') throw tiktokError(this.state, 'invalid_params', 'PULL_FROM_URL is not emulated; use FILE_UPLOAD.');
    if (source.source !== 'FILE_UPLOAD') throw tiktokError(this.state, 'invalid_params', 'source_info.source must be FILE_UPLOAD or PULL_FROM_URL.');
    const file = { videoSize: Number(source.video_size), chunkSize: Number(source.chunk_size), totalChunks: Number(source.total_chunk_count) };
    const broken = chunkRuleBroken(file.videoSize, file.chunkSize, file.totalChunks);
    if (broken) throw tiktokError(this.state, 'invalid_params', broken);
    let post: { title?: string; privacy: PrivacyLevel } | undefined;
    if (kind === 'direct') {
      const info = (body.post_info ?? {}) as Record<string, unknown>;
      const privacy = info.privacy_level;
      if (typeof privacy !== 'string') throw tiktokError(this.state, 'invalid_params', 'post_info.privacy_level is required.');
      if (info.title !== undefined && (typeof info.title !== 'string' || [...info.title].length > 2200)) {
        throw tiktokError(this.state, 'invalid_params', 'post_info.title must be a string of at most 2200 characters.');
      }
      if (!this.privacyOptions(c).includes(privacy as PrivacyLevel)) {
        throw tiktokError(this.state, 'privacy_level_option_mismatch', 'privacy_level is not one of the creator\'s privacy_level_options.');
      }
      // All content posted by unaudited clients is restricted to private viewing (SELF_ONLY).
      if (!this.state.app.audited && privacy !== 'SELF_ONLY') {
        throw tiktokError(this.state, 'unaudited_client_can_only_post_to_private_accounts', 'Unaudited clients can only post SELF_ONLY content.');
      }
      this.postable(c);
      post = { title: info.title as string | undefined, privacy: privacy as PrivacyLevel };
    }
    const p = this.publishes.create(c.openId, kind, file, post);
    return { publish_id: p.publishId, upload_url: `${this.uploadBase()}/video/?upload_id=${p.uploadId}&upload_token=${p.uploadToken}` };
  }

  private status(c: Creator, body: Record<string, unknown>): Record<string, unknown> {
    const p = typeof body.publish_id === 'string' ? this.publishes.all.get(body.publish_id) : undefined;
    if (!p || p.openId !== c.openId) throw tiktokError(this.state, 'invalid_params', 'publish_id is invalid.');
    this.publishes.settle(p);
    // Counts the answers that said "still processing" after the last chunk.
    if (p.uploadedAt !== undefined && p.status === 'PROCESSING_UPLOAD') p.statusPolls++;
    return {
      status: p.status, uploaded_bytes: p.committed,
      // Post ids are given for posts others can see; a SELF_ONLY post never has one.
      publicaly_available_post_id: p.postId && p.privacy !== 'SELF_ONLY' ? [p.postId] : [],
      ...(p.status === 'FAILED' ? { fail_reason: 'internal' } : {}),
    };
  }

  reset(): void {
    this.windows.clear();
  }
}
