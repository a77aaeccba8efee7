// A bot whose updates go to a webhook ends in error TG_BOT_IN_USE within 10 s and stays there: the
// emulator counts no getUpdates for the next 60 s (longer than the stack's 2 s backoff cap and the
// 30 s breaker half-open time, so a hidden retry of either kind would show). bot-conflict.e2e.test.ts
// checks the same over 3 s beside the other conflict cases; this file holds the long window alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStack, until, type Stack } from '../helpers/stack.ts';

let s: Stack;
test.before(async () => { s = await startStack(); });
test.after(async () => { await s.close(); });

const OWNER = 'bot-stays-owner';
const WINDOW_MS = 60_000;

test('webhook set → error TG_BOT_IN_USE within 10 s, then no getUpdates for 60 s and still in error', async () => {
  const bot = s.emu.createBot({ username: `stays${process.pid}_bot` });
  const res = await fetch(`${s.emu.botApi}/bot${bot.token}/setWebhook`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'https://owner.example/hook' }),
  });
  assert.ok(((await res.json()) as { ok: boolean }).ok);
  const c = await s.connections.create(OWNER, { platform: 'telegram', kind: 'bot', token: bot.token });
  // until()'s default limit is 10 s: the error must come within it.
  const ended = await until(async () => {
    const now = await s.connections.get(OWNER, c.id);
    return now.status === 'error' ? now : undefined;
  }, 'error within 10 s', 10_000);
  assert.is(ended.error?.code, 'TG_BOT_IN_USE');
  const polls = () => s.emu.stats().getUpdatesCalls[bot.botId] ?? 0;
  const atError = polls();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  assert.is(polls(), atError, `getUpdates called ${polls() - atError} times in the 60 s after the error`);
  const still = await s.connections.get(OWNER, c.id);
  assert.equal([still.status, still.error?.code], ['error', 'TG_BOT_IN_USE']);
});

test.run();
