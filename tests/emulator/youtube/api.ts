import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearer, sendJson } from '../platforms/http-io.ts';
import type { FaultBox } from '../platforms/oauth-kit.ts';
import type { GoogleOAuth } from './oauth.ts';
import { authError, backendError, googleError, insufficientScopes, quotaExceeded, rateLimited, type YoutubeState } from './state.ts';
import { parseParts, type Videos } from './videos.ts';

// The read side of the YouTube Data API v3 the service needs: videos.list by id (processing status after
// an upload) and channels.list?mine=true (which channel a token belongs to). Each call costs 1 unit.

/** videos.list and channels.list with OAuth need a read scope; youtube.upload alone is not one of them. */
const READ_SCOPES = ['youtube.readonly', 'youtube', 'youtube.force-ssl', 'youtubepartner'].map((s) => `https://www.googleapis.com/auth/${s}`);

export class DataApi {
  constructor(
    private readonly state: YoutubeState,
    private readonly oauth: GoogleOAuth,
    private readonly videos: Videos,
    private readonly faults: FaultBox,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const route = `${req.method} ${url.pathname}`;
    if (route !== 'GET /youtube/v3/videos' && route !== 'GET /youtube/v3/channels') throw googleError(404, 'notFound', 'Not Found', 'global');
    const fault = await this.faults.next();
    if (fault === 'http-5xx') throw backendError();
    if (fault === 'rate-limit') throw rateLimited();
    const token = this.oauth.authenticate(bearer(req));
    if (!token) throw authError();
    if (!this.state.quota.charge(this.state.clock.now(), 'read')) throw quotaExceeded();
    if (!token.scopes.some((s) => READ_SCOPES.includes(s))) throw insufficientScopes();
    if (url.pathname === '/youtube/v3/channels') return this.channels(res, url, token.channelId);
    const parts = parseParts(url.searchParams.get('part'));
    const ids = (url.searchParams.get('id') ?? '').split(',').filter(Boolean);
    if (ids.length === 0) throw googleError(400, 'missingRequiredParameter', 'No filter selected. Expected one of: id, myRated, chart.', 'youtube.parameter');
    if (ids.length > 50) throw googleError(400, 'invalidValue', 'Too many ids: at most 50.', 'youtube.parameter');
    const items = ids.flatMap((id) => {
      const v = this.videos.all.get(id);
      if (!v) return [];
      const owner = v.channelId === token.channelId;
      // Private videos are visible to their owner only; unknown or hidden ids are simply absent.
      if (!owner && v.privacy === 'private') return [];
      const item = this.videos.render(v, parts, owner);
      if (owner) v.ownerReads++;
      return [item];
    });
    sendJson(res, 200, { kind: 'youtube#videoListResponse', etag: `list-${items.length}`, items, pageInfo: { totalResults: items.length, resultsPerPage: items.length } });
  }

  private channels(res: ServerResponse, url: URL, channelId: string): void {
    if (url.searchParams.get('mine') !== 'true') throw googleError(400, 'missingRequiredParameter', 'Only mine=true is emulated.', 'youtube.parameter');
    const c = this.state.channels.get(channelId);
    const items = c ? [{
      kind: 'youtube#channel', etag: c.id, id: c.id,
      snippet: { title: c.title, description: '', customUrl: `@${c.username}`, publishedAt: new Date(c.createdAt).toISOString() },
    }] : [];
    sendJson(res, 200, { kind: 'youtube#channelListResponse', etag: 'channels', items, pageInfo: { totalResults: items.length, resultsPerPage: 5 } });
  }
}
