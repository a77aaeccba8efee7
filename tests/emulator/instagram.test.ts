import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock } from './support/gramjs.ts';
import { Receiver, jpeg, until, validSignature } from './support/receiver.ts';

// The Instagram emulator over plain HTTP: Business Login (authorize → code → short token → long token →
// refresh rules), container publishing with status polling, the 24-hour publishing limit, tokens dying
// (revoked, password changed, expired on the shared clock), signed webhooks, faults and control input.

const HOUR = 3600;
let emu: Emulator;
let rx: Receiver;
let api: string;
let oauth: string;

test.before(async () => {
  rx = await new Receiver().start();
  // A frozen base clock: time moves only through POST /clock, so every expiry below is exact.
  emu = await startEmulator({ clock: new ManualClock(), platforms: ['instagram'], platformOptions: { instagram: { processingMs: { image: 60_000, video: 0, carousel: 60_000 }, webhookRetries: 0 } } });
  api = emu.platforms.get('instagram')!.urls.api!;
  oauth = emu.platforms.get('instagram')!.urls.oauth!;
});
test.after(async () => {
  await emu.stop();
  await rx.close();
});

async function ctl(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emu.control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function graph(method: 'GET' | 'POST' | 'DELETE', path: string, params: Record<string, string> = {}, base = api): Promise<{ status: number; json: any }> {
  const url = new URL(`${base}${path}`);
  let body: string | undefined;
  if (method === 'GET') for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  else body = new URLSearchParams(params).toString();
  const res = await fetch(url, { method, body, headers: body ? { 'content-type': 'application/x-www-form-urlencoded' } : {} });
  return { status: res.status, json: await res.json() };
}

const advance = async (seconds: number) => assert.is((await ctl('POST', '/clock', { advanceS: seconds })).status, 200);
const redirectUri = () => `${rx.url}/callback`;
const authorizeUrl = (state: string, scope = 'instagram_business_basic,instagram_business_content_publish') =>
  `${oauth}/oauth/authorize?${new URLSearchParams({ client_id: emu.apps.meta.appId, redirect_uri: redirectUri(), response_type: 'code', scope, state })}`;

/** The whole Business Login as a browser and a server do it → a long-lived token. */
async function connect(username: string): Promise<{ accountId: string; token: string }> {
  const acc = await ctl('POST', '/instagram/accounts', { username });
  assert.is(acc.status, 200);
  await ctl('POST', '/instagram/consent', { account: username });
  const state = `s-${username}`;
  await fetch(authorizeUrl(state));
  const cb = rx.callbacks.at(-1)!;
  assert.is(cb.get('state'), state);
  const short = await graph('POST', '/oauth/access_token', { client_id: emu.apps.meta.appId, client_secret: emu.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: redirectUri(), code: cb.get('code')! }, oauth);
  const long = await graph('GET', '/access_token', { grant_type: 'ig_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: short.json.data[0].access_token });
  return { accountId: acc.json.accountId, token: long.json.access_token };
}

test('Business Login: the authorize window redirects with code and state; code → short token → long token', async () => {
  const acc = await ctl('POST', '/instagram/accounts', { username: 'shop_one' });
  assert.is(acc.status, 200);
  assert.match(acc.json.accountId, /^\d{17}$/);
  assert.is((await ctl('POST', '/instagram/consent', { account: 'shop_one' })).status, 200);
  const res = await fetch(authorizeUrl('state-123'));
  assert.is(res.status, 200, 'the redirect was followed to the callback');
  const cb = rx.callbacks.at(-1)!;
  assert.is(cb.get('state'), 'state-123');
  const code = cb.get('code')!;
  assert.ok(code.length > 20);

  const exchange = (extra: Record<string, string> = {}) => graph('POST', '/oauth/access_token', {
    client_id: emu.apps.meta.appId, client_secret: emu.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: redirectUri(), code, ...extra,
  }, oauth);
  const badSecret = await exchange({ client_secret: 'nope' });
  assert.is(badSecret.status, 400);
  const wrongRedirect = await exchange({ redirect_uri: `${rx.url}/elsewhere` });
  assert.is(wrongRedirect.status, 400);
  assert.equal(wrongRedirect.json.error_type, 'OAuthException');
  assert.match(wrongRedirect.json.error_message, /redirect_uri/);
  const short = await exchange();
  assert.is(short.status, 200);
  assert.equal(Object.keys(short.json.data[0]).sort(), ['access_token', 'permissions', 'user_id']);
  assert.is(short.json.data[0].user_id, acc.json.accountId);
  assert.is(short.json.data[0].permissions, 'instagram_business_basic,instagram_business_content_publish');
  const reused = await exchange();
  assert.is(reused.status, 400, 'a code works once');
  assert.match(reused.json.error_message, /used/);

  const shortToken = short.json.data[0].access_token as string;
  const me = await graph('GET', '/v21.0/me', { fields: 'user_id,username', access_token: shortToken });
  assert.equal(me.json, { user_id: acc.json.accountId, username: 'shop_one', id: acc.json.accountId });
  const badGrant = await graph('GET', '/access_token', { grant_type: 'fb_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: shortToken });
  assert.is(badGrant.json.error.code, 100);
  const long = await graph('GET', '/access_token', { grant_type: 'ig_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: shortToken });
  assert.is(long.status, 200);
  assert.is(long.json.token_type, 'bearer');
  assert.is(long.json.expires_in, 60 * 86_400);
  assert.is.not(long.json.access_token, shortToken);
});

test('token lifetimes: short dies after 1 h; refresh refused before 24 h (not as 190), works after, old token lives on', async () => {
  const acc = await ctl('POST', '/instagram/accounts', { username: 'shop_refresh' });
  await ctl('POST', '/instagram/consent', { account: acc.json.accountId });
  await fetch(authorizeUrl('r'));
  const code = rx.callbacks.at(-1)!.get('code')!;
  const short = (await graph('POST', '/oauth/access_token', { client_id: emu.apps.meta.appId, client_secret: emu.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: redirectUri(), code }, oauth)).json.data[0].access_token;
  const long = (await graph('GET', '/access_token', { grant_type: 'ig_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: short })).json.access_token;

  const early = await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: long });
  assert.is(early.status, 400);
  assert.is(early.json.error.code, 100, 'too early is not a dead token');
  assert.match(early.json.error.message, /24 hours/);
  assert.is((await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: short })).json.error.code, 100, 'a short token cannot be refreshed');

  await advance(HOUR + 1);
  const dead = await graph('GET', '/me', { access_token: short });
  assert.is(dead.status, 400);
  assert.is(dead.json.error.code, 190);
  assert.is(dead.json.error.error_subcode, 463);
  assert.is((await graph('GET', '/access_token', { grant_type: 'ig_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: short })).json.error.code, 190, 'an expired short token cannot be exchanged');

  await advance(23 * HOUR);
  const refreshed = await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: long });
  assert.is(refreshed.status, 200);
  assert.is(refreshed.json.expires_in, 60 * 86_400, 'a refreshed token lives 60 days from the refresh');
  assert.is.not(refreshed.json.access_token, long);
  assert.is((await graph('GET', '/me', { access_token: long })).status, 200, 'the old long-lived token still works');
  assert.is((await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: refreshed.json.access_token })).status, 400, 'the refreshed token must age 24 h again');

  await advance(60 * 86_400 - 24 * HOUR);
  const expired = await graph('GET', '/me', { access_token: long });
  assert.is(expired.json.error.code, 190);
  assert.is(expired.json.error.error_subcode, 463);
  assert.is((await graph('GET', '/me', { access_token: refreshed.json.access_token })).status, 200, 'the refreshed token outlives the original');
  await advance(24 * HOUR);
  assert.is((await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: refreshed.json.access_token })).json.error?.error_subcode, 463, 'an expired token cannot be refreshed');
});

test('consent denied → access_denied with the same state; no consent queued → the window says so', async () => {
  assert.is((await ctl('POST', '/instagram/consent', { deny: true })).status, 200);
  await fetch(authorizeUrl('deny-state'));
  const cb = rx.callbacks.at(-1)!;
  assert.is(cb.get('error'), 'access_denied');
  assert.is(cb.get('error_reason'), 'user_denied');
  assert.is(cb.get('state'), 'deny-state');
  assert.is(cb.get('code'), null);
  const none = await fetch(authorizeUrl('x'), { redirect: 'manual' });
  assert.is(none.status, 409);
  const badClient = await fetch(authorizeUrl('x').replace(`client_id=${emu.apps.meta.appId}`, 'client_id=42'), { redirect: 'manual' });
  assert.is(badClient.status, 400);
  assert.match(await badClient.text(), /Invalid platform app/);
  await ctl('POST', '/instagram/consent', {});
  const noScope = await fetch(authorizeUrl('x', 'instagram_business_content_publish'), { redirect: 'manual' });
  assert.is(noScope.status, 400, 'instagram_business_basic is required');
  const auto = await fetch(authorizeUrl('auto'), { redirect: 'manual' });
  assert.is(auto.status, 302, 'a consent without account approves as a new account');
  assert.match(auto.headers.get('location')!, /[?&]code=[^&#]+&state=auto#_$/);
});

test('publishing an image: container IN_PROGRESS → not publishable → FINISHED → published once, sha256 of the fetched bytes', async () => {
  const { accountId, token } = await connect('shop_pub');
  const bytes = jpeg('pub-1');
  const imageUrl = rx.serve('pub-1.jpg', bytes);
  const created = await graph('POST', `/${accountId}/media`, { image_url: imageUrl, caption: 'Hello #emulator', access_token: token });
  assert.is(created.status, 200);
  const container = created.json.id as string;
  const status = async () => (await graph('GET', `/${container}`, { fields: 'status_code,status', access_token: token })).json;
  assert.is((await status()).status_code, 'IN_PROGRESS');
  const early = await graph('POST', `/${accountId}/media_publish`, { creation_id: container, access_token: token });
  assert.is(early.status, 400);
  assert.is(early.json.error.code, 9007);
  assert.is(early.json.error.error_subcode, 2207027);
  await advance(60);
  assert.equal(await status(), { status_code: 'FINISHED', status: 'Finished: Media has been uploaded and it is complete.', id: container });
  const published = await graph('POST', `/me/media_publish`, { creation_id: container, access_token: token });
  assert.is(published.status, 200);
  const mediaId = published.json.id as string;
  assert.is((await status()).status_code, 'PUBLISHED');
  assert.is((await graph('POST', `/${accountId}/media_publish`, { creation_id: container, access_token: token })).status, 400, 'a container publishes once');

  const posts = (await ctl('GET', `/instagram/posts?accountId=${accountId}`)).json;
  assert.equal(posts.map((p: any) => [p.id, p.caption, p.mediaType, p.mediaSha256]), [[mediaId, 'Hello #emulator', 'IMAGE', createHash('sha256').update(bytes).digest('hex')]]);
  const listed = await graph('GET', `/${accountId}/media`, { fields: 'id,caption,media_type,timestamp', access_token: token });
  assert.is(listed.json.data.length, 1);
  assert.is(listed.json.data[0].id, mediaId);
  assert.match(listed.json.data[0].timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
  assert.is((await graph('GET', `/${mediaId}`, { fields: 'media_product_type', access_token: token })).json.media_product_type, 'FEED');
});

test('publishing: media the platform cannot fetch, video (REELS) and carousel containers, another account\'s objects', async () => {
  const { accountId, token } = await connect('shop_media');
  const remote = await graph('POST', `/${accountId}/media`, { image_url: 'https://example.com/a.jpg', access_token: token });
  assert.is(remote.status, 400);
  assert.is(remote.json.error.code, 9004);
  assert.is(remote.json.error.error_subcode, 2207052);
  assert.is((await graph('POST', `/${accountId}/media`, { caption: 'no media', access_token: token })).json.error.code, 100);
  assert.is((await graph('POST', `/${accountId}/media`, { media_type: 'VIDEO', video_url: rx.serve('v0.mp4', Buffer.from('v'), 'video/mp4'), access_token: token })).json.error.code, 100, 'VIDEO is for carousel items; feed videos are REELS');

  const missing = await graph('POST', `/${accountId}/media`, { media_type: 'REELS', video_url: `${rx.url}/media/absent.mp4`, access_token: token });
  assert.is(missing.status, 200, 'a video is downloaded after the answer');
  const failed = await until(async () => {
    const s = (await graph('GET', `/${missing.json.id}`, { fields: 'status_code,status', access_token: token })).json;
    return s.status_code === 'ERROR' ? s : undefined;
  }, 'video container ERROR');
  assert.match(failed.status, /^Error: Media download has failed/);

  const video = Buffer.from('a reel');
  const reel = await graph('POST', `/${accountId}/media`, { media_type: 'REELS', video_url: rx.serve('reel.mp4', video, 'video/mp4'), caption: 'reel', access_token: token });
  await until(async () => (await graph('GET', `/${reel.json.id}`, { fields: 'status_code', access_token: token })).json.status_code === 'FINISHED' || undefined, 'reel FINISHED');
  assert.is((await graph('POST', `/${accountId}/media_publish`, { creation_id: reel.json.id, access_token: token })).status, 200);

  const itemA = (await graph('POST', `/${accountId}/media`, { image_url: rx.serve('c1.jpg', jpeg('c1')), is_carousel_item: 'true', access_token: token })).json.id;
  const itemB = (await graph('POST', `/${accountId}/media`, { media_type: 'VIDEO', video_url: rx.serve('c2.mp4', Buffer.from('c2'), 'video/mp4'), is_carousel_item: 'true', access_token: token })).json.id;
  assert.is((await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: itemA, access_token: token })).json.error.code, 100, 'a carousel needs 2+ children');
  const carousel = await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: `${itemA},${itemB}`, caption: 'two', access_token: token });
  assert.is(carousel.status, 200);
  assert.is((await graph('POST', `/${accountId}/media_publish`, { creation_id: itemA, access_token: token })).json.error.code, 100, 'an item is published through its carousel');
  await advance(60);
  await until(async () => (await graph('GET', `/${carousel.json.id}`, { fields: 'status_code', access_token: token })).json.status_code === 'FINISHED' || undefined, 'carousel FINISHED');
  const album = await graph('POST', `/${accountId}/media_publish`, { creation_id: carousel.json.id, access_token: token });
  assert.is(album.status, 200);
  const post = (await ctl('GET', `/instagram/posts?accountId=${accountId}`)).json.find((p: any) => p.id === album.json.id);
  assert.is(post.mediaType, 'CAROUSEL_ALBUM');
  assert.equal(post.children.map((c: any) => c.mediaSha256), [createHash('sha256').update(jpeg('c1')).digest('hex'), createHash('sha256').update('c2').digest('hex')]);

  const other = await connect('shop_other');
  const foreign = await graph('GET', `/${carousel.json.id}`, { fields: 'status_code', access_token: other.token });
  assert.is(foreign.json.error.code, 100);
  assert.is(foreign.json.error.error_subcode, 33);
  assert.is((await graph('POST', `/${accountId}/media`, { image_url: rx.serve('x.jpg', jpeg('x')), access_token: other.token })).json.error.error_subcode, 33);
  assert.is((await graph('POST', `/${other.accountId}/media_publish`, { creation_id: reel.json.id, access_token: other.token })).json.error.error_subcode, 33);
});

test('carousels as Content Publishing defines them: 2–10 IMAGE/VIDEO items, one post, counted once, items never reused', async () => {
  const { accountId, token } = await connect('shop_carousel');
  const item = async (n: number) => (await graph('POST', `/${accountId}/media`, { image_url: rx.serve(`k${n}.jpg`, jpeg(`k${n}`)), is_carousel_item: 'true', access_token: token })).json.id as string;
  const items = await Promise.all(Array.from({ length: 11 }, (_, i) => item(i)));
  const eleven = await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: items.join(','), access_token: token });
  assert.is(eleven.json.error.code, 100, 'at most 10 children');
  for (const type of ['REELS', 'STORIES']) {
    const r = await graph('POST', `/${accountId}/media`, { media_type: type, video_url: rx.serve(`i-${type}.mp4`, Buffer.from(type), 'video/mp4'), is_carousel_item: 'true', access_token: token });
    assert.is(r.json.error?.code, 100, `${type} is not a carousel item`);
  }
  const other = await connect('shop_carousel_other');
  const foreignItem = (await graph('POST', `/${other.accountId}/media`, { image_url: rx.serve('f.jpg', jpeg('f')), is_carousel_item: 'true', access_token: other.token })).json.id;
  assert.is((await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: `${items[0]},${foreignItem}`, access_token: token })).json.error.code, 100, 'another account\'s item');
  const notItem = (await graph('POST', `/${accountId}/media`, { image_url: rx.serve('n.jpg', jpeg('n')), access_token: token })).json.id;
  assert.is((await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: `${items[0]},${notItem}`, access_token: token })).json.error.code, 100, 'a container made without is_carousel_item');

  const ten = await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: items.slice(0, 10).join(','), caption: 'ten', access_token: token });
  assert.is(ten.status, 200);
  assert.is((await graph('GET', `/${ten.json.id}`, { fields: 'status_code', access_token: token })).json.status_code, 'IN_PROGRESS', 'processing like its items');
  await advance(60);
  const before = (await graph('GET', `/${accountId}/content_publishing_limit`, { fields: 'quota_usage', access_token: token })).json.data[0].quota_usage;
  const album = await graph('POST', `/${accountId}/media_publish`, { creation_id: ten.json.id, access_token: token });
  assert.is(album.status, 200);
  const after = (await graph('GET', `/${accountId}/content_publishing_limit`, { fields: 'quota_usage', access_token: token })).json.data[0].quota_usage;
  assert.is(after - before, 1, 'a carousel counts as one post');
  const again = await graph('POST', `/${accountId}/media`, { media_type: 'CAROUSEL', children: `${items[0]},${items[10]}`, access_token: token });
  assert.is(again.json.error.code, 100, 'an item of a published carousel is not used again');
  const posts = (await ctl('GET', `/instagram/posts?accountId=${accountId}`)).json;
  assert.equal(posts.map((p: any) => [p.mediaType, p.caption, p.children.length]), [['CAROUSEL_ALBUM', 'ten', 10]]);
  const listed = await graph('GET', `/${accountId}/media`, { fields: 'id,media_type,children', access_token: token });
  assert.is(listed.json.data[0].media_type, 'CAROUSEL_ALBUM');
  assert.is(listed.json.data[0].children.data.length, 10);
});

