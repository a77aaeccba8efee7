import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ctl } from '../../emulator/support/platform-client.ts';
import { until } from '../../helpers/stack.ts';
import { connectAccount, postsOf, startMetaWorld, type MetaPlatform } from './user-world.ts';

// Acceptance (issue 19): the process publishing an Instagram or Threads post is killed with SIGKILL
// between the container's creation and the publish call, and between the publish and its answer;
// the next process publishes it exactly once — from the stored container id, and (when the post was
// made) by finding it in the account's media, never by publishing again. The sender is a child
// process (publish-kill-child.ts: the real driver under a supervisor, on this test's database and
// keyring key); the emulator stays here, so what it holds outlives the kill.

const child = fileURLToPath(new URL('./publish-kill-child.ts', import.meta.url));

async function drill(platform: MetaPlatform, hang: 'before-publish' | 'after-publish' | 'between-items', carousel = false): Promise<void> {
  const key = randomBytes(32);
  const w = await startMetaWorld(platform, { keyringKey: key });
  const children: ChildProcess[] = [];
  try {
    const { id, accountId } = await connectAccount(w, 'alice', `kill_${platform}_${hang.replace('-', '_')}`);
    await w.stack.supervisor.stop();
    const base = { platform, db: w.stack.db.url, key: key.toString('hex'), urls: w.emu.urls, owner: 'alice', connectionId: id, messageId: randomUUID(), carousel };
    const start = (extra: Record<string, unknown>) => {
      const p = spawn(process.execPath, ['--import', 'tsx', child], { env: { ...process.env, PUBLISH_KILL: JSON.stringify({ ...base, ...extra }) }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(p);
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d));
      p.stderr!.on('data', (d: Buffer) => (out += d));
      return { p, out: () => out };
    };

    const first = start({ hang });
    const exited = once(first.p, 'exit');
    await until(() => first.out().includes('HANG') || first.p.exitCode !== null, 'the first sender at the kill point', 30_000);
    assert.ok(first.out().includes('HANG'), first.out());
    first.p.kill('SIGKILL');
    const [, signal] = await exited;
    assert.is(signal, 'SIGKILL');
    const atKill = await postsOf(w, accountId);
    assert.is(atKill.length, hang === 'after-publish' ? 1 : 0, 'killed where the test meant');

    const second = start({});
    const [code] = await once(second.p, 'exit');
    assert.is(code, 0, second.out());
    const sent = JSON.parse(second.out().trim().split('\n').at(-1)!).sent as string;
    const posts = await postsOf(w, accountId);
    assert.is(posts.length, 1, 'published exactly once');
    assert.is(sent, posts[0].id, 'the message names the post');
    assert.is((await ctl(w.emu, 'GET', '/posts')).json.filter((x: any) => x.caption === 'kill -9 drill' && x.accountId === accountId).length, 1);
    if (carousel) {
      assert.is(posts[0].mediaType, 'CAROUSEL_ALBUM');
      assert.is(posts[0].children.length, 3, 'three items, none lost or doubled across the kill');
    }
  } finally {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await w.close();
  }
}

test('Instagram: SIGKILL between the container\'s creation and the publish → published once by the next process', async () => {
  await drill('instagram', 'before-publish');
});

test('Instagram: SIGKILL between the publish and its answer → the next process finds the post, published once', async () => {
  await drill('instagram', 'after-publish');
});

test('Instagram carousel: SIGKILL after the second item\'s container was made, before its id was stored → one carousel of three, once', async () => {
  await drill('instagram', 'between-items', true);
});

test('Instagram carousel: SIGKILL between the CAROUSEL container and the publish → published once', async () => {
  await drill('instagram', 'before-publish', true);
});

test('Instagram carousel: SIGKILL between the publish and its answer → found, published once', async () => {
  await drill('instagram', 'after-publish', true);
});

test('Threads: SIGKILL between the container\'s creation and the publish → published once', async () => {
  await drill('threads', 'before-publish');
});

test('Threads: SIGKILL between the publish and its answer → found, published once', async () => {
  await drill('threads', 'after-publish');
});

test.run();
