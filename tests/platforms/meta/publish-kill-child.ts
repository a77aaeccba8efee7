// Child process of publish-kill.e2e.test.ts: the real Instagram or Threads driver under a supervisor,
// over the test's database and keyring key, publishes one message (`carousel`: three photos as one
// Instagram carousel) and exits 0 — unless told to stop (`hang`) just before the publish call leaves,
// just after its answer arrived at this process and before the driver sees it, or (`between-items`)
// once the second carousel item's container exists but before the driver stored its id; it then
// prints HANG and waits for the test's SIGKILL.
import postgres from 'postgres';
import { openKeyring } from '../../../src/crypto/keyring.ts';
import type { OutboundMedia } from '../../../src/platforms/adapter.ts';
import { Platforms } from '../../../src/platforms/registry.ts';
import { oauthSupervisor } from '../oauth-stack.ts';
import { MediaServer, metaAdapter, type MetaPlatform } from './user-world.ts';

const e = JSON.parse(process.env.PUBLISH_KILL!) as {
  platform: MetaPlatform; db: string; key: string; urls: Record<string, string>;
  owner: string; connectionId: string; messageId: string; hang?: 'before-publish' | 'after-publish' | 'between-items'; carousel?: boolean;
};

const real = globalThis.fetch;
let items = 0;
if (e.hang === 'between-items') {
  globalThis.fetch = async (input, init) => {
    if (!String(init?.body ?? '').includes('is_carousel_item') || ++items < 2) return real(input, init);
    await real(input, init);
    process.stdout.write('HANG\n');
    return new Promise<never>(() => undefined);
  };
} else if (e.hang) {
  globalThis.fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!/\/(media_publish|threads_publish)(\?|$)/.test(new URL(url).pathname)) return real(input, init);
    if (e.hang === 'after-publish') await real(input, init);
    process.stdout.write('HANG\n');
    return new Promise<never>(() => undefined);
  };
}

const media = await new MediaServer().start();
const sql = postgres(e.db, { max: 3, onnotice: () => undefined });
const keyring = await openKeyring({ keyringKey: Buffer.from(e.key, 'hex') });
const adapter = metaAdapter(e.platform, e.urls, { mediaLink: media.link, watchMs: 60_000 });
const supervisor = oauthSupervisor(sql, keyring, new Platforms([adapter]));
await supervisor.start();
let live = supervisor.live(e.owner, e.connectionId);
for (let i = 0; i < 500 && (!live || live.status !== 'active'); i++) {
  await new Promise((r) => setTimeout(r, 20));
  live = supervisor.live(e.owner, e.connectionId);
}
if (!live) throw new Error('the connection did not come up');

const bytes = Buffer.alloc(20_000, 7);
const photo: OutboundMedia = {
  type: 'photo', filename: 'p.jpg', contentType: 'image/jpeg', size: bytes.length, sha256: '',
  async* read() { yield bytes; },
};
const sent = await live.driver.send({
  id: e.messageId, owner: e.owner, connectionId: e.connectionId, chat: 'me', text: 'kill -9 drill', silent: false, priority: 'normal',
  attempts: 1, createdAt: new Date(),
  ...(e.carousel ? { items: [photo, { ...photo, filename: 'p2.jpg' }, { ...photo, filename: 'p3.jpg' }] } : e.platform === 'instagram' ? { media: photo } : {}),
});
process.stdout.write(`${JSON.stringify({ sent: sent.platformMessageId })}\n`);
await supervisor.stop();
await keyring.close();
await sql.end();
await media.stop();
process.exit(0);
