// Child process of upload-kill.e2e.test.ts (and the 200 MB drill): the real driver under a supervisor,
// over the test's database and keyring key, sends one video message and exits 0 — unless the test
// kills it with SIGKILL half way. The file's bytes are a fixed function of their offset, so the
// process that resumes sends the same file the killed one started.
import postgres from 'postgres';
import { openKeyring } from '../../src/crypto/keyring.ts';
import type { OutboundMedia } from '../../src/platforms/adapter.ts';
import { Platforms } from '../../src/platforms/registry.ts';
import { tiktokAdapter } from '../../src/platforms/tiktok/index.ts';
import { youtubeAdapter } from '../../src/platforms/youtube/index.ts';
import { oauthSupervisor } from './oauth-stack.ts';

const e = JSON.parse(process.env.UPLOAD_KILL!) as {
  platform: 'youtube' | 'tiktok'; db: string; key: string; urls: Record<string, string>; apps: any;
  owner: string; connectionId: string; messageId: string; size: number; chunk: number;
};
const MB = 1024 * 1024;
const adapter = e.platform === 'youtube'
  ? youtubeAdapter({
      clientId: e.apps.google.clientId, clientSecret: e.apps.google.clientSecret, oauthUrl: e.urls.oauth!, apiUrl: e.urls.api!, uploadUrl: e.urls.upload!,
      quota: { unitsPerDay: 10_000, insertUnits: 0, uploadsPerDay: 100 }, chunkBytes: e.chunk, processingPollMs: 10, processingMaxMs: 5000, timeoutMs: 5000,
    })
  : tiktokAdapter({
      clientKey: e.apps.tiktok.clientKey, clientSecret: e.apps.tiktok.clientSecret, oauthUrl: e.urls.oauth!, apiUrl: e.urls.api!,
      chunkBytes: e.chunk, statusPollMs: 10, statusMaxMs: 5000, timeoutMs: 5000,
    });
const sql = postgres(e.db, { max: 3, onnotice: () => undefined });
const keyring = await openKeyring({ keyringKey: Buffer.from(e.key, 'hex') });
const supervisor = oauthSupervisor(sql, keyring, new Platforms([adapter]));
await supervisor.start();
let live = supervisor.live(e.owner, e.connectionId);
for (let i = 0; i < 500 && !live; i++) {
  await new Promise((r) => setTimeout(r, 20));
  live = supervisor.live(e.owner, e.connectionId);
}
if (!live) throw new Error('the connection did not come up');

const pattern = Buffer.alloc(MB + 7);
for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + (i >> 9)) & 255;
const media: OutboundMedia = {
  type: 'video', filename: 'clip.mp4', contentType: 'video/mp4', size: e.size, sha256: '',
  async* read() {
    for (let pos = 0; pos < e.size;) {
      const at = pos % pattern.length;
      const n = Math.min(MB, e.size - pos, pattern.length - at);
      yield pattern.subarray(at, at + n);
      pos += n;
    }
  },
};
const sent = await live.driver.send({
  id: e.messageId, owner: e.owner, connectionId: e.connectionId, chat: 'me', text: 'kill -9 drill', silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), media,
});
process.stdout.write(`${JSON.stringify({ sent: sent.platformMessageId })}\n`);
await supervisor.stop();
await keyring.close();
await sql.end();
process.exit(0);
