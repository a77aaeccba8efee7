import { Api } from 'telegram';
import type { Method } from './context.ts';

// help.getConfig: one DC (id 2) at the emulator's own address. Values are Telegram's defaults where
// a client reads them (message length 4096, caption 1024, chat sizes).

const THIS_DC = 2;

// Every GramJS connect asks for the config (InvokeWithLayer(InitConnection(GetConfig))): the ~400-byte
// answer is serialised once a minute per DC address, not on each of thousands of connects.
const CONFIG_TTL_S = 60;
let cached: { key: string; bytes: Buffer } | undefined;

const getConfig: Method = (ctx) => {
  const now = Math.floor(Date.now() / 1000);
  const key = `${ctx.dc.host}:${ctx.dc.port}:${Math.floor(now / CONFIG_TTL_S)}`;
  if (cached?.key !== key) cached = { key, bytes: buildConfig(ctx.dc, now).getBytes() };
  return cached.bytes;
};

function buildConfig(dc: { host: string; port: number }, now: number): Api.Config {
  return new Api.Config({
    date: now, expires: now + CONFIG_TTL_S, testMode: false, thisDc: THIS_DC,
    dcOptions: [new Api.DcOption({ id: THIS_DC, ipAddress: dc.host, port: dc.port })],
    dcTxtDomainName: 'emulator.invalid', chatSizeMax: 200, megagroupSizeMax: 200_000, forwardedCountMax: 100,
    onlineUpdatePeriodMs: 210_000, offlineBlurTimeoutMs: 5000, offlineIdleTimeoutMs: 30_000, onlineCloudTimeoutMs: 300_000,
    notifyCloudDelayMs: 30_000, notifyDefaultDelayMs: 1500, pushChatPeriodMs: 60_000, pushChatLimit: 2,
    editTimeLimit: 172_800, revokeTimeLimit: 2_147_483_647, revokePmTimeLimit: 2_147_483_647, ratingEDecay: 2_419_200,
    stickersRecentLimit: 200, channelsReadMediaPeriod: 604_800, callReceiveTimeoutMs: 20_000, callRingTimeoutMs: 90_000,
    callConnectTimeoutMs: 30_000, callPacketTimeoutMs: 10_000, meUrlPrefix: 'https://t.me/', captionLengthMax: 1024,
    messageLengthMax: 4096, webfileDcId: THIS_DC,
  });
}

const getNearestDc: Method = () => new Api.NearestDc({ country: 'XX', thisDc: THIS_DC, nearestDc: THIS_DC });

export const helpMethods: Record<string, Method> = { 'help.GetConfig': getConfig, 'help.GetNearestDc': getNearestDc };
