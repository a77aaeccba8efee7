// Scale of the Telegram test DC with real GramJS clients: the emulator runs in its own process,
// clients connect with pre-minted sessions (no DH per client: POST /sessions on the control API),
// then N GramJS clients send to distinct chats for a fixed time. GramJS costs ~0.8 ms of CPU per
// call, so on a small machine the clients saturate first; a second run with minimal MTProto
// clients (support/raw-client.ts, own auth keys) measures what the DC itself serves.
// Usage: npm run bench:emulator -- [--clients 1000] [--senders N] [--seconds 10] [--workers 1] [--raw-senders N]
// Prints human lines and one JSON line ({"bench":"emulator",...}).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Api, errors, helpers, type TelegramClient } from 'telegram';
import { StringSession } from 'telegram/sessions/index.js';
import { createTelegramClient } from '../../src/platforms/telegram/client-options.ts';
import { RawClient } from '../emulator/support/raw-client.ts';

interface Ready { mtproto: string; botApi: string; control: string; serverKeys: string }
type ToWorker =
  | { type: 'connect'; emu: Ready; sessions: string[] }
  | { type: 'resolve'; usernames: string[] }
  | { type: 'send'; peers: Array<{ userId: string; accessHash: string }>; senders: number; ms: number }
  | { type: 'raw'; emu: Ready; sessions: string[]; peers: Array<{ userId: string; accessHash: string }>; ms: number }
  | { type: 'stop' };
type FromWorker =
  | { type: 'connected'; ok: number; failed: number; ms: number }
  | { type: 'resolved'; peers: Array<{ userId: string; accessHash: string }> }
  | { type: 'sent'; ok: number; flood: number; failed: number; connectMs?: number; connected?: number }
  | { type: 'stopped' };

const SINKS = 32; // receiving users: each sender rotates over them, staying under 1 msg/s per chat

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, r) => { timer = setTimeout(() => r(new Error('timeout')), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

// ---------------- worker: owns a slice of the GramJS clients ----------------

async function worker(): Promise<void> {
  let clients: TelegramClient[] = [];
  const send = (m: FromWorker) => process.send!(m);
  process.on('message', async (msg: ToWorker) => {
    if (msg.type === 'connect') {
      const pem = readFileSync(msg.emu.serverKeys, 'utf8');
      let failed = 0;
      const started = performance.now();
      const connectedClients: TelegramClient[] = [];
      await pool(msg.sessions, 100, async (s) => {
        const client = createTelegramClient(new StringSession(s), { apiId: 1, apiHash: 'bench', dc: msg.emu.mtproto, serverKeysPem: pem, connectionRetries: 1 });
        try {
          await withTimeout(client.connect(), 30_000);
          connectedClients.push(client);
        } catch {
          failed++;
          void client.destroy().catch(() => undefined);
        }
      });
      clients = connectedClients;
      send({ type: 'connected', ok: clients.length, failed, ms: performance.now() - started });
    } else if (msg.type === 'resolve') {
      const peers = [];
      for (const username of msg.usernames) {
        const r = (await withTimeout(clients[0]!.invoke(new Api.contacts.ResolveUsername({ username })), 10_000)) as Api.contacts.ResolvedPeer;
        const u = r.users[0] as Api.User;
        peers.push({ userId: u.id.toString(), accessHash: u.accessHash!.toString() });
      }
      send({ type: 'resolved', peers });
    } else if (msg.type === 'send') {
      const peers = msg.peers.map((p) => new Api.InputPeerUser({ userId: helpers.returnBigInt(p.userId), accessHash: helpers.returnBigInt(p.accessHash) }));
      const deadline = performance.now() + msg.ms;
      let ok = 0;
      let flood = 0;
      let failed = 0;
      await Promise.all(clients.slice(0, msg.senders).map(async (client, i) => {
        for (let k = i; performance.now() < deadline; k++) {
          try {
            await withTimeout(client.invoke(new Api.messages.SendMessage({ peer: peers[k % peers.length]!, message: `bench ${k}`, randomId: helpers.generateRandomLong() })), 10_000);
            ok++;
          } catch (err) {
            if (err instanceof errors.FloodWaitError) flood++;
            else failed++;
          }
        }
      }));
      send({ type: 'sent', ok, flood, failed });
    } else if (msg.type === 'raw') {
      const [host, port] = [msg.emu.mtproto.split(':')[0]!, Number(msg.emu.mtproto.split(':')[1])];
      const started = performance.now();
      const raws: RawClient[] = [];
      await pool(msg.sessions, 200, async (s) => { raws.push(await RawClient.open(s, host, port)); });
      const connectMs = performance.now() - started;
      // messages.sendMessage#983f9745 flags:0 peer:inputPeerUser message:"bench" random_id:long, serialised by
      // hand once per peer; only random_id changes per call.
      const templates = msg.peers.map((p) => {
        const b = Buffer.alloc(4 + 4 + 4 + 16 + 8 + 8);
        b.writeUInt32LE(Api.messages.SendMessage.CONSTRUCTOR_ID, 0);
        b.writeUInt32LE(0, 4);
        b.writeUInt32LE(Api.InputPeerUser.CONSTRUCTOR_ID, 8);
        b.writeBigInt64LE(BigInt(p.userId), 12);
        b.writeBigInt64LE(BigInt(p.accessHash), 20);
        Buffer.from([5, 98, 101, 110, 99, 104, 0, 0]).copy(b, 28); // TL string "bench"
        return b;
      });
      const deadline = performance.now() + msg.ms;
      // One watchdog instead of a timer per call: anything still unanswered 10 s after the end is closed.
      const watchdog = setTimeout(() => raws.forEach((r) => r.close()), msg.ms + 10_000);
      let ok = 0;
      let flood = 0;
      let failed = 0;
      await Promise.all(raws.map(async (raw, i) => {
        for (let k = i; performance.now() < deadline; k++) {
          const body = Buffer.from(templates[k % templates.length]!);
          body.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, 36);
          body.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, 40);
          try {
            const result = await raw.call(body);
            if (result.readUInt32LE(0) !== Api.RpcError.CONSTRUCTOR_ID) ok++;
            else if (result.includes('FLOOD_WAIT')) flood++;
            else failed++;
          } catch {
            failed++;
          }
        }
      }));
      clearTimeout(watchdog);
      for (const r of raws) r.close();
      send({ type: 'sent', ok, flood, failed, connectMs, connected: raws.length });
    } else if (msg.type === 'stop') {
      await Promise.all(clients.map((c) => withTimeout(c.destroy(), 5000).catch(() => undefined)));
      send({ type: 'stopped' });
      process.exit(0);
    }
  });
}

