// The HTTP client of bench:send, in a worker thread so that its own cost (HTTP, JSON, gunzip: about
// a third of a core at 100,000/min) does not run on the daemon's event loop it is measuring.
// Posts per-owner batches every 100 ms at the target rate and reports what was accepted. With
// wsSubscribers it first opens that many live-event WebSockets (GET /v1/events, one per owner from the
// first), as a client watching its messages would; they stay open until the parent says 'stop' (after
// every message is final) and the answer to it is how many frames they received.
import { parentPort, workerData } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { WebSocket } from 'ws';

export interface DriverInput {
  url: string;
  tokens: string[];
  targets: { owner: number; connectionId: string; chat: string }[];
  rate: number; // messages per second
  total: number;
  prefix: string;
  /** --media: upload ids per owner; every message then carries one of its owner's files as a document. */
  uploads?: string[][];
  wsSubscribers?: number;
}

export interface DriverResult {
  accepted: [string, string][]; // message id, text
  refusals: [string, number][];
  firstError: string;
  acceptMs: number[];
  driveS: number;
}

const { url, tokens, targets, rate, total, prefix, uploads, wsSubscribers = 0 } = workerData as DriverInput;
let wsFrames = 0;
const sockets = await Promise.all(tokens.slice(0, wsSubscribers).map((token) => new Promise<WebSocket>((resolve, reject) => {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/events`, { headers: { authorization: `Bearer ${token}` } });
  ws.once('open', () => resolve(ws));
  ws.once('error', reject);
  ws.on('message', () => { wsFrames++; });
})));
const accepted: [string, string][] = [];
const refusals = new Map<string, number>();
let firstError = '';
const acceptMs: number[] = [];
const refuse = (reason: string, n: number) => refusals.set(reason, (refusals.get(reason) ?? 0) + n);

// A client's connection pool, as a product's backend would keep: at most 256 sockets to the daemon,
// further requests wait for one. Without a bound an overloaded daemon made the driver open sockets
// until the process (daemon and driver share it) ran out of file descriptors (EMFILE at 20,000).
const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000 });
const post = async (owner: number, messages: unknown[]) => {
  const t0 = performance.now();
  try {
    const res = await request(`${url}/v1/messages/batch`, {
      method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${tokens[owner]}`, 'content-type': 'application/json', 'accept-encoding': 'gzip' }, body: JSON.stringify({ messages }),
    });
    // As fetch did before: gzip accepted, so the daemon compresses the larger answers as it would for a browser.
    const raw = Buffer.from(await res.body.arrayBuffer());
    const body = JSON.parse((res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString()) as { items?: { id: string; text: string }[] };
    if (res.statusCode !== 202 || !body.items) {
      refuse(`HTTP ${res.statusCode}`, messages.length);
      firstError ||= `${res.statusCode} ${JSON.stringify(body).slice(0, 200)}`;
      return;
    }
    acceptMs.push(performance.now() - t0);
    for (const m of body.items) accepted.push([m.id, m.text]);
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    const code = e.cause?.code ?? e.code;
    refuse(`${(err as Error).message}${code ? ` (${code})` : ''}`, messages.length);
    firstError ||= (err as Error).message;
  }
};

const inflight = new Set<Promise<void>>();
const started = performance.now();
let next = 0;
while (next < total) {
  const elapsed = (performance.now() - started) / 1000;
  const due = Math.min(total, Math.floor(elapsed * rate) + 1);
  const byOwner = new Map<number, { connectionId: string; chat: string; text: string; media?: { type: 'document'; uploadId: string } }[]>();
  for (; next < due; next++) {
    const t = targets[next % targets.length]!;
    const list = byOwner.get(t.owner) ?? byOwner.set(t.owner, []).get(t.owner)!;
    const files = uploads?.[t.owner];
    list.push({ connectionId: t.connectionId, chat: t.chat, text: `${prefix}${next}`, ...(files?.length ? { media: { type: 'document' as const, uploadId: files[next % files.length]! } } : {}) });
  }
  for (const [owner, list] of byOwner) {
    for (let i = 0; i < list.length; i += 500) {
      const p = post(owner, list.slice(i, i + 500)).finally(() => inflight.delete(p));
      inflight.add(p);
    }
  }
  await new Promise((r) => setTimeout(r, 100));
}
await Promise.all(inflight);
const result: DriverResult = { accepted, refusals: [...refusals], firstError, acceptMs, driveS: (performance.now() - started) / 1000 };
parentPort!.postMessage(result);
parentPort!.once('message', () => {
  for (const ws of sockets) ws.close();
  parentPort!.postMessage({ wsFrames });
});
