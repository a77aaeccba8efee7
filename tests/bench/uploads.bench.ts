// bench:uploads — video uploads through the YouTube and TikTok drivers against their emulators (loopback):
// MB/s per upload, RSS growth per concurrent upload (goal: ≤ 2 chunk sizes), CPU per MB.
// The emulators run in their own process by default (--emulator process), so RSS and CPU are the
// daemon's side alone; --emulator inline runs them here (their socket reads and hashing count too).
//   node --expose-gc --import tsx tests/bench/uploads.bench.ts [--mb 200] [--concurrent 1,4] [--platform youtube,tiktok] [--emulator process|inline]
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { tiktokAdapter } from '../../src/platforms/tiktok/index.ts';
import { youtubeAdapter } from '../../src/platforms/youtube/index.ts';
import type { Driver, OutboundMessage } from '../../src/platforms/adapter.ts';
import { realClock } from '../emulator/platforms/types.ts';
import { ctl } from '../emulator/support/platform-client.ts';
import { startTiktokEmulator } from '../emulator/tiktok/index.ts';
import { startYoutubeEmulator } from '../emulator/youtube/index.ts';
import { until } from '../helpers/stack.ts';
import { control, spawnEmulator } from './spawn-emulator.ts';
import { apps, consent, startOAuthStack, videoOf } from '../platforms/oauth-stack.ts';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '200' }, concurrent: { type: 'string', default: '1,4' }, platform: { type: 'string', default: 'youtube,tiktok' }, emulator: { type: 'string', default: 'process' } } });
const MB = 1024 * 1024;
const sizeMb = Number(values.mb);
const levels = values.concurrent!.split(',').map(Number);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

interface Emu { urls: Record<string, string | undefined>; apps: typeof apps; ctl(method: 'GET' | 'POST', path: string, body?: unknown): Promise<any>; stop(): Promise<void> }

/** The platform's emulator in its own process (its answers from the control port) or in this one. */
async function emulator(platform: 'youtube' | 'tiktok'): Promise<Emu> {
  if (values.emulator === 'inline') {
    const emu = platform === 'youtube' ? await startYoutubeEmulator({ clock: realClock(), apps }) : await startTiktokEmulator({ clock: realClock(), apps });
    return { urls: emu.urls, apps, ctl: async (m, path, body) => (await ctl(emu, m, path, body)).json, stop: () => emu.stop() };
  }
  const proc = await spawnEmulator([], ['--dcs', '1', '--platforms', platform]);
  const ready = proc as unknown as Record<string, any>;
  return { urls: ready[platform], apps: ready.apps, ctl: (m, path, body) => control(proc.control, m, `/${platform}${path}`, body ?? {}), stop: () => proc.stop() };
}

async function world(platform: 'youtube' | 'tiktok') {
  const emu = await emulator(platform);
  const apps = emu.apps;
  const chunkBytes = platform === 'youtube' ? 8 * MB : 10 * MB;
  const adapter = platform === 'youtube'
    ? youtubeAdapter({ clientId: apps.google.clientId, clientSecret: apps.google.clientSecret, oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api!, uploadUrl: emu.urls.upload!, quota: { unitsPerDay: 1e6, insertUnits: 0, uploadsPerDay: 0 }, chunkBytes, processingPollMs: 10 })
    : tiktokAdapter({ clientKey: apps.tiktok.clientKey, clientSecret: apps.tiktok.clientSecret, oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api!, chunkBytes, statusPollMs: 10, initsPerMinute: 1000 });
  if (platform === 'tiktok') await emu.ctl('POST', '/app', { initsPerMinute: 1000, postsPerDay: 1000 });
  const stack = await startOAuthStack(adapter);
  const drivers: Driver[] = [];
  for (let i = 0; i < Math.max(...levels); i++) {
    const json = await emu.ctl('POST', '/accounts', { username: `bench_${i}` });
    await emu.ctl('POST', '/consent', { account: json.accountId });
    const c = await stack.connections.create('bench', { platform, kind: 'account' });
    await stack.connections.authorizationCallback(platform, await consent(c.login!.authorizeUrl as string, platform));
    await until(async () => (await stack.connections.get('bench', c.id)).status === 'active', 'active');
    drivers.push(stack.supervisor.live('bench', c.id)!.driver);
  }
  return { emu, stack, drivers, chunkBytes };
}

for (const platform of values.platform!.split(',') as Array<'youtube' | 'tiktok'>) {
  const w = await world(platform);
  for (const n of levels) {
    gc();
    const m0 = process.memoryUsage();
    const rss0 = m0.rss;
    const buf0 = m0.arrayBuffers;
    let peak = rss0;
    let bufPeak = buf0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      bufPeak = Math.max(bufPeak, m.arrayBuffers);
    }, 50);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const times = await Promise.all(w.drivers.slice(0, n).map(async (d) => {
      const media = videoOf(sizeMb * MB);
      const msg: OutboundMessage = { id: randomUUID(), owner: 'bench', connectionId: 'x', chat: 'me', text: 'bench clip', silent: false, priority: 'normal', attempts: 1, createdAt: new Date(), media };
      const s = performance.now();
      await d.send(msg);
      return (performance.now() - s) / 1000;
    }));
    const wall = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpu0);
    const growth = (peak - rss0) / MB;
    console.log(`${platform} ${n}×${sizeMb} MB: ${(sizeMb / (times.reduce((a, b) => a + b, 0) / n)).toFixed(1)} MB/s per upload, `
      + `${((n * sizeMb) / wall).toFixed(1)} MB/s total, uploads/min ${(n / wall * 60).toFixed(1)}, RSS +${growth.toFixed(0)} MB peak `
      + `(${(growth / n).toFixed(1)} MB per upload; chunk ${w.chunkBytes / MB} MB), Buffers +${((bufPeak - buf0) / MB / n).toFixed(1)} MB per upload, CPU ${(((cpu.user + cpu.system) / 1000) / (n * sizeMb)).toFixed(1)} ms/MB`);
  }
  await w.stack.close();
  await w.emu.stop();
}