test('content_publishing_limit and the 51st post in a moving 24 hours', async () => {
  const { accountId, token } = await connect('shop_quota');
  const limit = async () => (await graph('GET', `/${accountId}/content_publishing_limit`, { fields: 'quota_usage,config', access_token: token })).json.data[0];
  assert.equal(await limit(), { quota_usage: 0, config: { quota_total: 50, quota_duration: 86_400 } });
  assert.equal((await graph('GET', `/${accountId}/content_publishing_limit`, { access_token: token })).json, { data: [{ quota_usage: 0 }] }, 'quota_usage alone by default');
  const url = rx.serve('quota.jpg', jpeg('quota'));
  const containers: string[] = [];
  for (let i = 0; i < 51; i++) containers.push((await graph('POST', `/${accountId}/media`, { image_url: url, access_token: token })).json.id);
  await advance(60);
  for (const c of containers.slice(0, 50)) assert.is((await graph('POST', `/${accountId}/media_publish`, { creation_id: c, access_token: token })).status, 200);
  assert.is((await limit()).quota_usage, 50);
  const over = await graph('POST', `/${accountId}/media_publish`, { creation_id: containers[50]!, access_token: token });
  assert.is(over.status, 400);
  assert.is(over.json.error.code, 9);
  assert.is(over.json.error.error_subcode, 2207042);
  await advance(86_399);
  assert.is((await limit()).quota_usage, 50, 'a moving window: one second before the posts are 24 h old');
  await advance(1);
  assert.is((await limit()).quota_usage, 0, 'the window moved past the 50 posts');
  assert.is((await graph('POST', `/${accountId}/media_publish`, { creation_id: containers[50]!, access_token: token })).json.error.error_subcode, 2207020, 'the 51st container expired meanwhile');
});

