import { randomBytes } from 'node:crypto';
import { startInstagramEmulator } from '../instagram/index.ts';
import { startThreadsEmulator } from '../threads/index.ts';
import { startTiktokEmulator } from '../tiktok/index.ts';
import { startWhatsAppEmulator } from '../whatsapp/index.ts';
import { startYoutubeEmulator } from '../youtube/index.ts';
import type { EmulatorApps, EmulatorClock, PlatformEmulator, PlatformName, PlatformStarter } from './types.ts';

// The non-Telegram platforms the emulator process can serve: one line per platform. `--platforms` and
// `startEmulator({ platforms })` name them; the ready line announces their addresses and the app
// credentials they accept.

export const platformRegistry: ReadonlyArray<readonly [PlatformName, PlatformStarter]> = [
  ['instagram', startInstagramEmulator],
  ['threads', startThreadsEmulator],
  ['whatsapp', startWhatsAppEmulator],
  ['youtube', startYoutubeEmulator],
  ['tiktok', startTiktokEmulator],
];

/** `--platforms telegram,instagram,…|all` → the registered platforms to start (Telegram is always served). */
export function parsePlatforms(value: string | undefined): PlatformName[] {
  if (value === undefined || value.trim() === '') return [];
  const known = platformRegistry.map(([name]) => name);
  if (value.trim() === 'all') return known;
  const names = value.split(',').map((s) => s.trim()).filter((s) => s && s !== 'telegram');
  for (const n of names) {
    if (!known.includes(n as PlatformName)) throw new Error(`unknown platform ${n}; known: telegram, ${known.join(', ')}, all`);
  }
  return [...new Set(names as PlatformName[])];
}

/**
 * The app credentials the emulators accept: `given` first, then the daemon's own environment variables
 * (META_APP_ID, META_APP_SECRET, META_VERIFY_TOKEN, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET,
 * TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET), then fresh values (secrets random per start).
 */
export function resolveApps(given: Partial<EmulatorApps> = {}, env: NodeJS.ProcessEnv = process.env): EmulatorApps {
  const secret = () => randomBytes(16).toString('hex');
  return {
    meta: {
      appId: given.meta?.appId ?? env.META_APP_ID ?? '1000000000000001',
      appSecret: given.meta?.appSecret ?? env.META_APP_SECRET ?? secret(),
      verifyToken: given.meta?.verifyToken ?? env.META_VERIFY_TOKEN ?? `verify-${secret().slice(0, 12)}`,
    },
    google: {
      clientId: given.google?.clientId ?? env.GOOGLE_CLIENT_ID ?? '1000000000001-emulator.apps.googleusercontent.com',
      clientSecret: given.google?.clientSecret ?? env.GOOGLE_CLIENT_SECRET ?? `GOCSPX-${secret()}`,
    },
    tiktok: {
      clientKey: given.tiktok?.clientKey ?? env.TIKTOK_CLIENT_KEY ?? 'awemulator0000001',
      clientSecret: given.tiktok?.clientSecret ?? env.TIKTOK_CLIENT_SECRET ?? secret(),
    },
  };
}

/** Starts `names` in registry order; if one fails, the ones already started are stopped. */
export async function startPlatforms(names: readonly PlatformName[], opts: { host: string; clock: EmulatorClock; apps: EmulatorApps; options?: Partial<Record<PlatformName, object>> }): Promise<Map<PlatformName, PlatformEmulator>> {
  for (const n of names) if (!platformRegistry.some(([name]) => name === n)) throw new Error(`platform ${n} is not emulated yet`);
  const started = new Map<PlatformName, PlatformEmulator>();
  try {
    for (const [name, start] of platformRegistry) {
      if (!names.includes(name)) continue;
      started.set(name, await start({ host: opts.host, clock: opts.clock, apps: opts.apps, ...opts.options?.[name] }));
    }
  } catch (err) {
    await Promise.all([...started.values()].map((p) => p.stop()));
    throw err;
  }
  return started;
}

/** The ready line's platform part: `{ instagram: {api, oauth}, …, apps }` (nothing when only Telegram runs). */
export function platformsReady(platforms: ReadonlyMap<PlatformName, PlatformEmulator>, apps: EmulatorApps): Record<string, unknown> {
  if (platforms.size === 0) return {};
  return { ...Object.fromEntries([...platforms].map(([name, p]) => [name, p.urls])), apps };
}

/** The shared clock: `base` (Telegram's, real time by default) plus what `POST /clock` added. */
export function sharedClock(base: { now(): number } = { now: () => Date.now() }): EmulatorClock {
  let offsetMs = 0;
  return {
    now: () => base.now() + offsetMs,
    advance: (s) => {
      if (!Number.isFinite(s) || s < 0) throw new Error('advanceS must be a number >= 0');
      offsetMs += s * 1000;
    },
  };
}
