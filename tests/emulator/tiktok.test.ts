import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { realClock, type EmulatorApps, type EmulatorClock, type PlatformEmulator } from './platforms/types.ts';
import { browse, ctl, PatternFile, pkcePair, postForm, postJson, putBytes } from './support/platform-client.ts';
import { startTiktokEmulator } from './tiktok/index.ts';

// The TikTok Login Kit v2 + Content Posting API emulator over plain HTTP, as the daemon's adapter will use it.

const apps: EmulatorApps = {
  meta: { appId: 'm', appSecret: 'ms', verifyToken: 'mv' },
  google: { clientId: 'g', clientSecret: 'gs' },
  tiktok: { clientKey: 'awtestclientkey', clientSecret: 'tiktok-client-secret' },
};
const REDIRECT = 'http://127.0.0.1:9/oauth/tiktok/callback';
const MB = 1024 * 1024;

let emu: PlatformEmulator;
let clock: EmulatorClock;
test.before(async () => {
  clock = realClock();
  emu = await startTiktokEmulator({ clock, apps });
});
test.after(async () => {
  await emu.stop();
});
test.before.each(() => {
  emu.reset();
});

function authorizeUrl(params: Record<string, string | undefined>): string {
  const u = new URL('/v2/auth/authorize/', emu.urls.oauth);
  const all: Record<string, string | undefined> = { client_key: apps.tiktok.clientKey, scope: 'user.info.basic,video.publish,video.upload', response_type: 'code', redirect_uri: REDIRECT, state: 'tt-state' };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) all[k] = v;
  for (const [k, v] of Object.entries(all)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}

const token = (params: Record<string, string>) =>
  postForm(`${emu.urls.api}/v2/oauth/token/`, { client_key: apps.tiktok.clientKey, client_secret: apps.tiktok.clientSecret, ...params });

async function connect(username: string, opts: { private?: boolean; scope?: string } = {}): Promise<{ openId: string; access: string; refresh: string; json: any }> {
  const { json } = await ctl(emu, 'POST', '/accounts', { username, private: opts.private ?? false });
  await ctl(emu, 'POST', '/consent', { account: json.accountId });
  const pk = pkcePair();
  const back = await browse(authorizeUrl({ code_challenge: pk.challenge, code_challenge_method: 'S256', scope: opts.scope }), REDIRECT);
  const t = await token({ grant_type: 'authorization_code', code: back.location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pk.verifier });
  assert.is(t.status, 200, JSON.stringify(t.json));
  return { openId: json.accountId, access: t.json.access_token, refresh: t.json.refresh_token, json: t.json };
}

const api = (path: string, body: unknown, access: string) => postJson(`${emu.urls.api}${path}`, body, access);

const init = (access: string, size: number, chunk: number, privacy = 'SELF_ONLY', title = 'a caption #tag') => api('/v2/post/publish/video/init/', {
  post_info: { title, privacy_level: privacy, disable_comment: false },
  source_info: { source: 'FILE_UPLOAD', video_size: size, chunk_size: chunk, total_chunk_count: Math.floor(size / chunk) },
}, access);

const fetchStatus = (access: string, publishId: string) => api('/v2/post/publish/status/fetch/', { publish_id: publishId }, access);

function chunkRange(size: number, chunk: number, i: number): [number, number] {
  const count = Math.floor(size / chunk);
  const first = i * chunk;
  return [first, i === count - 1 ? size - 1 : first + chunk - 1];
}

const putChunk = (uploadUrl: string, file: PatternFile, chunk: number, i: number, cutAfter?: number) => {
  const [first, last] = chunkRange(file.size, chunk, i);
  return putBytes(uploadUrl, file, first, last - first + 1, { 'content-type': 'video/mp4', 'content-range': `bytes ${first}-${last}/${file.size}` }, cutAfter);
};