test('revoked (app removed, password changed) → 190 with 458/460; re-authorizing works again; 60 days → 463', async () => {
  const a = await connect('shop_revoke');
  const revoked = await ctl('POST', '/instagram/revoke', { account: 'shop_revoke' });
  assert.is(revoked.status, 200);
  const dead = await graph('GET', '/me', { access_token: a.token });
  assert.is(dead.status, 400);
  assert.is(dead.json.error.code, 190);
  assert.is(dead.json.error.error_subcode, 458);
  assert.is((await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: a.token })).json.error.code, 190);
  await ctl('POST', '/instagram/consent', { account: 'shop_revoke' });
  await fetch(authorizeUrl('again'));
  const code = rx.callbacks.at(-1)!.get('code')!;
  const short = (await graph('POST', '/oauth/access_token', { client_id: emu.apps.meta.appId, client_secret: emu.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: redirectUri(), code }, oauth)).json.data[0].access_token;
  assert.is((await graph('GET', '/me', { access_token: short })).status, 200, 'a new authorization gives a working token');

  const b = await connect('shop_password');
  await ctl('POST', '/instagram/revoke', { account: b.accountId, reason: 'password-changed' });
  assert.is((await graph('GET', '/me', { access_token: b.token })).json.error.error_subcode, 460);
  assert.is((await ctl('POST', '/instagram/revoke', { account: b.accountId, reason: 'stolen' })).status, 400);
  assert.is((await ctl('POST', '/instagram/revoke', { account: 'nobody_here' })).status, 404);

  const c = await connect('shop_sixty');
  await advance(59 * 86_400);
  assert.is((await graph('GET', '/me', { access_token: c.token })).status, 200);
  await advance(86_400);
  const expired = await graph('GET', '/me', { access_token: c.token });
  assert.is(expired.json.error.code, 190);
  assert.is(expired.json.error.error_subcode, 463);
  assert.is((await graph('GET', '/me', { access_token: 'IGAAnot-a-token' })).json.error.code, 190);
  assert.is((await graph('GET', '/me')).json.error.code, 104);
});

