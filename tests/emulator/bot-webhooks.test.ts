import { createServer, type IncomingHttpHeaders } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startEmulator, type Emulator } from './index.ts';
import { ManualClock, until } from './support/gramjs.ts';

// A bot whose updates already go elsewhere, over raw HTTP as the bot adapter speaks it: its owner's
// webhook (set through the control API, as if from the owner's own backend, or by setWebhook) or
// another getUpdates poller. The 409 descriptions are Telegram's, word for word.

let emu: Emulator;
let n = 0;
test.before(async () => {
  emu = await startEmulator({ clock: new ManualClock() });
});
test.after(async () => {
  await emu.stop();
});

interface Envelope { ok: boolean; result?: any; error_code?: number; description?: string }

async function call(token: string, method: string, params: Record<string, unknown> = {}): Promise<{ status: number; body: Envelope }> {
  const res = await fetch(`${emu.botApi}/bot${token}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: res.status, body: (await res.json()) as Envelope };
}

async function ctl(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${emu.control}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const WEBHOOK_ACTIVE = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
const OTHER_POLLER = 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running';
const WEBHOOK_SET = 'Conflict: terminated by setWebhook request';

async function fixture() {
  n++;
  const bot = emu.createBot({ username: `hooked${n}_bot` });
  const { userId } = await emu.createUser({ phone: `+44770065${String(1000 + n)}` });
  return { bot, userId };
}

const pollerWaiting = (botId: number, calls: number) => until(() => (emu.stats().getUpdatesCalls[botId] ?? 0) >= calls, 5000, 'the poll to arrive');

test('the owner\'s webhook (control API): a running poll ends with 409, every getUpdates after it too, each one counted', async () => {
  const { bot, userId } = await fixture();
  const polling = call(bot.token, 'getUpdates', { timeout: 30 });
  await pollerWaiting(bot.botId, 1);
  const set = await ctl('POST', `/bots/${bot.botId}/webhook`, { url: 'https://owner.example/tg-hook' });
  assert.equal([set.status, set.json], [200, { ok: true }]);
  assert.equal((await polling).body, { ok: false, error_code: 409, description: WEBHOOK_SET });
  for (let i = 0; i < 3; i++) assert.equal(await call(bot.token, 'getUpdates', { timeout: 0 }), { status: 409, body: { ok: false, error_code: 409, description: WEBHOOK_ACTIVE } });
  assert.is(emu.stats().getUpdatesCalls[bot.botId], 4);
  // The owner's updates wait for the owner's hook (out of the emulator's reach): none is handed to a poller.
  emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'for the owner' });
  const info = await call(bot.token, 'getWebhookInfo');
  assert.equal(info.body.result, { url: 'https://owner.example/tg-hook', has_custom_certificate: false, pending_update_count: 1, max_connections: 40 });
  assert.equal((await ctl('DELETE', `/bots/${bot.token}/webhook`)).json, { ok: true });
  const after = await call(bot.token, 'getUpdates', { timeout: 0 });
  assert.is(after.status, 200);
  assert.equal(after.body.result.map((u: { message: { text: string } }) => u.message.text), ['for the owner']);
});

test('a second poller: the one already waiting is ended with 409, the newer one gets the updates', async () => {
  const { bot, userId } = await fixture();
  const older = call(bot.token, 'getUpdates', { timeout: 30 });
  await pollerWaiting(bot.botId, 1);
  const newer = call(bot.token, 'getUpdates', { timeout: 30 });
  assert.equal((await older).body, { ok: false, error_code: 409, description: OTHER_POLLER });
  await pollerWaiting(bot.botId, 2);
  emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'to the newer' });
  const got = await newer;
  assert.is(got.status, 200);
  assert.is(got.body.result[0].message.text, 'to the newer');
  // A short poll ends a waiting one too: one consumer per bot.
  const waiting = call(bot.token, 'getUpdates', { timeout: 30, offset: got.body.result[0].update_id + 1 });
  await pollerWaiting(bot.botId, 3);
  assert.is((await call(bot.token, 'getUpdates', { timeout: 0 })).status, 200);
  assert.is((await waiting).body.description, OTHER_POLLER);
});

test('a poller that hangs up stops waiting: the next one is not a conflict for anybody', async () => {
  const { bot, userId } = await fixture();
  const gone = new AbortController();
  const abandoned = fetch(`${emu.botApi}/bot${bot.token}/getUpdates?timeout=30`, { signal: gone.signal }).catch(() => 'aborted');
  await pollerWaiting(bot.botId, 1);
  gone.abort();
  assert.is(await abandoned, 'aborted');
  const next = call(bot.token, 'getUpdates', { timeout: 30 });
  await pollerWaiting(bot.botId, 2);
  emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'still delivered' });
  assert.is((await next).body.result[0].message.text, 'still delivered');
});

test('setWebhook / deleteWebhook / getWebhookInfo as the Bot API documents them', async () => {
  const { bot } = await fixture();
  const bad = async (url: string) => (await call(bot.token, 'setWebhook', { url })).body;
  assert.equal(await bad('http://owner.example/hook'), { ok: false, error_code: 400, description: 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook' });
  assert.equal(await bad('not a url'), { ok: false, error_code: 400, description: 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook' });
  assert.equal(await bad('https://owner.example:8080/hook'), { ok: false, error_code: 400, description: 'Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443' });
  assert.equal((await call(bot.token, 'getWebhookInfo')).body.result, { url: '', has_custom_certificate: false, pending_update_count: 0 });
  assert.equal((await call(bot.token, 'deleteWebhook')).body, { ok: true, result: true, description: 'Webhook is already deleted' });
  const url = 'https://owner.example:8443/hook';
  assert.equal((await call(bot.token, 'setWebhook', { url })).body, { ok: true, result: true, description: 'Webhook was set' });
  assert.equal((await call(bot.token, 'setWebhook', { url })).body, { ok: true, result: true, description: 'Webhook is already set' });
  assert.equal((await call(bot.token, 'setWebhook', { url, max_connections: 5 })).body.description, 'Webhook was set');
  assert.is((await call(bot.token, 'getWebhookInfo')).body.result.max_connections, 5);
  assert.is((await call(bot.token, 'setWebhook', { url, max_connections: 500 })).status, 400);
  assert.equal((await call(bot.token, 'deleteWebhook')).body, { ok: true, result: true, description: 'Webhook was deleted' });
  await call(bot.token, 'setWebhook', { url });
  assert.equal((await call(bot.token, 'setWebhook', { url: '' })).body, { ok: true, result: true, description: 'Webhook was deleted' }, 'an empty url removes it');
  assert.is((await call(bot.token, 'getUpdates')).status, 200);
});

test('a loopback webhook gets each update with the secret token header; a failing one shows last_error_message', async () => {
  const { bot, userId } = await fixture();
  const seen: Array<{ headers: IncomingHttpHeaders; body: any }> = [];
  let answer = 500;
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: JSON.parse(body) });
      res.statusCode = answer;
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  try {
    const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
    assert.is((await call(bot.token, 'setWebhook', { url, secret_token: 'owner-secret_1' })).body.description, 'Webhook was set');
    emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'first try fails' });
    await until(async () => (await call(bot.token, 'getWebhookInfo')).body.result.last_error_message !== undefined, 5000, 'the failed delivery');
    const info = (await call(bot.token, 'getWebhookInfo')).body.result;
    assert.equal([info.last_error_message, info.pending_update_count], ['Wrong response from the webhook: 500 Internal Server Error', 1]);
    assert.type(info.last_error_date, 'number');
    answer = 200;
    emu.pushUpdate({ to: bot.botId, fromUserId: userId, text: 'second' });
    await until(() => seen.filter((s) => s.body.message?.text === 'second').length === 1, 5000, 'both delivered');
    assert.equal(seen.map((s) => s.body.message.text), ['first try fails', 'first try fails', 'second'], 'the failed update is retried first, in order');
    assert.is(seen[0]!.headers['x-telegram-bot-api-secret-token'], 'owner-secret_1');
    assert.is((await call(bot.token, 'getWebhookInfo')).body.result.pending_update_count, 0);
  } finally {
    await new Promise<void>((r) => hook.close(() => r()));
  }
});

test('control API: the webhook of an unknown bot is 404, a bad url 400; GET /stats counts getUpdates per bot', async () => {
  const { bot } = await fixture();
  assert.is((await ctl('POST', '/bots/999999999/webhook', { url: 'https://x.example/h' })).status, 404);
  assert.is((await ctl('DELETE', '/bots/nobody_bot/webhook')).status, 404);
  assert.is((await ctl('POST', `/bots/${bot.botId}/webhook`, { url: 'nope' })).status, 400);
  assert.is((await ctl('POST', `/bots/${bot.botId}/webhook`, {})).status, 400);
  assert.is((await ctl('GET', `/bots/${bot.botId}/webhook`)).status, 405);
  await call(bot.token, 'getUpdates');
  await call(bot.token, 'getUpdates');
  assert.is((await ctl('GET', '/stats')).json.getUpdatesCalls[String(bot.botId)], 2);
});

test.run();
