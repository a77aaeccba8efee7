import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAppError } from '../../../src/errors.ts';
import type { Driver, OutboundMedia, OutboundMessage } from '../../../src/platforms/adapter.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { until } from '../../helpers/stack.ts';
import { videoOf } from '../oauth-stack.ts';
import { connectChannel, startYoutubeWorld, type YoutubeWorld } from './helpers.ts';

// Resumable uploads through the YouTube driver against the emulator: one video per message across a
// 5xx mid-upload, a crash (a new process resuming the stored session), and a lost final answer; the
// daily quota refused before any call; malformed input refused. Chunks are 1 MiB here (8 MiB default).

const MIB = 1024 * 1024;
let w: YoutubeWorld;
test.before(async () => { w = await startYoutubeWorld(); });
test.after(async () => { await w.close(); });

const message = (connectionId: string, media: OutboundMedia, text = 'Launch day\nThe whole story'): OutboundMessage => ({
  id: randomUUID(), owner: 'alice', connectionId, chat: 'me', text, silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), media,
});

const driverOf = (owner: string, id: string): Driver => w.stack.supervisor.live(owner, id)!.driver;

async function videos(accountId: string): Promise<any[]> {
  return (await ctl(w.emu, 'GET', '/videos')).json.filter((v: any) => v.accountId === accountId);
}
async function sessions(accountId: string): Promise<any[]> {
  return (await ctl(w.emu, 'GET', '/uploads')).json.filter((s: any) => s.accountId === accountId);
}

const rejects = async (p: Promise<unknown>, code: string) => {
  try {
    await p;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    assert.is((err as { code: string }).code, code, (err as Error).message);
    return err as { code: string; retryAfter?: number; category: string };
  }
  throw new Error(`expected ${code}`);
};

test('a video is uploaded once, processed, with title and description from the text', async () => {
  const { id, channelId } = await connectChannel(w, 'alice', 'chan-a');
  const media = videoOf(5 * MIB + 123);
  const sent = await driverOf('alice', id).send(message(id, media));
  const [v, ...more] = await videos(channelId);
  assert.is(more.length, 0);
  assert.is(v.id, sent.platformMessageId);
  assert.is(v.mediaSha256, media.sha256);
  assert.is(v.title, 'Launch day');
  assert.is(v.description, 'Launch day\nThe whole story');
  assert.is(v.requestedPrivacy, 'private');
});

test('a 5xx mid-upload: resumed from the byte YouTube confirmed, ≤ one chunk re-sent, one video', async () => {
  const { id, channelId } = await connectChannel(w, 'alice', 'chan-b');
  const media = videoOf(12 * MIB);
  const plain = media.read.bind(media);
  let armed = false;
  media.read = async function* () {
    let n = 0;
    for await (const b of plain()) {
      n += b.length;
      // The PUT that carries the 6th MiB gets a 503 from the upload server.
      if (!armed && n >= 6 * MIB) { armed = true; w.emu.fault({ type: 'http-5xx', count: 1 }); }
      yield b;
    }
  };
  const sent = await driverOf('alice', id).send(message(id, media));
  const vs = await videos(channelId);
  assert.is(vs.length, 1);
  assert.is(vs[0].id, sent.platformMessageId);
  assert.is(vs[0].mediaSha256, media.sha256);
  const [s, ...others] = await sessions(channelId);
  assert.is(others.length, 0, 'one upload session: never restarted from zero');
  assert.ok(s.bytesReceived <= media.size + MIB, `re-sent ${s.bytesReceived - media.size} bytes`);
});