test('Login Kit v2 with PKCE: code, scopes and state come back; tokens carry TikTok\'s lifetimes', async () => {
  const c = await connect('tt_flow');
  assert.match(c.access, /^act\./);
  assert.match(c.refresh, /^rft\./);
  assert.is(c.json.open_id, c.openId);
  assert.is(c.json.expires_in, 7200);
  assert.is(c.json.refresh_expires_in, 180 * 24 * 3600);
  assert.is(c.json.scope, 'user.info.basic,video.publish,video.upload');

  // The desktop flow's hex challenge is accepted too.
  await ctl(emu, 'POST', '/consent', { account: c.openId });
  const pk = pkcePair();
  const back = await browse(authorizeUrl({ code_challenge: pk.hexChallenge, code_challenge_method: 'S256' }), REDIRECT);
  assert.is(back.location!.searchParams.get('scopes'), 'user.info.basic,video.publish,video.upload');
  assert.is(back.location!.searchParams.get('state'), 'tt-state');
  const t = await token({ grant_type: 'authorization_code', code: back.location!.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pk.verifier });
  assert.is(t.status, 200);

  const user = await fetch(`${emu.urls.api}/v2/user/info/?fields=open_id,display_name`, { headers: { authorization: `Bearer ${c.access}` } });
  const u = await user.json() as any;
  assert.equal(u.data.user, { open_id: c.openId, display_name: 'tt_flow' });
  assert.is(u.error.code, 'ok');
  const needsProfile = await fetch(`${emu.urls.api}/v2/user/info/?fields=username`, { headers: { authorization: `Bearer ${c.access}` } });
  assert.is(((await needsProfile.json()) as any).error.code, 'scope_not_authorized');

  await ctl(emu, 'POST', '/app', { accessTokenSeconds: 86400, refreshTokenSeconds: 365 * 24 * 3600 });
  const older = await connect('tt_flow24');
  assert.equal([older.json.expires_in, older.json.refresh_expires_in], [86400, 365 * 24 * 3600], 'the older documented lifetimes are a setting');
});

test('the token endpoint checks the verifier, single-use codes, redirect_uri and client credentials', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'tt_checks' });
  const pk = pkcePair();
  const codeFor = async () => {
    await ctl(emu, 'POST', '/consent', { account: json.accountId });
    return (await browse(authorizeUrl({ code_challenge: pk.challenge, code_challenge_method: 'S256' }), REDIRECT)).location!.searchParams.get('code')!;
  };
  let code = await codeFor();
  const wrong = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkcePair().verifier });
  assert.equal([wrong.status, wrong.json.error, wrong.json.error_description], [400, 'invalid_request', 'Code verifier or code challenge is invalid.']);
  assert.match(wrong.json.log_id, /^\d{14}[0-9A-F]{18}$/);
  const again = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pk.verifier });
  assert.equal([again.status, again.json.error], [400, 'invalid_grant']);
  code = await codeFor();
  assert.is((await token({ grant_type: 'authorization_code', code, redirect_uri: `${REDIRECT}x`, code_verifier: pk.verifier })).json.error, 'invalid_grant');
  code = await codeFor();
  const bad = await postForm(`${emu.urls.api}/v2/oauth/token/`, { client_key: apps.tiktok.clientKey, client_secret: 'wrong', grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  assert.equal([bad.status, bad.json.error], [401, 'invalid_client']);
  assert.is((await token({ grant_type: 'client_credentials' })).json.error, 'unsupported_grant_type');
});

test('denial redirects with access_denied; a bad client_key or scope never yields a code', async () => {
  const { json } = await ctl(emu, 'POST', '/accounts', { username: 'tt_deny' });
  await ctl(emu, 'POST', '/consent', { account: json.accountId, deny: true });
  const denied = await browse(authorizeUrl({}), REDIRECT);
  assert.is(denied.location!.searchParams.get('error'), 'access_denied');
  assert.is(denied.location!.searchParams.get('state'), 'tt-state');
  assert.is((await browse(authorizeUrl({ client_key: 'other' }), REDIRECT)).status, 400);
  const badScope = await browse(authorizeUrl({ scope: 'video.delete' }), REDIRECT);
  assert.is(badScope.location!.searchParams.get('error'), 'invalid_scope');
  assert.is((await ctl(emu, 'POST', '/accounts', { username: 'tt_deny' })).status, 409);
  assert.is((await ctl(emu, 'POST', '/accounts', { username: 'x' })).status, 400);
  assert.is((await ctl(emu, 'POST', '/consent', { account: 'nobody' })).status, 404);
});

