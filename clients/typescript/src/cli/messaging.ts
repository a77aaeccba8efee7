import { createReadStream, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { LiveEvent, Media, Message } from '../client.ts';
import type { Context } from './context.ts';

const mediaByExt: Record<string, { type: Media['type']; contentType: string }> = {
  '.jpg': { type: 'photo', contentType: 'image/jpeg' }, '.jpeg': { type: 'photo', contentType: 'image/jpeg' },
  '.png': { type: 'photo', contentType: 'image/png' }, '.webp': { type: 'photo', contentType: 'image/webp' },
  '.gif': { type: 'animation', contentType: 'image/gif' }, '.mp4': { type: 'video', contentType: 'video/mp4' },
  '.mp3': { type: 'audio', contentType: 'audio/mpeg' }, '.ogg': { type: 'voice', contentType: 'audio/ogg' },
  '.pdf': { type: 'document', contentType: 'application/pdf' },
};
const final = (m: Message) => m.status === 'sent' || m.status === 'failed' || (m.status as string) === 'cancelled';

/** Uploads a file (POST /v1/uploads, issue 15) with a progress bar on a terminal. */
async function upload(c: Context, path: string, contentType: string) {
  const size = statSync(path).size;
  const showBar = !c.out.json && process.stderr.isTTY === true;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = showBar ? new SingleBar({ format: `upload ${basename(path)} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr }, Presets.shades_classic) : undefined;
  bar?.start(size, 0);
  try {
    const body = Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
    return await c.client().uploads.create(body, { filename: basename(path), contentType, onProgress: (sent) => bar?.update(Math.min(sent, size)) });
  } finally {
    bar?.stop();
  }
}

/** Resolves with the message once it is sent or failed: from the live events, with a slow poll beside them. */
async function waitFinal(c: Context, id: string, events: { seen: Map<string, Message> }, timeoutMs: number): Promise<Message> {
  const deadline = Date.now() + timeoutMs;
  let polledAt = 0;
  for (;;) {
    const fromEvents = events.seen.get(id);
    if (fromEvents && final(fromEvents)) return fromEvents;
    // A poll every 2 s covers a socket that is down or a server without events for this message.
    if (Date.now() - polledAt > 2000) {
      polledAt = Date.now();
      const m = await c.client().messages.get(id);
      if (final(m)) return m;
    }
    if (Date.now() > deadline) throw new Error(`message ${id} is still not sent after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function sendCommand(program: Command, ctx: () => Context): void {
  program.command('send').description('queue a message (text, or a file with --file)')
    .argument('<connection>').argument('<chat>', '@name, chat id or the id of an added chat').argument('[text...]')
    .option('--file <path>', 'upload a file and send it (POST /v1/uploads); text becomes its caption')
    .option('--media-type <type>', 'photo | document | video | audio | voice | animation (default: from the extension)')
    .option('--parse-mode <mode>', 'html | markdown').option('--silent', 'no notification sound')
    .option('--priority <p>', 'high | normal | low').option('--idempotency-key <key>', 'default: a new random key (retries reuse it)')
    .option('--wait', 'wait until the message is sent or failed (from the live events)')
    .option('--timeout <seconds>', 'with --wait', '60')
    .action(async (connection: string, chat: string, words: string[], o: {
      file?: string; mediaType?: Media['type']; parseMode?: 'html' | 'markdown'; silent?: boolean; priority?: 'high' | 'normal' | 'low';
      idempotencyKey?: string; wait?: boolean; timeout: string;
    }) => {
      const c = ctx();
      const text = words.join(' ');
      if (!text && !o.file) throw new Error('nothing to send: give a text or --file');
      let media: Media | undefined;
      if (o.file) {
        const guess = mediaByExt[extname(o.file).toLowerCase()] ?? { type: 'document' as const, contentType: 'application/octet-stream' };
        const up = await upload(c, o.file, guess.contentType);
        c.out.note(`uploaded ${up.id} (${up.size} bytes, sha256 ${up.sha256.slice(0, 12)}…)`);
        media = { type: o.mediaType ?? guess.type, uploadId: up.id };
      }
      const events = { seen: new Map<string, Message>() };
      const stream = o.wait ? c.client().events({ onEvent: (e) => { if (e.type === 'message.status') events.seen.set((e.data as Message).id, e.data as Message); } }) : undefined;
      // Open before sending, so the `sent` cannot pass before we listen; a refused socket leaves the poll.
      await stream?.start().catch((err: Error) => c.out.note(`live events unavailable (${err.message}); polling instead`));
      try {
        let m = await c.client().messages.send({
          connectionId: connection, chat, ...(text && { text }), ...(media && { media }), ...(o.parseMode && { parseMode: o.parseMode }),
          ...(o.silent && { silent: true }), ...(o.priority && { priority: o.priority }),
        }, { ...(o.idempotencyKey && { idempotencyKey: o.idempotencyKey }) });
        if (o.wait) m = await waitFinal(c, m.id, events, Number(o.timeout) * 1000);
        c.out.result(m, () => `${m.id} ${m.status}${m.error ? ` ${m.error.code}: ${m.error.message}` : ''}`);
        if (m.status === 'failed') process.exitCode = 1;
      } finally {
        stream?.close();
      }
    });
}

const summary = (e: LiveEvent): string => {
  const d = e.data as { id?: string; status?: string; connectionId?: string; text?: string; error?: { code?: string } };
  if (e.type === 'message.received') return `${d.connectionId} ${JSON.stringify(d.text ?? '')}`;
  return [d.id, d.status, d.error?.code].filter(Boolean).join(' ');
};

export function eventsCommand(program: Command, ctx: () => Context): void {
  const cmd = program.command('events').description('live events');
  cmd.command('tail').description('print events as they happen; reconnects and resumes by itself (Ctrl-C stops)')
    .option('--since <id>', 'replay stored events after this id first (needs stored events, issue 15)')
    .option('--type <types>', 'only these event types, comma-separated')
    .option('--count <n>', 'stop after n events')
    .action(async (o: { since?: string; type?: string; count?: string }) => {
      const c = ctx();
      const types = o.type ? new Set(o.type.split(',').map((s) => s.trim())) : undefined;
      const limit = o.count ? Number(o.count) : Infinity;
      let shown = 0;
      const stream = c.client().events({
        ...(o.since && { since: o.since }),
        onState: (state, info) => c.out.status({ state, ...info },
          state === 'open' ? `— listening${info.since ? ` (resumed after ${info.since})` : ''}` : state === 'reconnecting' ? `— reconnecting (attempt ${info.attempt})` : `— ${state}`),
      });
      process.once('SIGINT', () => stream.close());
      try {
        for await (const e of stream) {
          if (types && !types.has(e.type)) continue;
          c.out.result(e, () => `${e.at} ${e.id ? `#${e.id} ` : ''}${e.type} ${summary(e)}`);
          if (++shown >= limit) break;
        }
      } finally {
        stream.close();
      }
    });
}
