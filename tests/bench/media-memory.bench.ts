// What one media send costs the daemon in memory, apart from the rest of bench:send: a stored file
// (Postgres, read as delivery reads it) sent by user accounts (GramJS parts) and by bots (multipart),
// `--concurrency` at a time for `--rounds` rounds, the emulator in its own process. Reports, per send:
// - the bytes of large Buffers (≥ 64 KiB) allocated, counted at Buffer's allocation functions and OpenSSL's cipher output — how many
//   times the file is copied on its way out, independent of when the garbage collector runs;
// - the peak growth of RSS and of the Buffers held (process.memoryUsage) over a collected baseline,
//   per concurrent send;
// - the Buffers a send keeps alive: the rounds again, collected every 50 ms and sampled after each
//   collection (garbage excluded), and what is left once they are done.
// Usage: npm run bench:media-memory -- [--size 1mb] [--concurrency 8] [--rounds 5]
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chunkBytes, readFile, saveFile } from '../../src/media/files.ts';
import type { OutboundMedia } from '../../src/platforms/adapter.ts';
import { AccountClient } from '../../src/platforms/telegram/account-client.ts';
import { BotApi } from '../../src/platforms/telegram/bot-api.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { control, spawnEmulator } from './spawn-emulator.ts';

const { values } = parseArgs({ options: { size: { type: 'string', default: '1mb' }, concurrency: { type: 'string', default: '8' }, rounds: { type: 'string', default: '5' } } });
const m = /^(\d+)(kb|mb)$/i.exec(values.size!);
if (!m) throw new Error('--size like 1mb or 512kb');
const size = Number(m[1]) * (m[2]!.toLowerCase() === 'mb' ? 1024 * 1024 : 1024);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const mb = (n: number) => +(n / 1024 / 1024).toFixed(2);
const log = (line: string) => process.stdout.write(`${line}\n`);

// ---- large Buffer allocations, counted once however Buffer's functions call each other
let counting = false;
let allocated = 0;
let depth = 0;
const LARGE = 64 * 1024;
type Fn = (...args: never[]) => Buffer;
for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'from', 'concat'] as const) {
  const real = Buffer[name] as unknown as Fn;
  (Buffer as unknown as Record<string, Fn>)[name] = function (this: unknown, ...args: never[]) {
    depth++;
    try {
      const out = real.apply(this, args);
      // Buffer.from(arrayBuffer) is a view, not a copy.
      const copy = !(name === 'from' && (args[0] as unknown) instanceof ArrayBuffer);
      if (depth === 1 && counting && copy && out.length >= LARGE) allocated += out.length;
      return out;
    } finally {
      depth--;
    }
  } as Fn;
}

// OpenSSL's cipher output is allocated in C++, not through Buffer's functions: the encryption of an
// account's MTProto message (src/platforms/telegram/lean-packets.ts) is one copy of its file part.
{
  const proto = Object.getPrototypeOf(createCipheriv('aes-256-cbc', Buffer.alloc(32), Buffer.alloc(16))) as { update: Fn };
  const real = proto.update;
  proto.update = function (this: unknown, ...args: never[]) {
    const out = real.apply(this, args);
    if (counting && out.length >= LARGE) allocated += out.length;
    return out;
  } as Fn;
}