test('refresh rotates: the old refresh token is dead at once, its lifetime carries over, two racing refreshes make one winner', async () => {
  const c = await connect('tt_rotate');
  clock.advance(3600);
  const r1 = await token({ grant_type: 'refresh_token', refresh_token: c.refresh });
  assert.is(r1.status, 200);
  assert.ok(r1.json.refresh_token !== c.refresh);
  const left = 180 * 24 * 3600 - 3600 - r1.json.refresh_expires_in;
  assert.ok(left >= 0 && left <= 2, `the rotated token keeps the first one's expiry (${left} s off)`);
  const old = await token({ grant_type: 'refresh_token', refresh_token: c.refresh });
  assert.equal([old.status, old.json.error], [400, 'invalid_grant']);
  assert.is((await api('/v2/post/publish/creator_info/query/', undefined, c.access)).status, 200, 'the old access token lives until it expires');

  const race = await Promise.all([1, 2].map(() => token({ grant_type: 'refresh_token', refresh_token: r1.json.refresh_token })));
  assert.equal(race.map((r) => r.status).sort(), [200, 400]);
  const stats = (await ctl(emu, 'GET', '/stats')).json;
  assert.equal([stats.refreshes, stats.refreshFailures, stats.codeExchanges], [2, 2, 1]);
  clock.advance(7200);
  const expired = await api('/v2/post/publish/creator_info/query/', undefined, c.access);
  assert.equal([expired.status, expired.json.error.code], [401, 'access_token_invalid']);
  assert.equal(expired.json.data, {});
  clock.advance(180 * 24 * 3600);
  const winner = race.find((r) => r.status === 200)!;
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: winner.json.refresh_token })).json.error, 'invalid_grant', 'dead after 180 days from the first issue');
});

test('revoke: /v2/oauth/revoke/ and the control call kill access and refresh tokens', async () => {
  const c = await connect('tt_revoke');
  const rv = await postForm(`${emu.urls.api}/v2/oauth/revoke/`, { client_key: apps.tiktok.clientKey, client_secret: apps.tiktok.clientSecret, token: c.access });
  assert.is(rv.status, 200);
  assert.is((await api('/v2/post/publish/creator_info/query/', undefined, c.access)).json.error.code, 'access_token_invalid');
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: c.refresh })).json.error, 'invalid_grant');
  assert.is((await postForm(`${emu.urls.api}/v2/oauth/revoke/`, { client_key: apps.tiktok.clientKey, client_secret: apps.tiktok.clientSecret, token: c.access })).status, 400);

  const d = await connect('tt_revoke2');
  assert.is((await ctl(emu, 'POST', '/revoke', { account: 'tt_revoke2' })).json.revoked, 2);
  assert.is((await token({ grant_type: 'refresh_token', refresh_token: d.refresh })).json.error, 'invalid_grant');
  assert.is((await ctl(emu, 'POST', '/revoke', { account: 'nobody' })).status, 404);
});

test('creator_info: privacy options follow the account; video.publish is required', async () => {
  const pub = await connect('tt_public');
  const info = await api('/v2/post/publish/creator_info/query/', undefined, pub.access);
  assert.equal(info.json.data.privacy_level_options, ['PUBLIC_TO_EVERYONE', 'MUTUAL_FOLLOW_FRIENDS', 'SELF_ONLY']);
  assert.is(info.json.data.creator_username, 'tt_public');
  assert.is(info.json.data.max_video_post_duration_sec, 600);
  assert.is(info.json.error.code, 'ok');
  const priv = await connect('tt_private', { private: true });
  assert.equal((await api('/v2/post/publish/creator_info/query/', undefined, priv.access)).json.data.privacy_level_options, ['FOLLOWER_OF_CREATOR', 'MUTUAL_FOLLOW_FRIENDS', 'SELF_ONLY']);
  const basic = await connect('tt_basic', { scope: 'user.info.basic' });
  const refused = await api('/v2/post/publish/creator_info/query/', undefined, basic.access);
  assert.equal([refused.status, refused.json.error.code], [401, 'scope_not_authorized']);
  const noToken = await api('/v2/post/publish/creator_info/query/', undefined, '');
  assert.is(noToken.status, 401);
});