// ---------------- coordinator ----------------

function procStats(pid: number): { rssMb: number; cpuS: number } {
  try {
    return readProc(pid);
  } catch {
    return { rssMb: 0, cpuS: 0 }; // the process is gone (its exit is reported separately)
  }
}

function readProc(pid: number): { rssMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  // /proc/<pid>/stat fields 14 and 15: user and system time in clock ticks (100 per second on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { rssMb: rssKb / 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
}

async function coordinator(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '1000' }, senders: { type: 'string' },
      seconds: { type: 'string', default: '10' }, workers: { type: 'string', default: '1' }, 'raw-senders': { type: 'string' },
      'idle-seconds': { type: 'string', default: '9' },
    },
  });
  const clients = Number(values.clients);
  const senders = Math.min(clients, Number(values.senders ?? clients));
  const seconds = Number(values.seconds);
  const workerCount = Math.max(1, Number(values.workers));
  const rawSenders = Number(values['raw-senders'] ?? clients);

  // BENCH_EMULATOR_NODE_ARGS="--cpu-prof" profiles the emulator process.
  const extra = process.env.BENCH_EMULATOR_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const emuProc = spawn(process.execPath, [...extra, '--import', 'tsx', 'tests/emulator/main.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: emuProc.stdout! }), 'line')) as [string];
  const emu = JSON.parse(line) as Ready;
  const ctl = async (path: string, body: unknown) => {
    const res = await fetch(`${emu.control}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };

  const setupStart = performance.now();
  const sinkNames = Array.from({ length: SINKS }, (_, i) => `bench_sink_${i}`);
  for (const [i, username] of sinkNames.entries()) await ctl('/users', { phone: `+1555${String(9_000_000 + i)}`, username });
  const sessions: string[] = new Array(clients);
  await pool(Array.from({ length: clients }, (_, i) => i), 32, async (i) => {
    const phone = `+1555${String(1_000_000 + i)}`;
    await ctl('/users', { phone });
    sessions[i] = String((await ctl('/sessions', { phone })).session);
  });
  const rawSessions: string[] = new Array(rawSenders);
  await pool(Array.from({ length: rawSenders }, (_, i) => i), 32, async (i) => {
    const phone = `+1556${String(1_000_000 + i)}`;
    await ctl('/users', { phone });
    rawSessions[i] = String((await ctl('/sessions', { phone })).session);
  });
  const setupMs = performance.now() - setupStart;

  const workers: ChildProcess[] = Array.from({ length: workerCount }, () =>
    fork(new URL(import.meta.url).pathname, ['--worker'], {
      execArgv: [...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }));
  for (const [i, w] of workers.entries()) w.on('exit', (code) => { if (code !== 0) console.error(`client worker ${i} exited with ${code}`); });
  const workersCpu = () => workers.reduce((n, w) => n + procStats(w.pid!).cpuS, 0);
  const ask = async <T extends FromWorker>(w: ChildProcess, msg: ToWorker): Promise<T> => {
    const reply = once(w, 'message') as Promise<[T]>;
    w.send(msg);
    return (await reply)[0];
  };
  const slice = <T>(xs: T[], i: number) => xs.filter((_, j) => j % workerCount === i);

  const before = procStats(emuProc.pid!);
  const connectStart = performance.now();
  const conn = await Promise.all(workers.map((w, i) => ask<Extract<FromWorker, { type: 'connected' }>>(w, { type: 'connect', emu, sessions: slice(sessions, i) })));
  const connectMs = performance.now() - connectStart;
  const connectedOk = conn.reduce((n, c) => n + c.ok, 0);
  const afterConnect = procStats(emuProc.pid!);
  const stats1 = (await (await fetch(`${emu.control}/stats`)).json()) as { connections: number; handshakes: number; delivered: number };

  // Idle cost of the connected clients: GramJS pings every 9 s (PING_INTERVAL), so one interval shows it.
  const idleS = Number(values['idle-seconds']);
  const idleEmu0 = procStats(emuProc.pid!).cpuS;
  const idleCli0 = workersCpu();
  await new Promise((r) => setTimeout(r, idleS * 1000));
  const idleEmuMsPerS = idleS ? ((procStats(emuProc.pid!).cpuS - idleEmu0) / idleS) * 1000 : 0;
  const idleCliMsPerS = idleS ? ((workersCpu() - idleCli0) / idleS) * 1000 : 0;

  const { peers } = await ask<Extract<FromWorker, { type: 'resolved' }>>(workers[0]!, { type: 'resolve', usernames: sinkNames });
  const clientCpuBefore = workersCpu();
  const sendStart = performance.now();
  const sent = await Promise.all(workers.map((w, i) => ask<Extract<FromWorker, { type: 'sent' }>>(w, {
    type: 'send', peers, senders: Math.ceil(senders / workerCount) - (i < senders % workerCount || senders % workerCount === 0 ? 0 : 1), ms: seconds * 1000,
  })));
  const sendS = (performance.now() - sendStart) / 1000;
  const afterSend = procStats(emuProc.pid!);
  const clientCpuS = workersCpu() - clientCpuBefore;
  const stats2 = (await (await fetch(`${emu.control}/stats`)).json()) as { delivered: number; floodWaitsServed: number };
  const ok = sent.reduce((n, s) => n + s.ok, 0);
  const flood = sent.reduce((n, s) => n + s.flood, 0);
  const failed = sent.reduce((n, s) => n + s.failed, 0);

  // Raw phase: the GramJS clients stay connected (idle, pinging) while minimal clients load the DC.
  let raw = { connected: 0, connectMs: 0, ok: 0, flood: 0, failed: 0, seconds: 0, emuCpuS: 0 };
  if (rawSenders > 0) {
    const cpu0 = procStats(emuProc.pid!).cpuS;
    const t0 = performance.now();
    const r = await Promise.all(workers.map((w, i) => ask<Extract<FromWorker, { type: 'sent' }>>(w, { type: 'raw', emu, sessions: slice(rawSessions, i), peers, ms: seconds * 1000 })));
    const connectMs = Math.max(...r.map((x) => x.connectMs ?? 0));
    raw = {
      connected: r.reduce((n, x) => n + (x.connected ?? 0), 0), connectMs: Math.round(connectMs),
      ok: r.reduce((n, x) => n + x.ok, 0), flood: r.reduce((n, x) => n + x.flood, 0), failed: r.reduce((n, x) => n + x.failed, 0),
      seconds: (performance.now() - t0 - connectMs) / 1000, emuCpuS: procStats(emuProc.pid!).cpuS - cpu0,
    };
  }
  const emuPeak = procStats(emuProc.pid!);
  await Promise.all(workers.map((w) => ask(w, { type: 'stop' })));
  emuProc.kill('SIGTERM');
  await once(emuProc, 'exit');

  const emuCpuPerSendUs = ok ? ((afterSend.cpuS - afterConnect.cpuS) / ok) * 1e6 : 0;
  const result = {
    bench: 'emulator', clients, connected: connectedOk, connectFailed: clients - connectedOk, workers: workerCount,
    setupMs: Math.round(setupMs), connectMs: Math.round(connectMs), handshakes: stats1.handshakes, emuConnections: stats1.connections,
    idleEmuCpuMsPerS: Math.round(idleEmuMsPerS), idleClientsCpuMsPerS: Math.round(idleCliMsPerS),
    emuRssMbIdle: Math.round(before.rssMb), emuRssMbConnected: Math.round(afterConnect.rssMb), emuCpuSConnect: +(afterConnect.cpuS - before.cpuS).toFixed(2),
    senders, seconds: +sendS.toFixed(2), sent: ok, sendsPerSec: Math.round(ok / sendS), floodWaits: flood, failed,
    delivered: stats2.delivered, emuCpuSSend: +(afterSend.cpuS - afterConnect.cpuS).toFixed(2), emuCpuUsPerSend: +emuCpuPerSendUs.toFixed(1),
    emuCapacityPerCoreSendsPerSec: emuCpuPerSendUs ? Math.round(1e6 / emuCpuPerSendUs) : 0, emuRssMbAfterSend: Math.round(afterSend.rssMb),
    clientCpuSSend: +clientCpuS.toFixed(2), clientCpuUsPerSend: ok ? +((clientCpuS / ok) * 1e6).toFixed(1) : 0,
    rawSenders, rawConnected: raw.connected, rawConnectMs: raw.connectMs, rawSent: raw.ok, rawSendsPerSec: raw.seconds ? Math.round(raw.ok / raw.seconds) : 0,
    rawFloodWaits: raw.flood, rawFailed: raw.failed, rawEmuCpuS: +raw.emuCpuS.toFixed(2), emuRssMbPeak: Math.round(emuPeak.rssMb),
  };
  console.log(`connected ${connectedOk}/${clients} GramJS clients in ${(connectMs / 1000).toFixed(2)} s (setup ${(setupMs / 1000).toFixed(1)} s, ${stats1.handshakes} DH)`);
  console.log(`emulator RSS ${result.emuRssMbConnected} MB connected (idle ${result.emuRssMbIdle} MB), CPU ${result.emuCpuSConnect} s for the connects`);
  console.log(`idle with ${connectedOk} clients: emulator ${result.idleEmuCpuMsPerS} ms CPU/s, GramJS client processes ${result.idleClientsCpuMsPerS} ms CPU/s`);
  console.log(`sendMessage: ${ok} in ${sendS.toFixed(1)} s by ${senders} clients = ${result.sendsPerSec}/s (flood waits ${flood}, failed ${failed}); emulator CPU ${result.emuCpuSSend} s = ${result.emuCpuUsPerSend} µs/send (≈${result.emuCapacityPerCoreSendsPerSec}/s per core)`);
  console.log(`GramJS clients: CPU ${result.clientCpuSSend} s = ${result.clientCpuUsPerSend} µs/send on the client side`);
  if (rawSenders > 0) {
    console.log(`raw MTProto clients (not GramJS): ${raw.connected} more connections in ${(raw.connectMs / 1000).toFixed(2)} s, ${raw.ok} sendMessage in ${raw.seconds.toFixed(1)} s = ${result.rawSendsPerSec}/s served (flood waits ${raw.flood}, failed ${raw.failed}); emulator CPU ${result.rawEmuCpuS} s, RSS ${result.emuRssMbPeak} MB with ${connectedOk + raw.connected} connections`);
  }
  console.log(JSON.stringify(result));
}

if (process.argv.includes('--worker')) await worker();
else await coordinator();