test('a crash mid-upload: the next process resumes the stored session, one video, ≤ one chunk re-sent', async () => {
  const { id, channelId } = await connectChannel(w, 'alice', 'chan-c');
  const media = videoOf(10 * MIB + 5);
  const msg = message(id, media);
  const plain = media.read.bind(media);
  // The first process dies after reading 5.5 MiB: every read of the file fails from there.
  media.read = async function* () {
    let n = 0;
    for await (const b of plain()) {
      n += b.length;
      if (n > 5.5 * MIB) throw new Error('process killed');
      yield b;
    }
  };
  await driverOf('alice', id).send(msg).then(() => assert.unreachable('sent'), () => undefined);
  const half = (await sessions(channelId))[0];
  assert.ok(half.committed > 0 && half.committed < media.size);
  assert.is((await videos(channelId)).length, 0);
  await w.stack.restart();
  await until(async () => (await w.stack.connections.get('alice', id)).status === 'active', 'active after restart');
  media.read = plain;
  const sent = await driverOf('alice', id).send({ ...msg, attempts: 2 });
  const vs = await videos(channelId);
  assert.is(vs.length, 1);
  assert.is(vs[0].id, sent.platformMessageId);
  assert.is(vs[0].mediaSha256, media.sha256);
  const all = await sessions(channelId);
  assert.is(all.length, 1, 'the same session, not a new one');
  assert.ok(all[0].bytesReceived <= media.size + MIB, `re-sent ${all[0].bytesReceived - media.size} bytes`);
  assert.ok(all[0].statusQueries >= 1, 'asked the session how far it got');
});

test('the answer to the last chunk lost: the retry finds the video, no second one, no second insert', async () => {
  const { id, channelId } = await connectChannel(w, 'alice', 'chan-d');
  const media = videoOf(2 * MIB);
  const msg = message(id, media);
  const first = await driverOf('alice', id).send(msg);
  const inserts = (await ctl(w.emu, 'GET', '/quota')).json.inserts;
  const again = await driverOf('alice', id).send({ ...msg, attempts: 2 });
  assert.is(again.platformMessageId, first.platformMessageId);
  assert.is((await videos(channelId)).length, 1);
  assert.is((await ctl(w.emu, 'GET', '/quota')).json.inserts, inserts);
});

test('malformed input: not a video → PLATFORM_UNSUPPORTED; a type YouTube refuses → PLATFORM_REJECTED; nothing uploaded', async () => {
  const { id, channelId } = await connectChannel(w, 'alice', 'chan-e');
  const photo = { ...videoOf(1000), type: 'photo' as const };
  await rejects(driverOf('alice', id).send(message(id, photo)), 'PLATFORM_UNSUPPORTED');
  const err = await rejects(driverOf('alice', id).send(message(id, videoOf(1000, 'image/png'))), 'PLATFORM_REJECTED');
  assert.is(err.category, 'rejected');
  assert.is((await videos(channelId)).length, 0);
});

test('quota: YouTube answers quotaExceeded → PLATFORM_QUOTA_EXCEEDED until Pacific midnight; the next upload is refused before any call', async () => {
  const { id, channelId } = await connectChannel(w, 'alice', 'chan-f');
  await ctl(w.emu, 'POST', '/app', { insertsPerDay: 0 });
  try {
    const err = await rejects(driverOf('alice', id).send(message(id, videoOf(1000))), 'PLATFORM_QUOTA_EXCEEDED');
    const { resetsAt } = (await ctl(w.emu, 'GET', '/quota')).json;
    const expected = Math.ceil((Date.parse(resetsAt) - w.clock.now()) / 1000);
    assert.ok(Math.abs(err.retryAfter! - expected) <= 2, `retryAfter ${err.retryAfter} vs ${expected}`);
    assert.is(err.category, 'quota-until');
    const before = (await sessions(channelId)).length;
    const calls = (await ctl(w.emu, 'GET', '/stats')).json;
    await rejects(driverOf('alice', id).send(message(id, videoOf(1000))), 'PLATFORM_QUOTA_EXCEEDED');
    assert.is((await sessions(channelId)).length, before);
    assert.equal((await ctl(w.emu, 'GET', '/stats')).json.quota, calls.quota, 'no call reached YouTube');
  } finally {
    await ctl(w.emu, 'POST', '/app', { insertsPerDay: 100 });
  }
});

test.run();