test('chunked upload resumes after a cut chunk from uploaded_bytes; polling reaches PUBLISH_COMPLETE; one post', async () => {
  const c = await connect('tt_resume');
  const file = new PatternFile(17 * MB + 333);
  const chunk = 5 * MB; // 3 chunks: 5, 5, 7 MB + 333 bytes
  const started = await init(c.access, file.size, chunk);
  assert.is(started.status, 200, JSON.stringify(started.json));
  const { publish_id: publishId, upload_url: uploadUrl } = started.json.data;
  assert.match(publishId, /^v_pub_file~v2-1\.\d+$/);
  assert.is((await putChunk(uploadUrl, file, chunk, 0))!.status, 206);
  await putChunk(uploadUrl, file, chunk, 1, 3 * MB); // killed 3 MB into chunk 1
  let st = await fetchStatus(c.access, publishId);
  assert.equal([st.json.data.status, st.json.data.uploaded_bytes], ['PROCESSING_UPLOAD', chunk], 'a cut chunk does not count');
  const out = await putChunk(uploadUrl, file, chunk, 2);
  assert.equal([out!.status, JSON.parse(out!.body).error.code], [400, 'invalid_file_upload'], 'chunks go in order');
  assert.is((await putChunk(uploadUrl, file, chunk, 0))!.status, 206, 'a chunk already received is acknowledged again');
  assert.is((await putChunk(uploadUrl, file, chunk, 1))!.status, 206);
  assert.is((await putChunk(uploadUrl, file, chunk, 2))!.status, 201);

  st = await fetchStatus(c.access, publishId);
  assert.equal([st.json.data.status, st.json.data.uploaded_bytes], ['PROCESSING_UPLOAD', file.size]);
  st = await fetchStatus(c.access, publishId);
  assert.is(st.json.data.status, 'PUBLISH_COMPLETE');
  assert.equal(st.json.data.publicaly_available_post_id, [], 'a SELF_ONLY post has no public id');
  const posts = (await ctl(emu, 'GET', '/posts')).json;
  assert.is(posts.length, 1);
  assert.equal([posts[0].accountId, posts[0].caption, posts[0].privacy, posts[0].mediaSha256], [c.openId, 'a caption #tag', 'SELF_ONLY', file.sha256()]);
  const [upload] = (await ctl(emu, 'GET', '/uploads')).json;
  const lastChunk = file.size - 2 * chunk;
  assert.is(upload.bytesReceived, file.size + 3 * MB + lastChunk + chunk, 'every byte that arrived is counted: the cut 3 MB, the refused chunk 2, the repeated chunk 0');
  assert.is(upload.committed, file.size);
});

test('init enforces the chunk rules', async () => {
  await ctl(emu, 'POST', '/app', { initsPerMinute: 100 }); // refused inits count against the 6 a minute too
  const c = await connect('tt_rules');
  const bad = async (size: number, chunk: number, count: number) => {
    const r = await api('/v2/post/publish/video/init/', { post_info: { privacy_level: 'SELF_ONLY' }, source_info: { source: 'FILE_UPLOAD', video_size: size, chunk_size: chunk, total_chunk_count: count } }, c.access);
    return `${r.status} ${r.json.error.code}`;
  };
  assert.is(await bad(4 * MB, 2 * MB, 2), '400 invalid_params', 'under 5 MB goes whole');
  assert.is(await bad(100 * MB, 65 * MB, 1), '400 invalid_params', 'chunks at most 64 MB');
  assert.is(await bad(100 * MB, 4 * MB, 25), '400 invalid_params', 'chunks at least 5 MB');
  assert.is(await bad(100 * MB, 10 * MB, 9), '400 invalid_params', 'count = floor(size / chunk)');
  assert.is(await bad(100 * MB, 50 * MB, 2), '200 ok');
  assert.is(await bad(4 * MB, 4 * MB, 1), '200 ok');
  assert.is(await bad(20 * MB, 20 * MB, 1), '200 ok');
  const pull = await api('/v2/post/publish/video/init/', { post_info: { privacy_level: 'SELF_ONLY' }, source_info: { source: 'PULL_FROM_URL', video_url: 'https://x/y.mp4' } }, c.access);
  assert.is(pull.json.error.code, 'invalid_params');
  const noPrivacy = await api('/v2/post/publish/video/init/', { source_info: { source: 'FILE_UPLOAD', video_size: 10, chunk_size: 10, total_chunk_count: 1 } }, c.access);
  assert.is(noPrivacy.json.error.code, 'invalid_params');
  const badJson = await fetch(`${emu.urls.api}/v2/post/publish/video/init/`, { method: 'POST', headers: { authorization: `Bearer ${c.access}`, 'content-type': 'application/json' }, body: '[1' });
  assert.is(badJson.status, 400);
});

