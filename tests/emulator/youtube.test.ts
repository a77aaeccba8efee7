import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { realClock, type EmulatorApps, type EmulatorClock, type PlatformEmulator } from './platforms/types.ts';
import { browse, ctl, PatternFile, pkcePair, postForm, putBytes } from './support/platform-client.ts';
import { startYoutubeEmulator } from './youtube/index.ts';
import { nextPacificMidnight, pacificDay } from './youtube/quota.ts';

// The YouTube Data API v3 + Google OAuth emulator over plain HTTP, as the daemon's adapter will use it.

const apps: EmulatorApps = {
  meta: { appId: 'm', appSecret: 'ms', verifyToken: 'mv' },
  google: { clientId: 'test-client.apps.googleusercontent.com', clientSecret: 'google-secret' },
  tiktok: { clientKey: 'tk', clientSecret: 'ts' },
};
const REDIRECT = 'http://127.0.0.1:9/oauth/youtube/callback';
const SCOPES = 'https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly';
const KIB256 = 256 * 1024;

let emu: PlatformEmulator;
let clock: EmulatorClock;
test.before(async () => {
  clock = realClock();
  emu = await startYoutubeEmulator({ clock, apps });
});
test.after(async () => {
  await emu.stop();
});
test.before.each(() => {
  emu.reset();
});

function authorizeUrl(params: Record<string, string | undefined>): string {
  const u = new URL('/o/oauth2/v2/auth', emu.urls.oauth);
  const all = { client_id: apps.google.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: SCOPES, access_type: 'offline', state: 'st-1', ...params };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

const token = (params: Record<string, string>) => postForm(`${emu.urls.oauth}/token`, { client_id: apps.google.clientId, client_secret: apps.google.clientSecret, ...params });

/** Consent as `username` and exchange the code: the daemon's connect flow. */
async function connect(username: string, extra: Record<string, string> = {}): Promise<{ channelId: string; access: string; refresh?: string }> {
  const { json } = await ctl(emu, 'POST', '/accounts', { username });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const pk = pkcePair();
  const back = await browse(authorizeUrl({ code_challenge: pk.challenge, code_challenge_method: 'S256', ...extra }), REDIRECT);
  const code = back.location!.searchParams.get('code')!;
  const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pk.verifier });
  assert.is(t.status, 200, JSON.stringify(t.json));
  return { channelId: json.accountId, access: t.json.access_token, refresh: t.json.refresh_token };
}

async function refreshed(refresh: string): Promise<string> {
  const r = await token({ grant_type: 'refresh_token', refresh_token: refresh });
  assert.is(r.status, 200, JSON.stringify(r.json));
  return r.json.access_token;
}

