import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tiktokAdapter } from '../../src/platforms/tiktok/index.ts';
import { youtubeAdapter } from '../../src/platforms/youtube/index.ts';
import type { PlatformAdapter } from '../../src/platforms/adapter.ts';
import { realClock, type PlatformEmulator } from '../emulator/platforms/types.ts';
import { ctl } from '../emulator/support/platform-client.ts';
import { startTiktokEmulator } from '../emulator/tiktok/index.ts';
import { startYoutubeEmulator } from '../emulator/youtube/index.ts';
import { until } from '../helpers/stack.ts';
import { apps, consent, startOAuthStack } from './oauth-stack.ts';

// Acceptance (issue 20): a video to YouTube and to TikTok, the sending process killed with SIGKILL at
// 50 % of the bytes → the next process resumes from the last byte the platform confirmed (the
// emulator counts every byte received: at most one chunk re-sent), and there is one video.
// The sender is a child process (upload-kill-child.ts: the real driver under a supervisor, on this
// test's Postgres database and keyring key); the emulator stays here, so its counts outlive the kill.
// The acceptance's 200 MB: about 35 s for both on the shared 2-core machine (UPLOAD_KILL_MB=24 for a quick run).
// It prints what the emulator counted.

const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.UPLOAD_KILL_MB ?? 200);
const child = fileURLToPath(new URL('./upload-kill-child.ts', import.meta.url));

interface Row { accountId: string; committed: number; bytesReceived: number; total?: number | null }

async function drill(platform: 'youtube' | 'tiktok'): Promise<void> {
  const size = SIZE_MB * MB + 12_345; // not a whole number of chunks: the last one is short (YouTube) or absorbs the rest (TikTok)
  const chunk = platform === 'youtube' ? 4 * MB : 5 * MB; // YouTube: a multiple of 256 KiB; TikTok: 5 MB at least
  const emu: PlatformEmulator = platform === 'youtube' ? await startYoutubeEmulator({ clock: realClock(), apps }) : await startTiktokEmulator({ clock: realClock(), apps });
  const adapter: PlatformAdapter = platform === 'youtube'
    ? youtubeAdapter({ clientId: apps.google.clientId, clientSecret: apps.google.clientSecret, oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api!, uploadUrl: emu.urls.upload!, quota: { unitsPerDay: 10_000, insertUnits: 0, uploadsPerDay: 100 } })
    : tiktokAdapter({ clientKey: apps.tiktok.clientKey, clientSecret: apps.tiktok.clientSecret, oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api! });
  const key = randomBytes(32);
  const stack = await startOAuthStack(adapter, { keyringKey: key });
  const children: ChildProcess[] = [];
  try {
    const { json: account } = await ctl(emu, 'POST', '/accounts', { username: `kill_${platform}` });
    await ctl(emu, 'POST', '/consent', { account: account.accountId });
    const c = await stack.connections.create('alice', { platform, kind: 'account' });
    await stack.connections.authorizationCallback(platform, await consent(c.login!.authorizeUrl as string, platform));
    await until(async () => (await stack.connections.get('alice', c.id)).status === 'active', 'active');
    // From here the child processes own the connection: this process only watches the emulator.
    await stack.supervisor.stop();
    const rows = async (): Promise<Row[]> => (await ctl(emu, 'GET', '/uploads')).json.filter((r: Row) => r.accountId === account.accountId);
    const env = JSON.stringify({ platform, db: stack.db.url, key: key.toString('hex'), urls: emu.urls, apps, owner: 'alice', connectionId: c.id, messageId: randomUUID(), size, chunk });
    const start = () => {
      const p = spawn(process.execPath, ['--import', 'tsx', child], { env: { ...process.env, UPLOAD_KILL: env }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(p);
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d));
      p.stderr!.on('data', (d: Buffer) => (out += d));
      return { p, out: () => out };
    };

    const first = start();
    const exited = once(first.p, 'exit');
    let killedAt = -1;
    while (killedAt < 0) {
      const [r] = await rows();
      if (r && r.committed >= size / 2) {
        first.p.kill('SIGKILL');
        killedAt = r.committed;
      } else if (first.p.exitCode !== null) {
        throw new Error(`the first sender ended before half way: ${first.out()}`);
      } else {
        await new Promise((res) => setTimeout(res, 5));
      }
    }
    const [, signal] = await exited;
    assert.is(signal, 'SIGKILL');
    const atKill = (await rows())[0]!;
    assert.ok(atKill.committed < size, 'killed before the end');

    const second = start();
    const [code] = await once(second.p, 'exit');
    assert.is(code, 0, second.out());
    const sent = JSON.parse(second.out().trim().split('\n').at(-1)!).sent as string;

    const all = await rows();
    assert.is(all.length, 1, 'the same upload session / publish, no second init');
    const r = all[0]!;
    assert.is(r.committed, size);
    const resent = r.bytesReceived - size;
    assert.ok(resent <= chunk, `re-sent ${resent} bytes, more than one chunk (${chunk})`);
    const made = platform === 'youtube'
      ? (await ctl(emu, 'GET', '/videos')).json.filter((v: any) => v.accountId === account.accountId)
      : (await ctl(emu, 'GET', '/posts')).json.filter((v: any) => v.accountId === account.accountId);
    assert.is(made.length, 1, 'one video');
    console.log(`${platform} ${(size / MB).toFixed(1)} MB, chunk ${chunk / MB} MB: SIGKILL at ${(killedAt / MB).toFixed(1)} MB confirmed; `
      + `emulator received ${(r.bytesReceived / MB).toFixed(1)} MB in all, ${(resent / MB).toFixed(2)} MB re-sent; videos: ${made.length} (${sent})`);
  } finally {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await stack.close();
    await emu.stop();
  }
}

test('YouTube: SIGKILL at 50 % → the next process resumes from the confirmed byte, ≤ one chunk re-sent, one video', async () => {
  await drill('youtube');
});

test('TikTok: SIGKILL at 50 % → the next process resumes from the chunk TikTok holds, ≤ one chunk re-sent, one post', async () => {
  await drill('tiktok');
});

test.run();
