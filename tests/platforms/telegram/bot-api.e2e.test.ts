// The Bot API client against the emulator over real HTTP: which failures leave a send's outcome
// unknown. A sendMessage whose answer never came may have been posted (the emulator posts, then
// holds the answer: the `latency` fault), so it carries outcomeUnknown and the delivery layer
// does not resend it; a refused connection, or one closed before any answer, may be retried.
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../../src/errors.ts';
import type { OutboundMedia } from '../../../src/platforms/adapter.ts';
import { BotApi } from '../../../src/platforms/telegram/bot-api.ts';
import { startEmulator, type Emulator } from '../../emulator/index.ts';

let emu: Emulator;
let n = 0;
test.before(async () => { emu = await startEmulator(); });
test.after(async () => { await emu?.stop(); });
test.after.each(() => { emu.fault({ type: 'clear' }); });

function botInChannel() {
  const bot = emu.createBot({ username: `ba${process.pid}x${n++}_bot` });
  const username = `bac${process.pid}x${n++}`;
  emu.createChat({ type: 'channel', title: username, username, members: [{ id: bot.botId, role: 'admin', rights: { postMessages: true } }] });
  return { bot, chat: `@${username}` };
}

async function failure(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  assert.instance(e, AppError, 'the call should fail with an AppError');
  return e as AppError;
}

test('a sendMessage that times out after Telegram posted it: TG_UNAVAILABLE, outcome unknown', async () => {
  const { bot, chat } = botInChannel();
  const api = new BotApi({ baseUrl: emu.botApi, token: bot.token, timeoutMs: 300 });
  emu.fault({ type: 'latency', target: bot.botId, seconds: 1 });
  const e = await failure(api.sendMessage({ chat_id: chat, text: 'posted, answer lost' }));
  assert.is(e.code, 'TG_UNAVAILABLE');
  assert.is(e.outcomeUnknown, true);
  assert.match(e.message, /timed out/);
  assert.not.match(e.message, new RegExp(bot.token.split(':')[1]!), 'no token in the message');
  // The ambiguity is real: the message is in the channel although the call failed.
  assert.is(emu.delivered().filter((m) => m.text === 'posted, answer lost').length, 1);
  // After the fault the answer comes: nothing else was posted.
  emu.fault({ type: 'clear' });
  await new Promise((r) => setTimeout(r, 800));
  assert.is(emu.delivered().filter((m) => m.text === 'posted, answer lost').length, 1);
});

test('a read-only call that times out is safe to repeat: outcome not unknown', async () => {
  const { bot, chat } = botInChannel();
  const api = new BotApi({ baseUrl: emu.botApi, token: bot.token, timeoutMs: 300 });
  emu.fault({ type: 'latency', target: bot.botId, seconds: 1 });
  const e = await failure(api.getChat(chat));
  assert.is(e.code, 'TG_UNAVAILABLE');
  assert.is(e.outcomeUnknown, false);
});

// The emulator reads the request head and destroys the socket before acting on it: what a request
// written to an idle keep-alive socket the server just closed looks like.
test('a connection closed before any answer: nothing was posted, a sendMessage may be retried', async () => {
  const { bot, chat } = botInChannel();
  const api = new BotApi({ baseUrl: emu.botApi, token: bot.token, timeoutMs: 2000 });
  emu.fault({ type: 'refuse-connections', target: bot.botId, seconds: 5 });
  const e = await failure(api.sendMessage({ chat_id: chat, text: 'closed unanswered' }));
  assert.is(e.code, 'TG_UNAVAILABLE');
  assert.is(e.outcomeUnknown, false);
  assert.match(e.message, /unreachable \((UND_ERR_SOCKET|ECONNRESET|EPIPE)\)/);
  assert.is(emu.delivered().filter((m) => m.text === 'closed unanswered').length, 0);
});

test('a refused connection never reached Telegram: a sendMessage may be retried', async () => {
  const { bot, chat } = botInChannel();
  // A port with nothing listening: bind one, note it, close it.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
  const api = new BotApi({ baseUrl: `http://127.0.0.1:${port}`, token: bot.token, timeoutMs: 2000 });
  const e = await failure(api.sendMessage({ chat_id: chat, text: 'never left' }));
  assert.is(e.code, 'TG_UNAVAILABLE');
  assert.is(e.outcomeUnknown, false);
  assert.match(e.message, /unreachable \(ECONNREFUSED\)/);
});

test('an error answer from the Bot API is definite: mapped code, outcome known', async () => {
  const { bot } = botInChannel();
  const api = new BotApi({ baseUrl: emu.botApi, token: bot.token });
  const e = await failure(api.sendMessage({ chat_id: '@no_such_channel_here', text: 'x' }));
  assert.is(e.code, 'TG_CHAT_NOT_FOUND');
  assert.is(e.outcomeUnknown, false);
});

// A multipart body built in memory would read the whole file before the first byte left. This Bot API
// answers as soon as the request's head is in and closes: what the client read of the file by then is
// bounded by the socket buffers, not the file (48 MiB here, one 512 KiB block yielded again and again).
test('sendDocument streams the file: a Bot API that answers before reading the body sees only part of it read', async () => {
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.pause();
      const body = JSON.stringify({ ok: false, error_code: 400, description: 'Bad Request: not now' });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const size = 48 * 1024 * 1024;
  const block = Buffer.alloc(512 * 1024, 7);
  let pulled = 0;
  let stopped = false;
  const media: OutboundMedia = {
    type: 'document', filename: 'big.bin', contentType: 'application/octet-stream', size, sha256: '',
    async* read() {
      try {
        for (let at = 0; at < size; at += block.length) {
          pulled += block.length;
          yield block;
        }
      } finally {
        stopped = true;
      }
    },
  };
  try {
    const { port } = server.address() as AddressInfo;
    const api = new BotApi({ baseUrl: `http://127.0.0.1:${port}`, token: '1:x', timeoutMs: 5000 });
    await failure(api.sendMedia(media, { chat_id: '@nowhere' }));
    assert.ok(pulled <= size / 3, `${pulled} of ${size} bytes read before the answer`);
    for (let i = 0; i < 100 && !stopped; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(stopped, 'the file is no longer read once the request is over');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test.run();