test('webhooks: the verification handshake, subscribed fields, a comment signed with the app secret over the raw body', async () => {
  rx.verifyToken = 'wrong-token';
  const refused = await ctl('POST', '/instagram/webhook-url', { url: `${rx.url}/webhook` });
  assert.is(refused.status, 422, 'a callback that fails the handshake is not kept');
  rx.verifyToken = emu.apps.meta.verifyToken;
  assert.equal((await ctl('POST', '/instagram/webhook-url', { url: `${rx.url}/webhook` })).json, { url: `${rx.url}/webhook`, verified: true });

  const { accountId, token } = await connect('shop_hooks');
  const unsubscribed = await ctl('POST', '/instagram/events', { type: 'comment', account: accountId, mediaId: '17900000000000001', text: 'hi' });
  assert.is(unsubscribed.json.delivered, false, 'no subscription, no webhook');
  assert.is((await graph('POST', `/${accountId}/subscribed_apps`, { subscribed_fields: 'bogus', access_token: token })).json.error.code, 100);
  assert.equal((await graph('POST', '/me/subscribed_apps', { subscribed_fields: 'comments,messages', access_token: token })).json, { success: true });
  assert.equal((await graph('GET', '/me/subscribed_apps', { access_token: token })).json.data[0].subscribed_fields, ['comments', 'messages']);

  const before = rx.webhooks.length;
  const sent = await ctl('POST', '/instagram/events', { type: 'comment', account: 'shop_hooks', mediaId: '17900000000000001', text: 'Café ✓ nice', from: { id: '1234', username: 'fan' } });
  assert.is(sent.status, 200);
  assert.is(sent.json.delivered, true);
  const hook = rx.webhooks[before]!;
  assert.ok(validSignature(hook.raw, hook.signature256, emu.apps.meta.appSecret), 'X-Hub-Signature-256 is the HMAC of the raw body');
  assert.not.ok(validSignature(hook.raw, hook.signature256, 'another-secret'));
  assert.ok(hook.raw.toString().includes('Caf\\u00e9 \\u2713'), 'non-ASCII is escaped as Meta sends it');
  assert.is(hook.body.object, 'instagram');
  assert.is(hook.body.entry[0].id, accountId);
  assert.equal(hook.body.entry[0].changes[0].field, 'comments');
  assert.equal(hook.body.entry[0].changes[0].value.from, { id: '1234', username: 'fan' });
  assert.equal(hook.body.entry[0].changes[0].value.media, { id: '17900000000000001', media_product_type: 'FEED' });
  assert.is(hook.body.entry[0].changes[0].value.text, 'Café ✓ nice');

  await ctl('POST', '/instagram/events', { type: 'message', account: accountId, text: 'dm', badSignature: true });
  const bad = rx.webhooks.at(-1)!;
  assert.is(bad.body.entry[0].messaging[0].message.text, 'dm');
  assert.not.ok(validSignature(bad.raw, bad.signature256, emu.apps.meta.appSecret), 'badSignature signs with another key');
  assert.is((await ctl('POST', '/instagram/events', { type: 'like', account: accountId, text: 'x' })).status, 400);
});

