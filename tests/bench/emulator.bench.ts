// Scale of the Telegram test DC with real GramJS clients: the emulator runs in its own process,
// clients connect with pre-minted sessions (no DH per client: POST /sessions on the control API),
// then N GramJS clients send to distinct chats for a fixed time. GramJS costs ~0.8 ms of CPU per
// call, so on a small machine the clients saturate first. A second phase, with the GramJS clients
// still connected, loads the DC with minimal MTProto clients (support/raw-client.ts, own auth keys):
// each sends `--batch` sendMessage per msg_container, `--pipeline` containers in flight, every one
// decrypted, parsed, deduped, delivered and answered encrypted by the emulator. Each raw sender
// waits PAIR_GAP_MS before it writes to the same chat again, so no flood wait is earned.
// Usage: npm run bench:emulator -- [--clients 1000] [--senders N] [--seconds 10] [--workers 1]
//   [--raw-senders 200] [--batch 16] [--pipeline 1] [--raw-workers 1] [--sinks 512]
// Prints human lines and one JSON line ({"bench":"emulator",...}).
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Api, errors, helpers, type TelegramClient } from 'telegram';
import { UpdateConnectionState } from 'telegram/network/index.js';
import { StringSession } from 'telegram/sessions/index.js';
import { createTelegramClient } from '../../src/platforms/telegram/client-options.ts';
import { RawClient } from '../emulator/support/raw-client.ts';
import { pool, spawnEmulator } from './spawn-emulator.ts';

interface Ready { mtproto: string; botApi: string; control: string; serverKeys: string }
type ToWorker =
  | { type: 'connect'; emu: Ready; sessions: string[] }
  | { type: 'resolve'; usernames: string[] }
  | { type: 'send'; peers: Array<{ userId: string; accessHash: string }>; senders: number; ms: number }
  | { type: 'raw-connect'; emu: Ready; sessions: string[] }
  | { type: 'raw-send'; peers: Array<{ userId: string; accessHash: string }>; ms: number; batch: number; pipeline: number }
  | { type: 'count' }
  | { type: 'stop' };
type FromWorker =
  | { type: 'connected'; ok: number; failed: number; ms: number }
  | { type: 'resolved'; peers: Array<{ userId: string; accessHash: string }> }
  | { type: 'sent'; ok: number; flood: number; failed: number }
  | { type: 'raw-ready'; connected: number; ms: number }
  | { type: 'counted'; connected: number; disconnects: number }
  | { type: 'stopped' };

// Telegram (and the emulator) allow about 1 message per second from one sender into one chat. A raw
// sender rotates over the sink users and never writes to the same one twice within PAIR_GAP_MS: twice
// the limit, so queueing jitter between two sends of a pair can never bring them within 1 s at the DC.
const PAIR_GAP_MS = 2000;
const UPDATE_SHORT_SENT_MESSAGE = Api.UpdateShortSentMessage.CONSTRUCTOR_ID;

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, r) => { timer = setTimeout(() => r(new Error('timeout')), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------- worker: owns a slice of the GramJS clients ----------------

async function worker(): Promise<void> {
  let clients: TelegramClient[] = [];
  let raws: RawClient[] = [];
  let disconnects = 0;
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
          // GramJS reports "disconnected" when a ping goes unanswered for 1 s (PING_WAKE_UP_WARNING_TIMEOUT,
          // a warning: it reconnects only after 3 s) or when the connection is lost.
          client.addEventHandler((u: unknown) => {
            if (u instanceof UpdateConnectionState && u.state !== UpdateConnectionState.connected) disconnects++;
          });
        } catch {
          failed++;
          void client.destroy().catch(() => undefined);
        }
      });
      clients = connectedClients;
      send({ type: 'connected', ok: clients.length, failed, ms: performance.now() - started });
    } else if (msg.type === 'count') {
      send({ type: 'counted', connected: clients.filter((c) => c.connected).length, disconnects });
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
    } else if (msg.type === 'raw-connect') {
      const [host, port] = [msg.emu.mtproto.split(':')[0]!, Number(msg.emu.mtproto.split(':')[1])];
      const started = performance.now();
      await pool(msg.sessions, 200, async (s) => { raws.push(await RawClient.open(s, host, port)); });
      send({ type: 'raw-ready', connected: raws.length, ms: performance.now() - started });
    } else if (msg.type === 'raw-send') {
      send({ type: 'sent', ...(await rawSend(raws, msg)) });
      for (const r of raws) r.close();
      raws = [];
    } else if (msg.type === 'stop') {
      await Promise.all(clients.map((c) => withTimeout(c.destroy(), 5000).catch(() => undefined)));
      send({ type: 'stopped' });
      process.exit(0);
    }
  });
}

