import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { videoOf } from '../oauth-stack.ts';
import { connectChannel, startYoutubeWorld, type YoutubeWorld } from './helpers.ts';

// The service's own count of the day's quota (YOUTUBE_UPLOADS_PER_DAY = 2 here): the third upload of the
// Pacific day is refused before any call, with retryAfter until midnight Pacific time.

let w: YoutubeWorld;
test.before(async () => { w = await startYoutubeWorld({ quota: { unitsPerDay: 10_000, insertUnits: 0, uploadsPerDay: 2 } }); });
test.after(async () => { await w.close(); });

test('the upload past the configured daily quota is refused at once with retryAfter', async () => {
  const { id } = await connectChannel(w, 'alice', 'chan-q');
  const driver = w.stack.supervisor.live('alice', id)!.driver;
  const send = () => driver.send({
    id: randomUUID(), owner: 'alice', connectionId: id, chat: 'me', text: 'clip', silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), media: videoOf(1000),
  });
  await send();
  await send();
  const before = (await ctl(w.emu, 'GET', '/quota')).json;
  try {
    await send();
    assert.unreachable('third upload went out');
  } catch (err) {
    if (!isAppError(err)) throw err;
    assert.is(err.code, 'PLATFORM_QUOTA_EXCEEDED');
    const expected = Math.ceil((Date.parse(before.resetsAt) - w.clock.now()) / 1000);
    assert.ok(Math.abs(err.retryAfter! - expected) <= 2, `retryAfter ${err.retryAfter} vs ${expected}`);
  }
  assert.equal((await ctl(w.emu, 'GET', '/quota')).json, before, 'YouTube saw no call');
  // The connection shows the quota it draws on, with its reset at Pacific midnight.
  const view = await w.stack.connections.get('alice', id);
  const uploads = view.quotas?.find((q) => q.name === 'youtube.uploads.daily');
  assert.equal(uploads, { name: 'youtube.uploads.daily', used: 2, limit: 2, resetsAt: before.resetsAt });
  assert.ok(view.quotas?.some((q) => q.name === 'youtube.units.daily' && q.limit === 10_000));
});

test.run();