test('faults for the platform: 5xx and rate limits for the next calls, then normal again; malformed control input', async () => {
  const { token } = await connect('shop_faults');
  assert.is((await ctl('POST', '/faults', { type: 'http-5xx', target: 'instagram', count: 2 })).status, 200);
  assert.is((await graph('GET', '/me', { access_token: token })).status, 500);
  assert.is((await graph('GET', '/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: token })).status, 500);
  assert.is((await graph('GET', '/me', { access_token: token })).status, 200);
  await ctl('POST', '/faults', { type: 'rate-limit', target: 'instagram' });
  const limited = await graph('GET', '/me', { access_token: token });
  assert.is(limited.json.error.code, 4);
  assert.is(limited.json.error.is_transient, true);
  assert.is((await ctl('POST', '/faults', { type: 'explode', target: 'instagram' })).status, 400);
  assert.is((await ctl('POST', '/faults', { type: 'http-5xx', target: 'instagram', count: -1 })).status, 400);

  assert.is((await ctl('POST', '/instagram/accounts', { username: 'bad name!' })).status, 400);
  assert.is((await ctl('POST', '/instagram/accounts', { username: 'shop_faults' })).status, 409);
  assert.is((await ctl('POST', '/instagram/consent', { account: 'ghost_account' })).status, 404);
  assert.is((await ctl('POST', '/instagram/consent', { deny: 'maybe' })).status, 400);
  assert.is((await ctl('POST', '/instagram/webhook-url', { url: 'not a url' })).status, 400);
  assert.is((await ctl('GET', '/instagram/nothing-here')).status, 404);
});

test.run();