const emu = await spawnEmulator();
const db = await createTestDatabase({ max: 10 });
const bytes = randomBytes(size);
const file = await saveFile(db.sql, 'bench', [bytes], { contentType: 'application/octet-stream', filename: 'bench.bin' }, { maxBytes: 64 * 1024 * 1024, retentionHours: 1, deadlineMs: 60_000 });
const media: OutboundMedia = {
  type: 'document', filename: 'bench.bin', contentType: 'application/octet-stream', size, sha256: createHash('sha256').update(bytes).digest('hex'),
  read: () => readFile(db.sql, file.id),
};
const serverKeysPem = readFileSync(emu.serverKeys, 'utf8');
// Telegram paces 1 message a second per chat: every send goes to a channel of its own.
const chatsEach = concurrency * (2 * rounds + 1);
const channel = async (memberId: number, role: 'creator' | 'admin') => {
  const username = `mm${randomBytes(4).toString('hex')}`;
  await control(emu.control, 'POST', '/chats', { type: 'channel', title: username, username, members: [{ id: memberId, role, ...(role === 'admin' ? { rights: { postMessages: true } } : {}) }] });
  return `@${username}`;
};
const accounts: { client: AccountClient; chats: string[] }[] = [];
for (let i = 0; i < Math.min(concurrency, 4); i++) {
  const phone = `+1557${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
  const { userId } = await control<{ userId: number }>(emu.control, 'POST', '/users', { phone, firstName: `Media ${i}` });
  const { session } = await control<{ session: string }>(emu.control, 'POST', '/sessions', { phone });
  const client = await AccountClient.open(session, { apiId: 1, apiHash: 'bench', dc: emu.mtproto, serverKeysPem, callTimeoutMs: 60_000, connectTimeoutMs: 10_000 });
  accounts.push({ client, chats: [] });
  for (let j = 0; j < chatsEach; j++) accounts[i]!.chats.push(await channel(userId, 'creator'));
}
const bots: { api: BotApi; chats: string[] }[] = [];
for (let i = 0; i < Math.min(concurrency, 4); i++) {
  const bot = await control<{ botId: number; token: string }>(emu.control, 'POST', '/bots', { username: `mm${randomBytes(3).toString('hex')}${i}_bot` });
  bots.push({ api: new BotApi({ baseUrl: emu.botApi, token: bot.token, timeoutMs: 60_000 }), chats: [] });
  for (let j = 0; j < chatsEach; j++) bots[i]!.chats.push(await channel(bot.botId, 'admin'));
}
log(`${accounts.length} accounts, ${bots.length} bots ready`);

const randomLong = () => BigInt(`0x${randomBytes(7).toString('hex')}`);
const sendAccount = (i: number) => { const a = accounts[i % accounts.length]!; return a.client.sendMedia(a.chats.pop()!, media, 'bench', randomLong(), randomLong()); };
const sendBot = (i: number) => { const b = bots[i % bots.length]!; return b.api.sendMedia(media, { chat_id: b.chats.pop()!, caption: 'bench' }); };

async function measure(kind: string, send: (i: number) => Promise<unknown>) {
  await Promise.all(Array.from({ length: concurrency }, (_, i) => send(i))); // warm-up: code paths and pools
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const base = process.memoryUsage();
  const peak = { rss: base.rss, buffers: base.arrayBuffers };
  const timer = setInterval(() => { const u = process.memoryUsage(); peak.rss = Math.max(peak.rss, u.rss); peak.buffers = Math.max(peak.buffers, u.arrayBuffers); }, 10);
  allocated = 0;
  counting = true;
  const started = performance.now();
  for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: concurrency }, (_, i) => send(i)));
  const seconds = (performance.now() - started) / 1000;
  counting = false;
  clearInterval(timer);
  const sends = rounds * concurrency;
  // The peaks above include garbage not yet collected. What a send keeps alive: the same rounds again,
  // collecting every 50 ms and sampling right after (slower, so its rate is not reported).
  gc();
  await new Promise((r) => setTimeout(r, 200)); // V8 frees ArrayBuffers' memory after the collection, on another thread
  gc();
  const liveBase = process.memoryUsage().arrayBuffers;
  let livePeak = liveBase;
  const liveTimer = setInterval(() => { gc(); livePeak = Math.max(livePeak, process.memoryUsage().arrayBuffers); }, 50);
  for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: concurrency }, (_, i) => send(i)));
  clearInterval(liveTimer);
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const liveAfter = process.memoryUsage().arrayBuffers;
  const line = {
    kind, sends, concurrency, perMin: Math.round((sends / seconds) * 60),
    largeBuffersPerSendMb: mb(allocated / sends), copiesOfTheFile: +(allocated / sends / size).toFixed(1),
    rssGrowthMb: mb(peak.rss - base.rss), rssPerConcurrentSendMb: mb((peak.rss - base.rss) / concurrency),
    buffersPeakMb: mb(peak.buffers - base.arrayBuffers), buffersPerConcurrentSendMb: mb((peak.buffers - base.arrayBuffers) / concurrency),
    liveBuffersPeakMb: mb(livePeak - liveBase), liveBuffersPerConcurrentSendMb: mb((livePeak - liveBase) / concurrency),
    liveBuffersLeftMb: mb(liveAfter - liveBase),
  };
  log(`${kind}: ${sends} sends of ${mb(size)} MB, ${concurrency} at a time, ${line.perMin}/min; large Buffers allocated ${line.largeBuffersPerSendMb} MB per send (${line.copiesOfTheFile}× the file); `
    + `peak RSS +${line.rssGrowthMb} MB (${line.rssPerConcurrentSendMb} MB per concurrent send), Buffers held +${line.buffersPeakMb} MB (${line.buffersPerConcurrentSendMb} MB per concurrent send); `
    + `live after collection +${line.liveBuffersPeakMb} MB at peak (${line.liveBuffersPerConcurrentSendMb} MB per concurrent send), +${line.liveBuffersLeftMb} MB left after the sends`);
  return line;
}

const results = [await measure('account', sendAccount), await measure('bot', sendBot)];
log(JSON.stringify({ bench: 'media-memory', bytes: size, chunkBytes, results }));
for (const a of accounts) await a.client.destroy();
await emu.stop();
await db.drop();
process.exit(0);