test('an unaudited client may only post SELF_ONLY; an audited one posts publicly and gets a post id', async () => {
  const c = await connect('tt_audit');
  const pub = await init(c.access, 1000, 1000, 'PUBLIC_TO_EVERYONE');
  assert.equal([pub.status, pub.json.error.code], [403, 'unaudited_client_can_only_post_to_private_accounts']);
  const mismatch = await init(c.access, 1000, 1000, 'FOLLOWER_OF_CREATOR');
  assert.equal([mismatch.status, mismatch.json.error.code], [400, 'privacy_level_option_mismatch']);
  await ctl(emu, 'POST', '/app', { audited: true, processingPolls: 0 });
  const ok = await init(c.access, 1000, 1000, 'PUBLIC_TO_EVERYONE');
  assert.is(ok.status, 200);
  const file = new PatternFile(1000);
  assert.is((await putChunk(ok.json.data.upload_url, file, 1000, 0))!.status, 201);
  const st = await fetchStatus(c.access, ok.json.data.publish_id);
  assert.is(st.json.data.status, 'PUBLISH_COMPLETE');
  const [post] = (await ctl(emu, 'GET', '/posts')).json;
  assert.equal(st.json.data.publicaly_available_post_id, [post.id]);
  assert.is(post.privacy, 'PUBLIC_TO_EVERYONE');
});

test('the 7th init within a minute on one access token is refused with rate_limit_exceeded', async () => {
  const c = await connect('tt_rate');
  for (let i = 0; i < 6; i++) assert.is((await init(c.access, 1000, 1000)).status, 200, `init ${i + 1}`);
  const seventh = await init(c.access, 1000, 1000);
  assert.equal([seventh.status, seventh.json.error.code], [429, 'rate_limit_exceeded']);
  assert.ok(Number(seventh.headers.get('retry-after')) > 0);
  clock.advance(61);
  assert.is((await init(c.access, 1000, 1000)).status, 200, 'the window moved on');
  for (let i = 0; i < 30; i++) await fetchStatus(c.access, 'v_pub_file~v2-1.0');
  assert.is((await fetchStatus(c.access, 'v_pub_file~v2-1.0')).json.error.code, 'rate_limit_exceeded', 'status/fetch: 30 a minute');
});

test('the daily post cap answers spam_risk_too_many_posts; an unaudited client serves 5 creators a day', async () => {
  await ctl(emu, 'POST', '/app', { postsPerDay: 2 });
  const c = await connect('tt_spam');
  assert.is((await init(c.access, 1000, 1000)).status, 200);
  assert.is((await init(c.access, 1000, 1000)).status, 200);
  const third = await init(c.access, 1000, 1000);
  assert.equal([third.status, third.json.error.code], [403, 'spam_risk_too_many_posts']);
  assert.is((await api('/v2/post/publish/creator_info/query/', undefined, c.access)).json.error.code, 'spam_risk_too_many_posts');
  for (let i = 2; i <= 5; i++) assert.is((await init((await connect(`tt_user${i}`)).access, 1000, 1000)).status, 200);
  const sixth = await init((await connect('tt_user6')).access, 1000, 1000);
  assert.equal([sixth.status, sixth.json.error.code], [403, 'reached_active_user_cap']);
});

