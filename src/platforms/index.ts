import { readFileSync } from 'node:fs';
import type { Config } from '../config.ts';
import type { OutboundMessage } from './adapter.ts';
import { Platforms } from './registry.ts';
import { telegramAdapter } from './telegram/index.ts';
import { whatsappAdapter } from './whatsapp/index.ts';
import { tiktokAdapter } from './tiktok/index.ts';
import { youtubeAdapter } from './youtube/index.ts';
import { instagramAdapter } from './instagram/index.ts';
import { threadsAdapter } from './threads/index.ts';

/** What the daemon lends adapters: the signed link of a message's stored file (Instagram, Threads and WhatsApp download media). */
export interface PlatformExtras { mediaLink?: (msg: OutboundMessage, item?: number) => Promise<string | undefined> }

// The platforms the daemon speaks: one line per platform (docs/adding-a-platform.md).
export function platformsFromConfig(config: Config, extras: PlatformExtras = {}): Platforms {
  const media = extras.mediaLink ? { mediaLink: extras.mediaLink } : {};
  const verify = config.meta.verifyToken ? { verifyToken: config.meta.verifyToken } : {};
  return new Platforms([
    telegramAdapter({
      account: {
        apiId: config.telegram.apiId ?? 0,
        apiHash: config.telegram.apiHash ?? '',
        ...(config.telegram.dc ? { dc: `${config.telegram.dc.host}:${config.telegram.dc.port}` } : {}),
        ...(config.telegram.serverKeysFile ? { serverKeysPem: readFileSync(config.telegram.serverKeysFile, 'utf8') } : {}),
        // A frozen node's sockets must close before another node takes its shards (config.ts).
        disconnectDelayS: config.cluster.disconnectDelayS,
        heartbeatMs: config.cluster.pingMs,
        // updates.getState once a minute, as before the ping got shorter: 10,000 accounts make ~170 a second.
        stateCheckMs: 60_000,
      },
      bot: { botApiUrl: config.telegram.botApiUrl },
      ...(config.telegram.connectConcurrency ? { maxConcurrentConnects: config.telegram.connectConcurrency } : {}),
      pacing: { chatPerSecond: config.pace.chatPerS, groupPerMinute: config.pace.groupPerMin, botPerSecond: config.pace.botPerS },
    }),
    whatsappAdapter({
      graphUrl: config.meta.graphUrl, graphVersion: config.meta.graphVersion,
      app: { ...(config.meta.appSecret ? { appSecret: config.meta.appSecret } : {}), ...(config.meta.verifyToken ? { verifyToken: config.meta.verifyToken } : {}) },
      ...media,
    }),
    ...(config.youtube.clientId && config.youtube.clientSecret ? [youtubeAdapter({
      clientId: config.youtube.clientId, clientSecret: config.youtube.clientSecret,
      ...(config.youtube.oauthUrl ? { oauthUrl: config.youtube.oauthUrl } : {}), apiUrl: config.youtube.apiUrl, uploadUrl: config.youtube.uploadUrl,
      quota: { unitsPerDay: config.youtube.unitsPerDay, insertUnits: config.youtube.insertUnits, uploadsPerDay: config.youtube.uploadsPerDay },
      chunkBytes: config.youtube.chunkMb * 1024 * 1024,
    })] : []),
    ...(config.tiktok.clientKey && config.tiktok.clientSecret ? [tiktokAdapter({
      clientKey: config.tiktok.clientKey, clientSecret: config.tiktok.clientSecret, oauthUrl: config.tiktok.oauthUrl, apiUrl: config.tiktok.apiUrl,
      chunkBytes: config.tiktok.chunkMb * 1024 * 1024, privacy: config.tiktok.privacy,
    })] : []),
    ...(config.meta.appId && config.meta.appSecret ? [
      instagramAdapter({ appId: config.meta.appId, appSecret: config.meta.appSecret, ...verify, apiUrl: config.instagram.apiUrl, ...media, ...(config.instagram.oauthUrl ? { oauthUrl: config.instagram.oauthUrl } : {}) }),
      threadsAdapter({ appId: config.meta.appId, appSecret: config.meta.appSecret, ...verify, apiUrl: config.threads.apiUrl, ...media, ...(config.threads.oauthUrl ? { oauthUrl: config.threads.oauthUrl } : {}) }),
    ] : []),
  ]);
}

export { Platforms };