/**
 * messages.sendMessage#983f9745 flags:0 peer:inputPeerUser message:"bench" random_id:long, serialised
 * by hand once per peer; only random_id changes per call (bytes 36..44).
 */
function sendTemplate(p: { userId: string; accessHash: string }): Buffer {
  const b = Buffer.alloc(44);
  b.writeUInt32LE(Api.messages.SendMessage.CONSTRUCTOR_ID, 0);
  b.writeUInt32LE(0, 4);
  b.writeUInt32LE(Api.InputPeerUser.CONSTRUCTOR_ID, 8);
  b.writeBigInt64LE(BigInt(p.userId), 12);
  b.writeBigInt64LE(BigInt(p.accessHash), 20);
  Buffer.from([5, 98, 101, 110, 99, 104, 0, 0]).copy(b, 28); // TL string "bench"
  return b;
}

async function rawSend(raws: RawClient[], msg: Extract<ToWorker, { type: 'raw-send' }>): Promise<{ ok: number; flood: number; failed: number }> {
  const templates = msg.peers.map(sendTemplate);
  const deadline = performance.now() + msg.ms;
  // One watchdog instead of a timer per call: anything still unanswered 10 s after the end is closed.
  const watchdog = setTimeout(() => raws.forEach((r) => r.close()), msg.ms + 10_000);
  let ok = 0;
  let flood = 0;
  let failed = 0;
  await Promise.all(raws.map(async (raw, i) => {
    // Per sender: when each sink last got a message from it, and the next sink in its rotation.
    const lastAt = new Float64Array(templates.length).fill(-Infinity);
    let k = i % templates.length;
    const lane = async () => {
      while (performance.now() < deadline) {
        const chosen = Array.from({ length: msg.batch }, () => k++ % templates.length);
        // The whole container leaves at once: wait for its most recently used sink, then stamp them all.
        const wait = Math.max(...chosen.map((sink) => lastAt[sink]!)) + PAIR_GAP_MS - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const now = performance.now();
        const bodies = chosen.map((sink) => {
          lastAt[sink] = now;
          const body = Buffer.from(templates[sink]!);
          body.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, 36);
          body.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, 40);
          return body;
        });
        try {
          for (const result of await raw.callBatch(bodies)) {
            const id = result.readUInt32LE(0);
            if (id === UPDATE_SHORT_SENT_MESSAGE) ok++;
            else if (id === Api.RpcError.CONSTRUCTOR_ID && result.includes('FLOOD_WAIT')) flood++;
            else failed++;
          }
        } catch {
          failed += bodies.length;
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: msg.pipeline }, lane));
  }));
  clearTimeout(watchdog);
  return { ok, flood, failed };
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
      seconds: { type: 'string', default: '10' }, workers: { type: 'string', default: '1' },
      'raw-senders': { type: 'string', default: '200' }, batch: { type: 'string', default: '16' }, pipeline: { type: 'string', default: '1' },
      'raw-workers': { type: 'string', default: '1' }, sinks: { type: 'string', default: '512' },
      'idle-seconds': { type: 'string', default: '9' },
    },
  });
  const clients = Number(values.clients);
  const senders = Math.min(clients, Number(values.senders ?? clients));
  const seconds = Number(values.seconds);
  const workerCount = Math.max(1, Number(values.workers));
  const rawSenders = Number(values['raw-senders']);
  const batch = Math.max(1, Number(values.batch));
  const pipeline = Math.max(1, Number(values.pipeline));
  const rawWorkerCount = rawSenders > 0 ? Math.max(1, Number(values['raw-workers'])) : 0;
  const sinks = Math.max(1, Number(values.sinks));

  // BENCH_EMULATOR_NODE_ARGS="--cpu-prof" profiles the emulator process.
  const extra = process.env.BENCH_EMULATOR_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const spawned = await spawnEmulator(extra);
  const emuProc = spawned.proc;
  const emu: Ready = { mtproto: spawned.mtproto, botApi: spawned.botApi, control: spawned.control, serverKeys: spawned.serverKeys };
  const ctl = async (path: string, body: unknown) => {
    const res = await fetch(`${emu.control}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const emuStats = async () => (await (await fetch(`${emu.control}/stats`)).json()) as {
    connections: number; connectionsAccepted: number; handshakes: number; delivered: number; floodWaitsServed: number;
  };
  // A client's connect() resolves once the kernel completes the TCP handshake, which can be before the
  // emulator has accept()ed the socket: wait until it holds `expected` connections, so that every accept
  // counted from there on is a reconnect.
  const settledStats = async (expected: number) => {
    let s = await emuStats();
    for (const until = performance.now() + 10_000; s.connections < expected && performance.now() < until;) {
      await new Promise((r) => setTimeout(r, 50));
      s = await emuStats();
    }
    return s;
  };

  const setupStart = performance.now();
  const sinkNames = Array.from({ length: sinks }, (_, i) => `bench_sink_${i}`);
  await pool(sinkNames, 32, async (username, i) => { await ctl('/users', { phone: `+1555${String(9_000_000 + i)}`, username }); });
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

  const forkWorker = (name: string) => {
    const w = fork(new URL(import.meta.url).pathname, ['--worker'], {
      execArgv: [...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    w.on('exit', (code) => { if (code !== 0) console.error(`${name} exited with ${code}`); });
    return w;
  };
  // GramJS client processes, and apart from them the raw load generators (so GramJS's ping loops and
  // the generator's tight loop do not stall each other).
  const workers: ChildProcess[] = Array.from({ length: workerCount }, (_, i) => forkWorker(`client worker ${i}`));
  const rawWorkers: ChildProcess[] = Array.from({ length: rawWorkerCount }, (_, i) => forkWorker(`raw worker ${i}`));
  const cpuOf = (ws: ChildProcess[]) => ws.reduce((n, w) => n + procStats(w.pid!).cpuS, 0);
  const ask = async <T extends FromWorker>(w: ChildProcess, msg: ToWorker): Promise<T> => {
    const reply = once(w, 'message') as Promise<[T]>;
    w.send(msg);
    return (await reply)[0];
  };
  const slice = <T>(xs: T[], i: number, n: number) => xs.filter((_, j) => j % n === i);
  const countGramjs = async () => {
    const c = await Promise.all(workers.map((w) => ask<Extract<FromWorker, { type: 'counted' }>>(w, { type: 'count' })));
    return { connected: c.reduce((n, x) => n + x.connected, 0), disconnects: c.reduce((n, x) => n + x.disconnects, 0) };
  };

  const before = procStats(emuProc.pid!);
  const connectStart = performance.now();
  const conn = await Promise.all(workers.map((w, i) => ask<Extract<FromWorker, { type: 'connected' }>>(w, { type: 'connect', emu, sessions: slice(sessions, i, workerCount) })));
  const connectMs = performance.now() - connectStart;
  const connectedOk = conn.reduce((n, c) => n + c.ok, 0);
  const afterConnect = procStats(emuProc.pid!);
  const stats1 = await settledStats(connectedOk);

  // Idle cost of the connected clients: GramJS pings every 9 s (PING_INTERVAL), so one interval shows it.
  const idleS = Number(values['idle-seconds']);
  const idleEmu0 = procStats(emuProc.pid!).cpuS;
  const idleCli0 = cpuOf(workers);
  await new Promise((r) => setTimeout(r, idleS * 1000));
  const idleEmuMsPerS = idleS ? ((procStats(emuProc.pid!).cpuS - idleEmu0) / idleS) * 1000 : 0;
  const idleCliMsPerS = idleS ? ((cpuOf(workers) - idleCli0) / idleS) * 1000 : 0;

  const afterIdle = await countGramjs();
  const { peers } = await ask<Extract<FromWorker, { type: 'resolved' }>>(workers[0]!, { type: 'resolve', usernames: sinkNames });
  const clientCpuBefore = cpuOf(workers);
  const gramjsSend0 = procStats(emuProc.pid!);
  const sendStart = performance.now();
  const sent = await Promise.all(workers.map((w, i) => ask<Extract<FromWorker, { type: 'sent' }>>(w, {
    type: 'send', peers, senders: Math.ceil(senders / workerCount) - (i < senders % workerCount || senders % workerCount === 0 ? 0 : 1), ms: seconds * 1000,
  })));
  const sendS = (performance.now() - sendStart) / 1000;
  const afterSend = procStats(emuProc.pid!);
  const clientCpuS = cpuOf(workers) - clientCpuBefore;
  const stats2 = await emuStats();
  const ok = sent.reduce((n, s) => n + s.ok, 0);
  const flood = sent.reduce((n, s) => n + s.flood, 0);
  const failed = sent.reduce((n, s) => n + s.failed, 0);

  const afterGramjsSend = await countGramjs();

  // Raw phase: the GramJS clients stay connected (idle, pinging) while minimal clients load the DC.
  let raw = { connected: 0, connectMs: 0, ok: 0, flood: 0, failed: 0, seconds: 0, emuCpuS: 0, delivered: 0, floodWaitsServed: 0, genCpuS: 0, emuConnectionsMid: 0, reconnects: 0 };
  if (rawSenders > 0) {
    const ready = await Promise.all(rawWorkers.map((w, i) => ask<Extract<FromWorker, { type: 'raw-ready' }>>(w, { type: 'raw-connect', emu, sessions: slice(rawSessions, i, rawWorkerCount) })));
    const s0 = await settledStats(stats2.connections + ready.reduce((n, x) => n + x.connected, 0));
    const cpu0 = procStats(emuProc.pid!).cpuS;
    const gen0 = cpuOf(rawWorkers);
    const t0 = performance.now();
    const running = Promise.all(rawWorkers.map((w) => ask<Extract<FromWorker, { type: 'sent' }>>(w, { type: 'raw-send', peers, ms: seconds * 1000, batch, pipeline })));
    // Mid-phase: how many connections the DC holds while it is under load (GramJS + raw).
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    const mid = await emuStats();
    const r = await running;
    const t1 = performance.now();
    const s1 = await emuStats();
    raw = {
      connected: ready.reduce((n, x) => n + x.connected, 0), connectMs: Math.round(Math.max(...ready.map((x) => x.ms))),
      ok: r.reduce((n, x) => n + x.ok, 0), flood: r.reduce((n, x) => n + x.flood, 0), failed: r.reduce((n, x) => n + x.failed, 0),
      seconds: (t1 - t0) / 1000, emuCpuS: procStats(emuProc.pid!).cpuS - cpu0, genCpuS: cpuOf(rawWorkers) - gen0,
      delivered: s1.delivered - s0.delivered, floodWaitsServed: s1.floodWaitsServed - s0.floodWaitsServed, emuConnectionsMid: mid.connections,
      // The raw connections are all open before s0: anything accepted after it is a GramJS client reconnecting.
      reconnects: s1.connectionsAccepted - s0.connectionsAccepted,
    };
  }
  const gramjsAfter = await countGramjs();
  const emuPeak = procStats(emuProc.pid!);
  await Promise.all([...workers, ...rawWorkers].map((w) => ask(w, { type: 'stop' })));
  await spawned.stop();

  const emuCpuPerSendUs = ok ? ((afterSend.cpuS - gramjsSend0.cpuS) / ok) * 1e6 : 0;
  const rawPerSec = raw.seconds ? Math.round(raw.delivered / raw.seconds) : 0;
  const rawEmuUs = raw.delivered ? (raw.emuCpuS / raw.delivered) * 1e6 : 0;
  const result = {
    bench: 'emulator', clients, connected: connectedOk, connectFailed: clients - connectedOk, workers: workerCount,
    setupMs: Math.round(setupMs), connectMs: Math.round(connectMs), handshakes: stats1.handshakes, emuConnections: stats1.connections,
    idleEmuCpuMsPerS: Math.round(idleEmuMsPerS), idleClientsCpuMsPerS: Math.round(idleCliMsPerS),
    emuRssMbIdle: Math.round(before.rssMb), emuRssMbConnected: Math.round(afterConnect.rssMb), emuCpuSConnect: +(afterConnect.cpuS - before.cpuS).toFixed(2),
    senders, seconds: +sendS.toFixed(2), sent: ok, sendsPerSec: Math.round(ok / sendS), floodWaits: flood, failed,
    delivered: stats2.delivered, emuCpuSSend: +(afterSend.cpuS - gramjsSend0.cpuS).toFixed(2), emuCpuUsPerSend: +emuCpuPerSendUs.toFixed(1),
    emuRssMbAfterSend: Math.round(afterSend.rssMb),
    clientCpuSSend: +clientCpuS.toFixed(2), clientCpuUsPerSend: ok ? +((clientCpuS / ok) * 1e6).toFixed(1) : 0,
    rawSenders, rawWorkers: rawWorkerCount, batch, pipeline, sinks, rawConnected: raw.connected, rawConnectMs: raw.connectMs,
    rawSeconds: +raw.seconds.toFixed(2), rawSent: raw.ok, rawDelivered: raw.delivered, rawSendsPerSec: rawPerSec,
    rawFloodWaits: raw.flood, rawFloodWaitsServed: raw.floodWaitsServed, rawFailed: raw.failed,
    rawEmuCpuS: +raw.emuCpuS.toFixed(2), rawEmuCpuUsPerSend: +rawEmuUs.toFixed(1), rawEmuCoreShare: raw.seconds ? +(raw.emuCpuS / raw.seconds).toFixed(2) : 0,
    rawEmuCapacityPerCoreSendsPerSec: rawEmuUs ? Math.round(1e6 / rawEmuUs) : 0,
    rawGeneratorCpuUsPerSend: raw.delivered ? +((raw.genCpuS / raw.delivered) * 1e6).toFixed(1) : 0,
    emuConnectionsDuringRaw: raw.emuConnectionsMid, gramjsConnectedAfter: gramjsAfter.connected,
    gramjsSlowPongsIdle: afterIdle.disconnects, gramjsSlowPongsGramjsSend: afterGramjsSend.disconnects - afterIdle.disconnects,
    gramjsSlowPongsRaw: gramjsAfter.disconnects - afterGramjsSend.disconnects,
    gramjsReconnectsGramjsSend: stats2.connectionsAccepted - stats1.connectionsAccepted, gramjsReconnectsRaw: raw.reconnects,
    emuRssMbPeak: Math.round(emuPeak.rssMb), loadAvg: loadavg().map((x) => +x.toFixed(2)),
    // Issue 3's scale goal, in one run: 5000 GramJS clients connected (and still connected after the
    // load) while the DC serves at least 5000 sendMessage/s without a flood wait or a failure.
    goalMet: connectedOk >= 5000 && gramjsAfter.connected >= 5000 && raw.reconnects === 0 && rawPerSec >= 5000 && raw.flood === 0 && raw.failed === 0,
  };
  console.log(`connected ${connectedOk}/${clients} GramJS clients in ${(connectMs / 1000).toFixed(2)} s (setup ${(setupMs / 1000).toFixed(1)} s, ${stats1.handshakes} DH)`);
  console.log(`emulator RSS ${result.emuRssMbConnected} MB connected (idle ${result.emuRssMbIdle} MB), CPU ${result.emuCpuSConnect} s for the connects`);
  console.log(`idle with ${connectedOk} clients: emulator ${result.idleEmuCpuMsPerS} ms CPU/s, GramJS client processes ${result.idleClientsCpuMsPerS} ms CPU/s`);
  console.log(`GramJS sendMessage: ${ok} in ${sendS.toFixed(1)} s by ${senders} clients = ${result.sendsPerSec}/s (flood waits ${flood}, failed ${failed}); emulator CPU ${result.emuCpuSSend} s = ${result.emuCpuUsPerSend} µs/send; GramJS CPU ${result.clientCpuUsPerSend} µs/send`);
  if (rawSenders > 0) {
    console.log(`raw MTProto senders: ${raw.connected} connections (+${connectedOk} GramJS; the DC held ${raw.emuConnectionsMid} mid-phase), ${batch} sendMessage per container, ${pipeline} containers in flight each`);
    console.log(`served: ${raw.delivered} sendMessage delivered in ${raw.seconds.toFixed(1)} s = ${rawPerSec}/s (answered ok ${raw.ok}, flood waits ${raw.flood}, failed ${raw.failed})`);
    console.log(`emulator under that load: CPU ${result.rawEmuCpuS} s = ${result.rawEmuCoreShare} core, ${result.rawEmuCpuUsPerSend} µs/send (≈${result.rawEmuCapacityPerCoreSendsPerSec}/s per core); RSS ${result.emuRssMbPeak} MB; generator ${result.rawGeneratorCpuUsPerSend} µs/send`);
  }
  console.log(`GramJS clients after the send phases: ${gramjsAfter.connected}/${connectedOk} connected; reconnects ${result.gramjsReconnectsGramjsSend} in the GramJS phase, ${raw.reconnects} in the raw phase; pongs later than 1 s ("disconnected" warnings): ${result.gramjsSlowPongsIdle} idle, ${result.gramjsSlowPongsGramjsSend} GramJS phase, ${result.gramjsSlowPongsRaw} raw phase`);
  if (rawSenders > 0) {
    console.log(`goal (5000 GramJS clients connected throughout, ≥ 5000 sendMessage/s served, no flood wait): ${result.goalMet ? 'met' : 'NOT met'} — ${connectedOk} connected, ${gramjsAfter.connected} after, ${raw.reconnects} reconnects, ${rawPerSec}/s, ${raw.flood} flood waits, ${raw.failed} failed`);
  }
  console.log(`host load average ${result.loadAvg.join(' ')} (2 cores shared)`);
  console.log(JSON.stringify(result));
}

if (process.argv.includes('--worker')) await worker();
else await coordinator();