test('inbox uploads end in SEND_TO_USER_INBOX and publish nothing; faults answer internal_error', async () => {
  await ctl(emu, 'POST', '/app', { processingPolls: 0 });
  const c = await connect('tt_inbox');
  const started = await api('/v2/post/publish/inbox/video/init/', { source_info: { source: 'FILE_UPLOAD', video_size: 2000, chunk_size: 2000, total_chunk_count: 1 } }, c.access);
  assert.match(started.json.data.publish_id, /^v_inbox_file~v2\.\d+$/);
  const file = new PatternFile(2000);
  emu.fault({ type: 'http-5xx', count: 1 });
  const failed = await putChunk(started.json.data.upload_url, file, 2000, 0);
  assert.equal([failed!.status, JSON.parse(failed!.body).error.code], [500, 'internal_error']);
  assert.is((await putChunk(started.json.data.upload_url, file, 2000, 0))!.status, 201);
  assert.is((await fetchStatus(c.access, started.json.data.publish_id)).json.data.status, 'SEND_TO_USER_INBOX');
  assert.equal((await ctl(emu, 'GET', '/posts')).json, []);

  const other = await connect('tt_other');
  assert.is((await fetchStatus(other.access, started.json.data.publish_id)).json.error.code, 'invalid_params', 'another creator\'s publish_id');
  const wrongType = await putBytes(started.json.data.upload_url, file, 0, 2000, { 'content-type': 'text/plain', 'content-range': 'bytes 0-1999/2000' });
  assert.is(wrongType!.status, 400);
  const unknown = await putBytes(`${emu.urls.api}/video/?upload_id=1&upload_token=2`, file, 0, 10, { 'content-type': 'video/mp4', 'content-range': 'bytes 0-9/10' });
  assert.is(unknown!.status, 400);
});

test('authorization.removed arrives signed with TikTok-Signature and the token is already dead', async () => {
  const c = await connect('tt_hook');
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.end('ok');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  const port = (receiver.address() as { port: number }).port;
  try {
    assert.is((await ctl(emu, 'POST', '/events', { event: 'authorization.removed', account: c.openId })).status, 409, 'no URL yet');
    assert.is((await ctl(emu, 'POST', '/webhook-url', { url: 'ftp://nope' })).status, 400);
    await ctl(emu, 'POST', '/webhook-url', { url: `http://127.0.0.1:${port}/v1/platform-webhooks/tiktok` });
    const delivery = (await ctl(emu, 'POST', '/events', { event: 'authorization.removed', account: c.openId, reason: 1 })).json;
    assert.is(delivery.status, 200);
    const [hit] = received;
    const sig = String(hit!.headers['tiktok-signature']);
    const parts = Object.fromEntries(sig.split(',').map((kv) => kv.split('=') as [string, string]));
    const expected = createHmac('sha256', apps.tiktok.clientSecret).update(`${parts.t}.${hit!.body}`).digest();
    assert.ok(timingSafeEqual(Buffer.from(parts.s!, 'hex'), expected), 'HMAC-SHA256(client_secret, "t.body")');
    assert.ok(Math.abs(Number(parts.t) - Math.floor(clock.now() / 1000)) <= 5);
    const payload = JSON.parse(hit!.body);
    assert.equal([payload.event, payload.user_openid, payload.client_key], ['authorization.removed', c.openId, apps.tiktok.clientKey]);
    assert.equal(JSON.parse(payload.content), { reason: 1 });
    assert.is((await api('/v2/post/publish/creator_info/query/', undefined, c.access)).json.error.code, 'access_token_invalid');
    assert.is((await token({ grant_type: 'refresh_token', refresh_token: c.refresh })).json.error, 'invalid_grant');
    assert.is((await ctl(emu, 'GET', '/webhooks')).json.length, 1);
  } finally {
    receiver.close();
  }
});

test('a 200 MB direct post streams through in 10 MB chunks without the emulator holding it', async () => {
  await ctl(emu, 'POST', '/app', { processingPolls: 0 });
  const c = await connect('tt_big');
  const file = new PatternFile(200 * MB);
  const expected = file.sha256();
  const chunk = 10 * MB;
  const started = await init(c.access, file.size, chunk);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  try {
    for (let i = 0; i < 20; i++) assert.is((await putChunk(started.json.data.upload_url, file, chunk, i))!.status, i < 19 ? 206 : 201);
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.is((await fetchStatus(c.access, started.json.data.publish_id)).json.data.status, 'PUBLISH_COMPLETE');
  assert.is((await ctl(emu, 'GET', '/posts')).json[0].mediaSha256, expected);
  assert.ok(peak - baseline < 64 * MB, `RSS grew ${((peak - baseline) / MB).toFixed(1)} MB`);
});

test('control paths that are not TikTok\'s are left to the control server; bad settings are refused', async () => {
  assert.is(await emu.control('GET', '/videos', new URLSearchParams(), {}), undefined);
  assert.is((await ctl(emu, 'POST', '/app', { audited: 'yes' })).status, 400);
  assert.is((await ctl(emu, 'POST', '/app', { initsPerMinute: -1 })).status, 400);
});

test.run();