async function startSession(access: string, body: unknown, size: number): Promise<{ status: number; location: string | null; json: any }> {
  const res = await fetch(`${emu.urls.upload}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json; charset=UTF-8', 'x-upload-content-length': String(size), 'x-upload-content-type': 'video/mp4' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), json: text ? JSON.parse(text) : undefined };
}

const statusQuery = (location: string, total: number) => putBytes(location, new PatternFile(0), 0, 0, { 'content-range': `bytes */${total}` });

const range = (a: { headers: Record<string, unknown> } | undefined): string | undefined => a?.headers.range as string | undefined;

/** Uploads the whole file in `chunk`-byte PUTs starting at `from`; returns the final answer. */
async function upload(location: string, file: PatternFile, chunk: number, from = 0) {
  let offset = from;
  for (;;) {
    const n = Math.min(chunk, file.size - offset);
    const a = (await putBytes(location, file, offset, n, { 'content-range': `bytes ${offset}-${offset + n - 1}/${file.size}`, 'content-type': 'video/mp4' }))!;
    if (a.status !== 308) return a;
    offset = Number(/bytes=0-(\d+)/.exec(range(a) ?? '')?.[1] ?? -1) + 1;
  }
}

async function videosList(access: string, id: string, part = 'status,processingDetails') {
  const res = await fetch(`${emu.urls.api}/youtube/v3/videos?part=${part}&id=${id}`, { headers: { authorization: `Bearer ${access}` } });
  return { status: res.status, json: await res.json() as any };
}

test('web-server flow with PKCE: code → tokens; the refresh token only on first consent or with prompt=consent', async () => {
  const c = await connect('chan_flow');
  assert.match(c.access, /^ya29\./);
  assert.ok(c.refresh, 'first consent with access_type=offline returns a refresh token');

  await ctl(emu, 'POST', '/consent', { account: c.channelId });
  const again = await browse(authorizeUrl({}), REDIRECT);
  assert.is(again.location!.searchParams.get('state'), 'st-1');
  const t2 = await token({ grant_type: 'authorization_code', code: again.location!.searchParams.get('code')!, redirect_uri: REDIRECT });
  assert.is(t2.json.refresh_token, undefined, 'a repeat consent without prompt=consent returns no refresh token');
  assert.is(t2.json.expires_in, 3599);
  assert.is(t2.json.token_type, 'Bearer');

  await ctl(emu, 'POST', '/consent', { account: c.channelId });
  const forced = await browse(authorizeUrl({ prompt: 'consent' }), REDIRECT);
  const t3 = await token({ grant_type: 'authorization_code', code: forced.location!.searchParams.get('code')!, redirect_uri: REDIRECT });
  assert.ok(t3.json.refresh_token, 'prompt=consent brings a new refresh token');
});

test('PKCE, single-use codes, redirect_uri and client secret are checked at the token endpoint', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'chan_pkce' });
  const pk = pkcePair();
  const codeFor = async () => {
    await ctl(emu, 'POST', '/consent', { account: json.accountId });
    const back = await browse(authorizeUrl({ code_challenge: pk.challenge, code_challenge_method: 'S256' }), REDIRECT);
    return back.location!.searchParams.get('code')!;
  };
  let code = await codeFor();
  const wrong = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkcePair().verifier });
  assert.equal([wrong.status, wrong.json.error], [400, 'invalid_grant']);
  const reused = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pk.verifier });
  assert.equal([reused.status, reused.json.error], [400, 'invalid_grant'], 'a code is single use, even after a failed exchange');

  code = await codeFor();
  const missing = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  assert.is(missing.json.error_description, 'Missing code verifier.');

  code = await codeFor();
  const elsewhere = await token({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/other', code_verifier: pk.verifier });
  assert.equal([elsewhere.status, elsewhere.json.error], [400, 'redirect_uri_mismatch']);

  code = await codeFor();
  const badSecret = await postForm(`${emu.urls.oauth}/token`, { client_id: apps.google.clientId, client_secret: 'nope', grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  assert.equal([badSecret.status, badSecret.json.error], [401, 'invalid_client']);
  const basic = Buffer.from(`${apps.google.clientId}:${apps.google.clientSecret}`).toString('base64');
  const viaBasic = await postForm(`${emu.urls.oauth}/token`, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pk.verifier }, { authorization: `Basic ${basic}` });
  assert.is(viaBasic.status, 200, 'client credentials in HTTP Basic work too');

  const garbage = await token({ grant_type: 'password' });
  assert.equal([garbage.status, garbage.json.error], [400, 'unsupported_grant_type']);
});

test('denied consent redirects with access_denied; an unknown client never redirects', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'chan_deny' });
  await ctl(emu, 'POST', '/consent', { account: json.accountId, deny: true });
  const denied = await browse(authorizeUrl({ state: 'st-deny' }), REDIRECT);
  assert.is(denied.location!.searchParams.get('error'), 'access_denied');
  assert.is(denied.location!.searchParams.get('state'), 'st-deny');
  assert.is(denied.location!.searchParams.get('code'), null);

  const unknown = await browse(authorizeUrl({ client_id: 'someone-else' }), REDIRECT);
  assert.is(unknown.status, 401);
  assert.match(unknown.body!, /invalid_client/);
  const badUri = await browse(authorizeUrl({ redirect_uri: 'not a uri' }), REDIRECT);
  assert.is(badUri.status, 400);
  assert.is((await ctl(emu, 'POST', '/consent', { account: 'nobody' })).status, 404);
  assert.is((await ctl(emu, 'POST', '/accounts', { username: 'chan_deny' })).status, 409);
  assert.is((await ctl(emu, 'POST', '/accounts', { username: '' })).status, 400);
});

test('refresh keeps the refresh token; access tokens die after an hour; counters count', async () => {
  const c = await connect('chan_refresh');
  const r = await token({ grant_type: 'refresh_token', refresh_token: c.refresh! });
  assert.is(r.status, 200);
  assert.is(r.json.refresh_token, undefined, 'Google does not rotate refresh tokens');
  assert.is((await videosList(r.json.access_token, 'none')).status, 200);
  clock.advance(3600);
  assert.is((await videosList(r.json.access_token, 'none')).json.error.errors[0].reason, 'authError');
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: c.refresh! })).status, 200);
  const stats = (await ctl(emu, 'GET', '/stats')).json;
  assert.is(stats.refreshes, 2);
  assert.is(stats.tokenCalls, 3);
  assert.is(stats.codeExchanges, 1);
});

test('revoked access → invalid_grant "Token has been expired or revoked." and 401 on the API', async () => {
  const c = await connect('chan_revoke');
  assert.equal((await ctl(emu, 'POST', '/revoke', { account: c.channelId })).json.revoked, 2);
  const r = await token({ grant_type: 'refresh_token', refresh_token: c.refresh! });
  assert.equal([r.status, r.json.error, r.json.error_description], [400, 'invalid_grant', 'Token has been expired or revoked.']);
  assert.is((await videosList(c.access, 'x')).status, 401);
  assert.is((await ctl(emu, 'GET', '/stats')).json.refreshFailures, 1);

  const d = await connect('chan_revoke2');
  assert.ok(d.refresh, 'after a revocation the next consent issues a refresh token again');
  const rv = await postForm(`${emu.urls.oauth}/revoke`, { token: d.access });
  assert.is(rv.status, 200);
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: d.refresh! })).json.error, 'invalid_grant', 'revoking the access token revokes the grant');
  assert.equal((await postForm(`${emu.urls.oauth}/revoke`, { token: d.access })).json.error, 'invalid_token');
  assert.is((await ctl(emu, 'POST', '/revoke', {})).status, 400);
});

test('a consent screen in Testing: refresh tokens die after 7 days; in production they live on', async () => {
  const testing = await connect('chan_testing');
  await ctl(emu, 'POST', '/app', { publishingStatus: 'production' });
  const prod = await connect('chan_prod');
  clock.advance(7 * 24 * 3600 + 1);
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: testing.refresh! })).json.error, 'invalid_grant');
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: prod.refresh! })).status, 200);
  assert.is((await ctl(emu, 'POST', '/app', { publishingStatus: 'beta' })).status, 400);
  assert.is((await ctl(emu, 'POST', '/app', { nonsense: 1 })).status, 400);
});

test('resumable upload in 256 KiB-multiple chunks survives a connection cut mid-chunk and resumes from the persisted byte', async () => {
  const c = await connect('chan_resume');
  const file = new PatternFile(3 * 1024 * 1024 + 12345);
  const s = await startSession(c.access, { snippet: { title: 'Resumed', description: 'd' }, status: { privacyStatus: 'unlisted' } }, file.size);
  assert.is(s.status, 200);
  assert.match(s.location!, /upload_id=/);
  const chunk = 4 * KIB256; // 1 MiB
  const first = await putBytes(s.location!, file, 0, chunk, { 'content-range': `bytes 0-${chunk - 1}/${file.size}` });
  assert.equal([first!.status, range(first)], [308, `bytes=0-${chunk - 1}`]);
  // The process dies 600 KiB into the second chunk.
  await putBytes(s.location!, file, chunk, chunk, { 'content-range': `bytes ${chunk}-${2 * chunk - 1}/${file.size}` }, 600 * 1024);
  const q = await statusQuery(s.location!, file.size);
  assert.is(q!.status, 308);
  const persisted = Number(/bytes=0-(\d+)/.exec(range(q)!)![1]) + 1;
  assert.ok(persisted >= chunk && persisted <= chunk + 600 * 1024 && persisted % KIB256 === 0, `persisted ${persisted}`);
  const done = await upload(s.location!, file, chunk, persisted);
  assert.is(done!.status, 201);
  const video = JSON.parse(done!.body);
  assert.is(video.kind, 'youtube#video');
  assert.is(video.snippet.title, 'Resumed');
  assert.is(video.status.uploadStatus, 'uploaded');

  const videos = (await ctl(emu, 'GET', '/videos')).json;
  assert.is(videos.length, 1);
  assert.is(videos[0].id, video.id);
  assert.is(videos[0].mediaSha256, file.sha256());
  assert.is(videos[0].accountId, c.channelId);
  const [session] = (await ctl(emu, 'GET', '/uploads')).json;
  assert.is(session.committed, file.size);
  assert.ok(session.bytesReceived <= file.size + chunk, `re-sent at most one chunk: ${session.bytesReceived - file.size}`);
  assert.ok(session.bytesReceived > file.size, 'the cut bytes were counted');

  const after = await statusQuery(s.location!, file.size);
  assert.is(after!.status, 200, 'asking after completion returns the video, not a second one');
  assert.is(JSON.parse(after!.body).id, video.id);
  assert.is((await ctl(emu, 'GET', '/videos')).json.length, 1);
});

test('a non-final chunk that is not a multiple of 256 KiB persists only its whole blocks; an overlap is skipped', async () => {
  const c = await connect('chan_blocks');
  const file = new PatternFile(KIB256 * 3 + 100);
  const s = await startSession(c.access, { snippet: { title: 'Blocks' } }, file.size);
  const a = await putBytes(s.location!, file, 0, KIB256 + 5000, { 'content-range': `bytes 0-${KIB256 + 4999}/${file.size}` });
  assert.is(range(a), `bytes=0-${KIB256 - 1}`);
  const fresh = await statusQuery(s.location!, file.size);
  assert.is(range(fresh), `bytes=0-${KIB256 - 1}`);
  // Re-sending from 0 overlaps what is persisted; the server skips it and keeps the rest.
  const b = await putBytes(s.location!, file, 0, file.size, { 'content-range': `bytes 0-${file.size - 1}/${file.size}` });
  assert.is(b!.status, 201);
  assert.is((await ctl(emu, 'GET', '/videos')).json[0].mediaSha256, file.sha256());
});

test('processing: videos.list reports processing, then succeeded; a token without a read scope is refused', async () => {
  const c = await connect('chan_proc');
  const file = new PatternFile(1000);
  const s = await startSession(c.access, { snippet: { title: 'Proc' }, status: { privacyStatus: 'public' } }, file.size);
  const done = await putBytes(s.location!, file, 0, file.size, { 'content-type': 'video/mp4' });
  const id = JSON.parse(done!.body).id;
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const l = await videosList(c.access, id);
    assert.is(l.status, 200);
    seen.push(`${l.json.items[0].processingDetails.processingStatus}/${l.json.items[0].status.uploadStatus}`);
  }
  assert.equal(seen, ['processing/uploaded', 'processing/uploaded', 'succeeded/processed']);
  assert.equal((await videosList(c.access, 'unknown-id')).json.items, []);

  const narrow = await connect('chan_narrow', { scope: 'https://www.googleapis.com/auth/youtube.upload' });
  const l = await videosList(narrow.access, id);
  assert.equal([l.status, l.json.error.errors[0].reason], [403, 'insufficientPermissions']);
  const bad = await fetch(`${emu.urls.api}/youtube/v3/videos?id=${id}`, { headers: { authorization: `Bearer ${c.access}` } });
  assert.is(bad.status, 400, 'part is required');
  const mine = await fetch(`${emu.urls.api}/youtube/v3/channels?part=snippet&mine=true`, { headers: { authorization: `Bearer ${c.access}` } });
  assert.is(((await mine.json()) as any).items[0].id, c.channelId);
});

test('an unverified project uploads private whatever was asked; a verified one keeps the privacy', async () => {
  const c = await connect('chan_priv');
  const file = new PatternFile(500);
  const send = async () => {
    const s = await startSession(c.access, { snippet: { title: 'P' }, status: { privacyStatus: 'public' } }, file.size);
    return JSON.parse((await putBytes(s.location!, file, 0, file.size, {}))!.body);
  };
  assert.is((await send()).status.privacyStatus, 'private');
  await ctl(emu, 'POST', '/app', { verified: true });
  assert.is((await send()).status.privacyStatus, 'public');
  assert.equal((await ctl(emu, 'GET', '/videos')).json.map((v: any) => [v.privacy, v.requestedPrivacy]), [['private', 'public'], ['public', 'public']]);
});

test('quota: inserts past the day are refused with quotaExceeded until midnight Pacific', async () => {
  const c = await connect('chan_quota');
  await ctl(emu, 'POST', '/app', { insertsPerDay: 2 });
  const meta = { snippet: { title: 'Q' } };
  assert.is((await startSession(c.access, meta, 10)).status, 200);
  assert.is((await startSession(c.access, meta, 10)).status, 200);
  const third = await startSession(c.access, meta, 10);
  assert.is(third.status, 403);
  assert.is(third.json.error.errors[0].reason, 'quotaExceeded');
  assert.is(third.json.error.errors[0].domain, 'youtube.quota');
  const q = (await ctl(emu, 'GET', '/quota')).json;
  assert.is(q.inserts, 2);
  const wait = Date.parse(q.resetsAt) - clock.now();
  assert.ok(wait > 0 && wait <= 25 * 3600 * 1000);
  clock.advance(Math.ceil(wait / 1000) - 5);
  let access = await refreshed(c.refresh!);
  assert.is((await startSession(access, meta, 10)).status, 403, 'still the same Pacific day 5 s before midnight');
  clock.advance(10);
  assert.is((await startSession(access, meta, 10)).status, 200, 'a new Pacific day');

  // The older shape of the quota: insert costs 1,600 of the 10,000 daily units, so the 7th is refused.
  await ctl(emu, 'POST', '/app', { insertsPerDay: null, insertUnitCost: 1600 });
  clock.advance(25 * 3600);
  access = await refreshed(c.refresh!);
  for (let i = 0; i < 6; i++) assert.is((await startSession(access, meta, 10)).status, 200);
  assert.is((await startSession(access, meta, 10)).json.error.errors[0].reason, 'quotaExceeded');
});

test('Pacific day arithmetic across daylight saving', () => {
  assert.is(pacificDay(Date.parse('2026-03-08T07:59:00Z')), '2026-03-07');
  assert.is(pacificDay(Date.parse('2026-03-08T08:00:00Z')), '2026-03-08');
  assert.is(new Date(nextPacificMidnight(Date.parse('2026-07-01T12:00:00Z'))).toISOString(), '2026-07-02T07:00:00.000Z');
  assert.is(new Date(nextPacificMidnight(Date.parse('2026-12-31T12:00:00Z'))).toISOString(), '2027-01-01T08:00:00.000Z');
  assert.is(new Date(nextPacificMidnight(Date.parse('2026-11-01T06:30:00Z'))).toISOString(), '2026-11-01T07:00:00.000Z');
});

test('faults, expiry and malformed requests: 503 then resume; a week-old session is gone; bad headers are 400', async () => {
  const c = await connect('chan_faults');
  const file = new PatternFile(KIB256 * 2);
  const s = await startSession(c.access, { snippet: { title: 'F' } }, file.size);
  emu.fault({ type: 'http-5xx', count: 1 });
  const failed = await putBytes(s.location!, file, 0, KIB256, { 'content-range': `bytes 0-${KIB256 - 1}/${file.size}` });
  assert.is(failed!.status, 503);
  assert.is(JSON.parse(failed!.body).error.errors[0].reason, 'backendError');
  const q = await statusQuery(s.location!, file.size);
  assert.equal([q!.status, range(q)], [308, undefined], 'nothing persisted: no Range header');
  assert.is((await upload(s.location!, file, KIB256))!.status, 201);

  const bad = await putBytes(s.location!.replace(/upload_id=[^&]+/, 'upload_id=nope'), file, 0, 10, {});
  assert.is(bad!.status, 404);
  const s2 = await startSession(c.access, { snippet: { title: 'G' } }, file.size);
  const garbled = await putBytes(s2.location!, file, 0, 10, { 'content-range': 'bytes=0-9' });
  assert.is(garbled!.status, 400);
  const mismatch = await putBytes(s2.location!, file, 0, 10, { 'content-range': `bytes 0-9/${file.size + 1}` });
  assert.is(mismatch!.status, 400);
  clock.advance(7 * 24 * 3600);
  assert.is((await statusQuery(s2.location!, file.size))!.status, 404);

  await ctl(emu, 'POST', '/app', { publishingStatus: 'production' });
  const d = await connect('chan_faults2');
  const noAuth = await fetch(`${emu.urls.upload}/upload/youtube/v3/videos?uploadType=resumable&part=snippet`, { method: 'POST' });
  assert.is(noAuth.status, 401);
  const badTitle = await startSession(d.access, { snippet: { title: 'x'.repeat(101) } }, 10);
  assert.equal([badTitle.status, badTitle.json.error.errors[0].reason], [400, 'invalidTitle']);
  const badJson = await fetch(`${emu.urls.upload}/upload/youtube/v3/videos?uploadType=resumable&part=snippet`, {
    method: 'POST', headers: { authorization: `Bearer ${d.access}`, 'content-type': 'application/json' }, body: '{nope',
  });
  assert.is(badJson.status, 400);
  const multipart = await fetch(`${emu.urls.upload}/upload/youtube/v3/videos?uploadType=multipart&part=snippet`, { method: 'POST', headers: { authorization: `Bearer ${d.access}` } });
  assert.is(multipart.status, 400);
});

test('a 200 MB upload streams through: the sha256 matches and the emulator holds no copy of it', async () => {
  const c = await connect('chan_big');
  const file = new PatternFile(200 * 1024 * 1024);
  const expected = file.sha256();
  const s = await startSession(c.access, { snippet: { title: 'Big' } }, file.size);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  try {
    const done = await upload(s.location!, file, 32 * KIB256); // 8 MiB chunks
    assert.is(done!.status, 201);
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.is((await ctl(emu, 'GET', '/videos')).json[0].mediaSha256, expected);
  // Client and emulator share this process; holding the file would add 200 MB.
  assert.ok(peak - baseline < 64 * 1024 * 1024, `RSS grew ${((peak - baseline) / 1048576).toFixed(1)} MB`);
});

test('control paths that are not YouTube\'s are left to the control server', async () => {
  assert.is(await emu.control('GET', '/nothing-here', new URLSearchParams(), {}), undefined);
});

test.run();
