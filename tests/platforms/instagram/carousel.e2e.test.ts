import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { clipOf, connectAccount, driverOf, message, photoOf, postsOf, startMetaWorld, type MetaWorld } from '../meta/user-world.ts';

// Instagram carousels through the real driver against the emulator over real sockets, on real
// Postgres: a message with several files (OutboundMessage.items) becomes item containers
// (is_carousel_item), one CAROUSEL container, a status poll and one publish — one CAROUSEL_ALBUM post
// whose children are the files in order, counted once against the 24-hour limit; the same message
// retried names the same post and publishes nothing; 1 or 11 files, or a file type a carousel does not
// take, are refused before anything is created.

let w: MetaWorld;
let conn: { id: string; accountId: string };
test.before(async () => {
  w = await startMetaWorld('instagram');
  conn = await connectAccount(w, 'alice', 'ig_carousel');
});
test.after(async () => { await w.close(); });

const refused = async (p: Promise<unknown>, code: string): Promise<string> => {
  try {
    await p;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    assert.is((err as { code: string }).code, code, (err as Error).message);
    return (err as Error).message;
  }
  throw new Error(`expected ${code}`);
};

test('three files → one CAROUSEL_ALBUM with the files in order, counted once; a retry publishes nothing more', async () => {
  const driver = driverOf(w, 'alice', conn.id);
  const before = driver.quota.view()[0]?.used ?? 0;
  const files = [photoOf(30_000), clipOf(50_000), photoOf(20_000)];
  const msg = message(conn.id, 'three in one', files);
  const sent = await driver.send(msg);
  const posts = await postsOf(w, conn.accountId);
  assert.is(posts.length, 1);
  assert.is(posts[0].id, sent.platformMessageId);
  assert.is(posts[0].mediaType, 'CAROUSEL_ALBUM');
  assert.is(posts[0].caption, 'three in one');
  assert.equal(posts[0].children.map((c: any) => [c.mediaType, c.mediaSha256]), files.map((f) => [f.type === 'video' ? 'VIDEO' : 'IMAGE', f.sha256]));
  assert.is(driver.quota.view()[0]!.used, before + 1, 'one post against the 50');
  const limit = await ctl(w.emu, 'GET', '/posts');
  assert.is(limit.json.filter((p: any) => p.accountId === conn.accountId).length, 1);

  const again = await driver.send({ ...msg, attempts: 2 });
  assert.is(again.platformMessageId, sent.platformMessageId);
  assert.is((await postsOf(w, conn.accountId)).length, 1, 'the retry published nothing');
});

test('1 file, 11 files or a document: PLATFORM_UNSUPPORTED before any container', async () => {
  const driver = driverOf(w, 'alice', conn.id);
  const before = (await postsOf(w, conn.accountId)).length;
  assert.match(await refused(driver.send(message(conn.id, 'one', [photoOf(1000)])), 'PLATFORM_UNSUPPORTED'), /2 to 10/);
  assert.match(await refused(driver.send(message(conn.id, 'eleven', Array.from({ length: 11 }, () => photoOf(1000)))), 'PLATFORM_UNSUPPORTED'), /2 to 10/);
  const doc = { ...photoOf(1000), type: 'document' as const };
  await refused(driver.send(message(conn.id, 'doc', [photoOf(1000), doc])), 'PLATFORM_UNSUPPORTED');
  assert.is((await postsOf(w, conn.accountId)).length, before);
});

test.run();
