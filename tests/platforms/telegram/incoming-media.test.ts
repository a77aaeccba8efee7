// Incoming messages keep what their file is (type, file name, media type, size): converted from what
// the emulator renders for an account (MTProto) and for a bot (Bot API), then stored with the message
// and its message.received event. The bytes stay at Telegram.
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { accountMedia, botMedia } from '../../../src/platforms/telegram/incoming-media.ts';
import { storeIncoming } from '../../../src/store/incoming.ts';
import { readEvents } from '../../../src/store/events.ts';
import { listMessages, toApiMessage } from '../../../src/store/messages.ts';
import { mediaJson } from '../../emulator/bot-api/render.ts';
import { apiMedia } from '../../emulator/mtproto/peers.ts';
import type { MediaRec } from '../../emulator/world/types.ts';
import { makeConnection } from '../../delivery/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const sha256 = 'ab'.repeat(32);
const files: MediaRec[] = [
  { type: 'photo', size: 123_456, sha256 },
  { type: 'document', size: 3_145_728, sha256, filename: 'report.pdf', mimeType: 'application/pdf' },
  { type: 'video', size: 2_000_000, sha256, filename: 'clip.mp4', mimeType: 'video/mp4' },
  { type: 'animation', size: 40_000, sha256, filename: 'fun.mp4', mimeType: 'video/mp4' },
  { type: 'audio', size: 700_000, sha256, filename: 'song.mp3', mimeType: 'audio/mpeg' },
  { type: 'voice', size: 9_000, sha256, mimeType: 'audio/ogg' },
];

for (const f of files) {
  test(`a ${f.type} sent to an account and to a bot: its type, name, media type and size`, () => {
    const expected = { type: f.type, ...(f.filename && f.type !== 'voice' ? { filename: f.filename } : {}), size: f.size };
    const account = accountMedia(apiMedia(f, 42, 1_700_000_000));
    assert.equal(account, { ...expected, contentType: f.type === 'photo' ? 'image/jpeg' : f.mimeType ?? 'application/octet-stream' });
    const bot = botMedia(mediaJson(f) as never);
    assert.equal(bot, { ...expected, ...(f.type === 'photo' ? { contentType: 'image/jpeg' } : f.mimeType ? { contentType: f.mimeType } : {}) });
  });
}

test('a message without a file has no media', () => {
  assert.is(accountMedia(undefined), undefined);
  assert.is(botMedia({}), undefined);
});

test('an incoming file is stored with the message and in its message.received event', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const media = { type: 'document', filename: 'report.pdf', contentType: 'application/pdf', size: 3_145_728 };
  const r = await storeIncoming(db.sql, { owner, connectionId: conn, message: { chat: '5', from: '7', text: 'the report', platformMessageId: '9', date: new Date().toISOString(), media } });
  assert.ok(r.stored);
  assert.equal((r.event!.data as { media?: unknown }).media, media);
  const [event] = await readEvents(db.sql, owner, { afterPos: 0, limit: 10, types: ['message.received'] });
  assert.equal((event!.data as { media?: unknown }).media, media);
  const page = await listMessages(db.sql, owner, { limit: 10, direction: 'in', connectionId: conn });
  const api = toApiMessage(page.items[0]!);
  assert.equal(api.media, media);
  assert.is(api.text, 'the report');
  // A text message stays without media.
  await storeIncoming(db.sql, { owner, connectionId: conn, message: { chat: '5', from: '7', text: 'plain', platformMessageId: '10', date: new Date().toISOString() } });
  const plain = (await listMessages(db.sql, owner, { limit: 10, direction: 'in', connectionId: conn })).items.map((m) => toApiMessage(m)).find((m) => m.text === 'plain')!;
  assert.is(plain.media, undefined);
});

test.run();
