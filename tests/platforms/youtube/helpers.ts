import { realClock, type EmulatorClock, type PlatformEmulator } from '../../emulator/platforms/types.ts';
import { ctl } from '../../emulator/support/platform-client.ts';
import { startYoutubeEmulator } from '../../emulator/youtube/index.ts';
import { youtubeAdapter, type YoutubeOptions } from '../../../src/platforms/youtube/index.ts';
import { apps, consent, startOAuthStack, type OAuthStack } from '../oauth-stack.ts';
import { until } from '../../helpers/stack.ts';

export interface YoutubeWorld { emu: PlatformEmulator; clock: EmulatorClock; stack: OAuthStack; close(): Promise<void> }

export async function startYoutubeWorld(opts: Partial<YoutubeOptions> = {}): Promise<YoutubeWorld> {
  const clock = realClock();
  const emu = await startYoutubeEmulator({ clock, apps });
  const stack = await startOAuthStack(youtubeAdapter({
    clientId: apps.google.clientId, clientSecret: apps.google.clientSecret,
    oauthUrl: emu.urls.oauth!, apiUrl: emu.urls.api!, uploadUrl: emu.urls.upload!,
    quota: { unitsPerDay: 10_000, insertUnits: 0, uploadsPerDay: 100 },
    chunkBytes: 1024 * 1024, processingPollMs: 10, processingMaxMs: 5000, timeoutMs: 5000, now: () => clock.now(),
    ...opts,
  }));
  return { emu, clock, stack, async close() { await stack.close(); await emu.stop(); } };
}

/** A connected channel: create → consent as a new channel → callback → active. */
export async function connectChannel(w: YoutubeWorld, owner: string, username: string): Promise<{ id: string; channelId: string }> {
  const { json } = await ctl(w.emu, 'POST', '/accounts', { username });
  await ctl(w.emu, 'POST', '/consent', { account: json.accountId });
  const c = await w.stack.connections.create(owner, { platform: 'youtube', kind: 'account' });
  const q = await consent(c.login!.authorizeUrl as string, 'youtube');
  await w.stack.connections.authorizationCallback('youtube', q);
  await until(async () => (await w.stack.connections.get(owner, c.id)).status === 'active', 'active');
  return { id: c.id, channelId: json.accountId };
}
