import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock } from './support/gramjs.ts';
import { Receiver, jpeg, until } from './support/receiver.ts';

// The Threads emulator over plain HTTP: OAuth on threads.net with the code exchange on the Graph host,
// th_exchange_token / th_refresh_token, TEXT / IMAGE / VIDEO / CAROUSEL containers with `status`, replies,
// threads_publishing_limit (250 posts and 1,000 replies by default; small limits set here to reach them).

let emu: Emulator;
let rx: Receiver;
let api: string;
let oauth: string;

test.before(async () => {
  rx = await new Receiver().start();
  emu = await startEmulator({ clock: new ManualClock(), platforms: ['threads'], platformOptions: { threads: { processingMs: { image: 30_000, video: 0 }, postLimit: 3, replyLimit: 2 } } });
  api = emu.platforms.get('threads')!.urls.api!;
  oauth = emu.platforms.get('threads')!.urls.oauth!;
});
test.after(async () => {
  await emu.stop();
  await rx.close();
});

async function ctl(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emu.control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

/** Graph calls the way the Threads reference shows them: parameters in the query string, also for POST. */
async function graph(method: 'GET' | 'POST', path: string, params: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${api}${path}?${new URLSearchParams(params)}`, { method });
  return { status: res.status, json: await res.json() };
}

const advance = async (seconds: number) => assert.is((await ctl('POST', '/clock', { advanceS: seconds })).status, 200);

async function connect(username: string): Promise<{ accountId: string; short: string; token: string }> {
  const acc = await ctl('POST', '/threads/accounts', { username });
  await ctl('POST', '/threads/consent', { account: username });
  const url = `${oauth}/oauth/authorize?${new URLSearchParams({ client_id: emu.apps.meta.appId, redirect_uri: `${rx.url}/callback`, scope: 'threads_basic,threads_content_publish', response_type: 'code', state: username })}`;
  await fetch(url);
  const cb = rx.callbacks.at(-1)!;
  assert.is(cb.get('state'), username);
  const body = new URLSearchParams({ client_id: emu.apps.meta.appId, client_secret: emu.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: `${rx.url}/callback`, code: cb.get('code')! });
  const short = await (await fetch(`${api}/oauth/access_token`, { method: 'POST', body })).json() as any;
  assert.equal(Object.keys(short).sort(), ['access_token', 'user_id']);
  assert.is(short.user_id, acc.json.accountId);
  const long = await graph('GET', '/access_token', { grant_type: 'th_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: short.access_token });
  assert.is(long.json.expires_in, 60 * 86_400);
  return { accountId: acc.json.accountId, short: short.access_token, token: long.json.access_token };
}

test('OAuth: code on the Graph host → {access_token, user_id}; th_exchange_token; th_refresh_token only after 24 h', async () => {
  const { short, token } = await connect('writer_one');
  assert.is((await graph('GET', '/access_token', { grant_type: 'ig_exchange_token', client_secret: emu.apps.meta.appSecret, access_token: short })).json.error.code, 100, 'the Instagram grant is not Threads\'');
  const me = await graph('GET', '/v1.0/me', { fields: 'id,username', access_token: token });
  assert.is(me.json.username, 'writer_one');
  const early = await graph('GET', '/refresh_access_token', { grant_type: 'th_refresh_token', access_token: token });
  assert.is(early.json.error.code, 100);
  await advance(86_400);
  assert.is((await graph('GET', '/me', { access_token: short })).json.error.error_subcode, 463);
  const refreshed = await graph('GET', '/refresh_access_token', { grant_type: 'th_refresh_token', access_token: token });
  assert.is(refreshed.status, 200);
  assert.is(refreshed.json.expires_in, 60 * 86_400);
  await ctl('POST', '/threads/revoke', { account: 'writer_one' });
  const revoked = await graph('GET', '/me', { access_token: refreshed.json.access_token });
  assert.is(revoked.json.error.code, 190);
  assert.is(revoked.json.error.error_subcode, 458);
});

test('a text post is FINISHED at once; an image waits for processing; status is the field; each published once', async () => {
  const { accountId, token } = await connect('writer_posts');
  const text = await graph('POST', `/${accountId}/threads`, { media_type: 'TEXT', text: 'first thread', access_token: token });
  assert.is(text.status, 200);
  assert.equal((await graph('GET', `/${text.json.id}`, { fields: 'status,error_message', access_token: token })).json, { status: 'FINISHED', id: text.json.id });
  const published = await graph('POST', `/${accountId}/threads_publish`, { creation_id: text.json.id, access_token: token });
  assert.is(published.status, 200);
  assert.is((await graph('POST', `/${accountId}/threads_publish`, { creation_id: text.json.id, access_token: token })).status, 400);

  assert.is((await graph('POST', `/${accountId}/threads`, { media_type: 'TEXT', text: 'x'.repeat(501), access_token: token })).json.error.code, 100);
  assert.is((await graph('POST', `/${accountId}/threads`, { text: 'no type', access_token: token })).json.error.type, 'THApiException');
  const bytes = jpeg('threads-image');
  const image = await graph('POST', `/${accountId}/threads`, { media_type: 'IMAGE', image_url: rx.serve('t1.jpg', bytes), text: 'with a picture', access_token: token });
  assert.is((await graph('GET', `/${image.json.id}`, { fields: 'status', access_token: token })).json.status, 'IN_PROGRESS');
  assert.is((await graph('POST', `/${accountId}/threads_publish`, { creation_id: image.json.id, access_token: token })).status, 400);
  await advance(30);
  const pic = await graph('POST', `/${accountId}/threads_publish`, { creation_id: image.json.id, access_token: token });
  assert.is(pic.status, 200);

  const video = await graph('POST', `/${accountId}/threads`, { media_type: 'VIDEO', video_url: `${rx.url}/media/missing.mp4`, access_token: token });
  const failed = await until(async () => {
    const s = (await graph('GET', `/${video.json.id}`, { fields: 'status,error_message', access_token: token })).json;
    return s.status === 'ERROR' ? s : undefined;
  }, 'video ERROR');
  assert.is(failed.error_message, 'FAILED_DOWNLOADING_VIDEO');

  const posts = (await ctl('GET', `/threads/posts?accountId=${accountId}`)).json;
  assert.equal(posts.map((p: any) => [p.id, p.mediaType, p.mediaSha256]), [[published.json.id, 'TEXT_POST', null], [pic.json.id, 'IMAGE', createHash('sha256').update(bytes).digest('hex')]]);
  const listed = await graph('GET', `/${accountId}/threads`, { fields: 'id,text,media_type', access_token: token });
  assert.equal(listed.json.data.map((d: any) => d.media_type), ['IMAGE', 'TEXT_POST'], 'newest first');
});

test('threads_publishing_limit counts posts and replies apart; over the limit → refused', async () => {
  const { accountId, token } = await connect('writer_quota');
  const limit = async () => (await graph('GET', `/${accountId}/threads_publishing_limit`, { access_token: token })).json.data[0];
  assert.equal(await limit(), { quota_usage: 0, config: { quota_total: 3, quota_duration: 86_400 }, reply_quota_usage: 0, reply_config: { quota_total: 2, quota_duration: 86_400 } });
  const post = async (params: Record<string, string>) => {
    const c = await graph('POST', `/${accountId}/threads`, { media_type: 'TEXT', access_token: token, ...params });
    return graph('POST', `/${accountId}/threads_publish`, { creation_id: c.json.id, access_token: token });
  };
  const root = (await post({ text: 'root' })).json.id as string;
  await post({ text: 'two' });
  await post({ text: 'three' });
  const over = await post({ text: 'four' });
  assert.is(over.status, 400);
  assert.is(over.json.error.code, 9);
  assert.is((await post({ text: 'reply 1', reply_to_id: root })).status, 200, 'replies have their own quota');
  assert.is((await post({ text: 'reply 2', reply_to_id: root })).status, 200);
  assert.is((await post({ text: 'reply 3', reply_to_id: root })).json.error.code, 9);
  assert.equal(await limit(), { quota_usage: 3, config: { quota_total: 3, quota_duration: 86_400 }, reply_quota_usage: 2, reply_config: { quota_total: 2, quota_duration: 86_400 } });
  assert.is((await graph('POST', `/${accountId}/threads`, { media_type: 'TEXT', text: 'r', reply_to_id: '17000000000000000', access_token: token })).json.error.error_subcode, 33);
});

test('carousel of an image and a video item; the defaults are 250 posts and 1,000 replies', async () => {
  const { accountId, token } = await connect('writer_carousel');
  const a = (await graph('POST', `/${accountId}/threads`, { media_type: 'IMAGE', is_carousel_item: 'true', image_url: rx.serve('ca.jpg', jpeg('ca')), access_token: token })).json.id;
  const b = (await graph('POST', `/${accountId}/threads`, { media_type: 'VIDEO', is_carousel_item: 'true', video_url: rx.serve('cb.mp4', Buffer.from('cb'), 'video/mp4'), access_token: token })).json.id;
  const carousel = await graph('POST', `/${accountId}/threads`, { media_type: 'CAROUSEL', children: `${a},${b}`, text: 'album', access_token: token });
  assert.is(carousel.status, 200);
  await advance(30);
  await until(async () => (await graph('GET', `/${carousel.json.id}`, { fields: 'status', access_token: token })).json.status === 'FINISHED' || undefined, 'carousel FINISHED');
  const pub = await graph('POST', `/${accountId}/threads_publish`, { creation_id: carousel.json.id, access_token: token });
  assert.is(pub.status, 200);
  const p = (await ctl('GET', `/threads/posts?accountId=${accountId}`)).json[0];
  assert.is(p.mediaType, 'CAROUSEL_ALBUM');
  assert.is(p.children.length, 2);

  const plain = await startEmulator({ platforms: ['threads'] });
  try {
    const acc = await (await fetch(`${plain.control}/threads/accounts`, { method: 'POST', body: JSON.stringify({ username: 'defaults' }) })).json() as any;
    await fetch(`${plain.control}/threads/consent`, { method: 'POST', body: JSON.stringify({ account: acc.accountId }) });
    const th = plain.platforms.get('threads')!.urls;
    const loc = (await fetch(`${th.oauth}/oauth/authorize?${new URLSearchParams({ client_id: plain.apps.meta.appId, redirect_uri: 'http://127.0.0.1:9/cb', scope: 'threads_basic', response_type: 'code' })}`, { redirect: 'manual' })).headers.get('location')!;
    const code = new URL(loc).searchParams.get('code')!;
    const tok = await (await fetch(`${th.api}/oauth/access_token`, { method: 'POST', body: new URLSearchParams({ client_id: plain.apps.meta.appId, client_secret: plain.apps.meta.appSecret, grant_type: 'authorization_code', redirect_uri: 'http://127.0.0.1:9/cb', code }) })).json() as any;
    const lim = await (await fetch(`${th.api}/me/threads_publishing_limit?fields=config,reply_config&access_token=${tok.access_token}`)).json() as any;
    assert.equal(lim.data[0], { config: { quota_total: 250, quota_duration: 86_400 }, reply_config: { quota_total: 1000, quota_duration: 86_400 } });
    const noScope = await (await fetch(`${th.api}/me/threads?media_type=TEXT&text=x&access_token=${tok.access_token}`, { method: 'POST' })).json() as any;
    assert.is(noScope.error.code, 10, 'publishing needs threads_content_publish');
  } finally {
    await plain.stop();
  }
});

test.run();
