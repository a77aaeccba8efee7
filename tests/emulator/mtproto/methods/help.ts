import { Api } from 'telegram';
import type { Method } from './context.ts';

// help.getConfig: every DC the emulator serves, each at its own address, and which one answered
// (this_dc). A client follows *_MIGRATE_X by looking DC X up here (GramJS's getDC reads dc_options).
// Values are Telegram's defaults where a client reads them (message length 4096, caption 1024, chat sizes).

// Every GramJS connect asks for the config (InvokeWithLayer(InitConnection(GetConfig))): the ~500-byte
// answer is serialised once a minute per DC, not on each of thousands of connects.
const CONFIG_TTL_S = 60;
const cached = new Map<number, { key: string; bytes: Buffer }>();

const getConfig: Method = (ctx) => {
  const now = Math.floor(Date.now() / 1000);
  const dcs = [...ctx.world.dcAddresses].sort(([a], [b]) => a - b);
  const key = `${dcs.map(([id, a]) => `${id}=${a.host}:${a.port}`).join(',')}:${Math.floor(now / CONFIG_TTL_S)}`;
  let entry = cached.get(ctx.dc.id);
  if (entry?.key !== key) cached.set(ctx.dc.id, (entry = { key, bytes: buildConfig(ctx.dc.id, dcs, now).getBytes() }));
  return entry.bytes;
};

function buildConfig(thisDc: number, dcs: Array<[number, { host: string; port: number }]>, now: number): Api.Config {
  return new Api.Config({
    date: now, expires: now + CONFIG_TTL_S, testMode: false, thisDc,
    dcOptions: dcs.map(([id, a]) => new Api.DcOption({ id, ipAddress: a.host, port: a.port })),
    dcTxtDomainName: 'emulator.invalid', chatSizeMax: 200, megagroupSizeMax: 200_000, forwardedCountMax: 100,
    onlineUpdatePeriodMs: 210_000, offlineBlurTimeoutMs: 5000, offlineIdleTimeoutMs: 30_000, onlineCloudTimeoutMs: 300_000,
    notifyCloudDelayMs: 30_000, notifyDefaultDelayMs: 1500, pushChatPeriodMs: 60_000, pushChatLimit: 2,
    editTimeLimit: 172_800, revokeTimeLimit: 2_147_483_647, revokePmTimeLimit: 2_147_483_647, ratingEDecay: 2_419_200,
    stickersRecentLimit: 200, channelsReadMediaPeriod: 604_800, callReceiveTimeoutMs: 20_000, callRingTimeoutMs: 90_000,
    callConnectTimeoutMs: 30_000, callPacketTimeoutMs: 10_000, meUrlPrefix: 'https://t.me/', captionLengthMax: 1024,
    messageLengthMax: 4096, webfileDcId: 1,
  });
}

const getNearestDc: Method = (ctx) => new Api.NearestDc({ country: 'XX', thisDc: ctx.dc.id, nearestDc: ctx.dc.id });

export const helpMethods: Record<string, Method> = { 'help.GetConfig': getConfig, 'help.GetNearestDc': getNearestDc };
