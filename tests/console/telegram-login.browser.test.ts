// Telegram logins as real Telegram runs them, in a real Chromium against the real daemon and the
// Telegram emulator (issue 14, console part): the code type shown and the next one named, a resend
// button that counts down from login.resendAfter and walks app → sms → call (then shows
// TG_CODE_RESEND_UNAVAILABLE), e-mail and Fragment codes, the forgotten-2FA recovery flow, and a bot
// whose updates go to a webhook (TG_BOT_IN_USE) explained with its two ways out, both taken here.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, artifactsDir, type ConsoleWorld, openConsole, startConsoleWorld, stopConsoleWorld } from '../helpers/console-browser.ts';

interface World extends ConsoleWorld { user: string }
const test = suite<World>('telegram logins in the console');

// UK mobiles this run alone uses (the emulator keys users by phone).
let phones = 0;
const newPhone = () => `+447${String(process.pid % 1000).padStart(3, '0')}${String(500_000 + phones++).padStart(6, '0')}`;

const detailStatus = (page: Page, status: string) => page.locator(`.detail .detail-head .badge[data-status="${status}"]`).waitFor();
const codeHint = (page: Page) => page.locator('[data-step="code"] .hint[data-code-type]');
const resendButton = (page: Page) => page.locator('[data-step="code"] button[data-resend]');

async function botApi(w: World, token: string, method: string, params: Record<string, unknown> = {}): Promise<{ ok: boolean; result?: any }> {
  const res = await fetch(`${w.emu.botApi}/bot${token}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return (await res.json()) as { ok: boolean; result?: any };
}

const startPhoneLogin = async (w: World, phone: string): Promise<void> => {
  const p = w.page;
  await p.getByRole('radio', { name: 'Phone' }).check();
  await p.getByLabel('Phone number').fill(phone);
  await p.getByRole('button', { name: 'Send code' }).click();
  await p.locator('[data-step="code"]').waitFor();
};

test.before(async (w) => {
  // About 40 connect-group calls (create, code, resend, recovery) in this file, beyond the default 10 a minute.
  Object.assign(w, await startConsoleWorld({ RATE_LIMIT_CONNECT: '1000' }));
  w.user = w.token(`tglogin-${randomBytes(4).toString('hex')}`);
  // Fake timers with time still flowing: the countdown test jumps ahead instead of waiting 90 s.
  await w.page.clock.install();
  await openConsole(w, w.user);
});

let shot = 0;
test.after.each(async (w) => {
  await w.page?.screenshot({ path: join(artifactsDir, `telegram-login-${String(++shot).padStart(2, '0')}.png`), fullPage: true }).catch(() => undefined);
});

test.after(async (w) => {
  await stopConsoleWorld(w);
});

test('the code type is shown and resend walks app → sms → call, then TG_CODE_RESEND_UNAVAILABLE; the last code signs in', async (w) => {
  const p = w.page;
  const phone = newPhone();
  await w.emu.createUser({ phone, codeTypes: ['app', 'sms', 'call'], codeTimeoutS: 0 });
  await startPhoneLogin(w, phone);
  assert.is(await codeHint(p).getAttribute('data-code-type'), 'app');
  assert.match((await codeHint(p).textContent())!, /Telegram app/);
  assert.match((await p.locator('[data-resend-note]').textContent())!, /SMS/);
  await p.getByRole('button', { name: 'Send again by SMS' }).click();
  await p.locator('[data-step="code"] .hint[data-code-type="sms"]').waitFor();
  assert.match((await codeHint(p).textContent())!, /by SMS/);
  assert.is(w.emu.lastCode(phone)!.type, 'sms');
  await p.getByRole('button', { name: 'Send again by a phone call' }).click();
  await p.locator('[data-step="code"] .hint[data-code-type="call"]').waitFor();
  assert.match((await codeHint(p).textContent())!, /calling/);
  assert.is(await p.locator('[data-resend-note]').textContent(), '', 'no next way named after the call');
  await p.getByRole('button', { name: 'Send the code again' }).click();
  await p.locator('[data-step="code"] .field-error', { hasText: 'TG_CODE_RESEND_UNAVAILABLE' }).waitFor();
  await p.getByLabel('Login code').fill(w.emu.lastCode(phone)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await detailStatus(p, 'active');
});

test('the resend button counts down from login.resendAfter and is usable only when the wait is over', async (w) => {
  const p = w.page;
  const phone = newPhone();
  await w.emu.createUser({ phone, codeTypes: ['app', 'sms'], codeTimeoutS: 90 });
  await startPhoneLogin(w, phone);
  const button = resendButton(p);
  assert.ok(await button.isDisabled(), 'disabled during the wait');
  const seconds = async () => Number(/in (\d+) s/.exec((await button.textContent())!)?.[1]);
  const first = await seconds();
  assert.ok(first > 80 && first <= 90, `about 90 s to wait, shown ${first}`);
  await p.clock.fastForward(60_000);
  await p.locator('[data-step="code"] button[data-resend]', { hasText: /in (2\d|30|31) s/ }).waitFor();
  await p.clock.fastForward(35_000);
  await p.locator('[data-step="code"] button[data-resend]:not([disabled])', { hasText: 'Send again by SMS' }).waitFor();
  // The code sent first still signs in (the page's clock moved, Telegram's did not).
  await p.getByLabel('Login code').fill(w.emu.lastCode(phone)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await detailStatus(p, 'active');
});

test('an e-mail code user and a Fragment +888 user see where their code went, and log in', async (w) => {
  const p = w.page;
  const emailUser = newPhone();
  await w.emu.createUser({ phone: emailUser, loginEmail: 'ann@example.org' });
  await startPhoneLogin(w, emailUser);
  assert.is(await codeHint(p).getAttribute('data-code-type'), 'email');
  assert.match((await codeHint(p).textContent())!, /login e-mail/);
  await p.getByLabel('Login code').fill(w.emu.lastCode(emailUser)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await detailStatus(p, 'active');

  const fragment = `+888${String(Date.now()).slice(-8)}`;
  await w.emu.createUser({ phone: fragment });
  await startPhoneLogin(w, fragment);
  assert.is(await codeHint(p).getAttribute('data-code-type'), 'fragment');
  assert.match((await codeHint(p).textContent())!, /fragment\.com/);
  await p.getByLabel('Login code').fill(w.emu.lastCode(fragment)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await detailStatus(p, 'active');
});

test('forgotten 2FA password: the e-mailed recovery code and a new password sign in; the page keeps neither', async (w) => {
  const p = w.page;
  const phone = newPhone();
  const newPassword = `fresh-${randomBytes(6).toString('hex')}`;
  await w.emu.createUser({ phone, password: 'long forgotten', recoveryEmail: 'ann@example.org' });
  await startPhoneLogin(w, phone);
  await p.getByLabel('Login code').fill(w.emu.lastCode(phone)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await p.locator('[data-step="password"]').waitFor();
  await p.getByRole('button', { name: 'Forgot the password?' }).click();
  await p.locator('[data-step="recovery"]').waitFor();
  const sentTo = (await p.locator('[data-step="recovery"] .hint').first().textContent())!;
  assert.match(sentTo, /e-mailed a recovery code to .*\*/);
  assert.not.match(sentTo, /ann@example\.org/, 'the address is shown as Telegram\'s pattern only');
  await p.getByLabel('Recovery code').fill('000000');
  await p.getByLabel('New password (optional)').fill(newPassword);
  await p.getByRole('button', { name: 'Recover and sign in' }).click();
  await p.locator('[data-step="recovery"] .field-error', { hasText: 'TG_CODE_INVALID' }).waitFor();
  await p.getByLabel('Recovery code').fill(w.emu.recoveryCode(phone)!.code);
  await p.getByRole('button', { name: 'Recover and sign in' }).click();
  await detailStatus(p, 'active');
  assert.not.ok((await p.content()).includes(newPassword), 'the new password is left in the page');
  assert.is(await p.evaluate('sessionStorage.length'), 1, 'only the access token is in session storage');
  assert.is(await p.evaluate('localStorage.length'), 0);
  // Back at "Back to the password": the way out of the recovery form works too (second account, no e-mail sent twice).
  const other = newPhone();
  await w.emu.createUser({ phone: other, password: 'pw', recoveryEmail: 'bob@example.org' });
  await startPhoneLogin(w, other);
  await p.getByLabel('Login code').fill(w.emu.lastCode(other)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await p.getByRole('button', { name: 'Forgot the password?' }).click();
  await p.getByRole('button', { name: 'Back to the password' }).click();
  await p.getByLabel('Two-step verification password').fill('pw');
  await p.getByRole('button', { name: 'Unlock' }).click();
  await detailStatus(p, 'active');
});

test('recovery for an account without a recovery e-mail shows TG_RECOVERY_UNAVAILABLE at the password', async (w) => {
  const p = w.page;
  const phone = newPhone();
  await w.emu.createUser({ phone, password: 'kept' });
  await startPhoneLogin(w, phone);
  await p.getByLabel('Login code').fill(w.emu.lastCode(phone)!.code);
  await p.getByRole('button', { name: 'Verify code' }).click();
  await p.getByRole('button', { name: 'Forgot the password?' }).click();
  await p.locator('[data-step="password"] .field-error', { hasText: 'TG_RECOVERY_UNAVAILABLE' }).waitFor();
  await p.getByLabel('Two-step verification password').fill('kept');
  await p.getByRole('button', { name: 'Unlock' }).click();
  await detailStatus(p, 'active');
});

const botWithWebhook = async (w: World) => {
  const bot = w.emu.createBot({ username: `hooked_${randomBytes(3).toString('hex')}_bot` });
  assert.ok((await botApi(w, bot.token, 'setWebhook', { url: 'https://owner.example/hook' })).ok);
  const p = w.page;
  await p.getByRole('radio', { name: 'Bot' }).check();
  await p.locator('[data-form="bot"]').getByLabel('Bot token').fill(bot.token);
  await p.getByRole('button', { name: 'Add bot' }).click();
  await p.locator('.detail .conn-error[data-error-code="TG_BOT_IN_USE"]').waitFor();
  const explained = (await p.locator('[data-bot-conflict]').textContent())!;
  assert.match(explained, /webhook or another program/);
  assert.match(explained, /Send only/);
  assert.match(explained, /Take over/);
  const oldId = (await p.locator('.conn-row[aria-current="true"]').getAttribute('data-connection-id'))!;
  return { bot, oldId };
};

test('a bot whose updates go to a webhook: TG_BOT_IN_USE explained; "send only" reconnects it with updates none, which never polls', async (w) => {
  const p = w.page;
  const { bot, oldId } = await botWithWebhook(w);
  const pollsBefore = w.emu.stats().getUpdatesCalls[bot.botId] ?? 0;
  await p.locator('[data-bot-conflict]').getByLabel('Bot token').fill(bot.token);
  await p.getByRole('button', { name: 'Connect to send only' }).click();
  await detailStatus(p, 'active');
  const newId = (await p.locator('.conn-row[aria-current="true"]').getAttribute('data-connection-id'))!;
  assert.is.not(newId, oldId);
  assert.is(await p.locator(`.conn-row[data-connection-id="${oldId}"]`).count(), 0, 'the old connection is gone');
  assert.is((await api(w, w.user, 'GET', `/v1/connections/${oldId}`)).status, 404);
  assert.is(w.emu.stats().getUpdatesCalls[bot.botId] ?? 0, pollsBefore, 'updates "none" never calls getUpdates');
  assert.is((await botApi(w, bot.token, 'getWebhookInfo')).result.url, 'https://owner.example/hook', 'the owner\'s webhook is untouched');
  assert.not.ok((await p.content()).includes(bot.token), 'bot token left in the page');
});

test('a bot whose updates go to a webhook: "take over" deletes the webhook and the bot turns active', async (w) => {
  const p = w.page;
  const { bot, oldId } = await botWithWebhook(w);
  // A malformed token is refused in the page, the connection kept.
  await p.locator('[data-bot-conflict]').getByLabel('Bot token').fill('not a token');
  await p.getByRole('button', { name: 'Take over the updates' }).click();
  await p.locator('[data-bot-conflict] .field-error', { hasText: '123456:ABC-def' }).waitFor();
  assert.is((await api(w, w.user, 'GET', `/v1/connections/${oldId}`)).status, 200);
  await p.locator('[data-bot-conflict]').getByLabel('Bot token').fill(bot.token);
  await p.getByRole('button', { name: 'Take over the updates' }).click();
  await detailStatus(p, 'active');
  assert.is((await botApi(w, bot.token, 'getWebhookInfo')).result.url, '', 'the webhook was deleted');
  assert.not.ok((await p.content()).includes(bot.token), 'bot token left in the page');
});

test('in Russian: the code type, the next way and the resend button read in Russian', async (w) => {
  const p = w.page;
  const phone = newPhone();
  await w.emu.createUser({ phone, codeTypes: ['app', 'sms'], codeTimeoutS: 0 });
  const created = await api<{ id: string }>(w, w.user, 'POST', '/v1/connections', { platform: 'telegram', kind: 'user', phone });
  assert.is(created.status, 201);
  await p.getByLabel('Language').selectOption('ru');
  await p.getByRole('heading', { name: 'Добавить подключение' }).waitFor();
  await p.locator(`.conn-row[data-connection-id="${created.json.id}"]`).click();
  await p.locator('[data-step="code"]').waitFor();
  assert.match((await codeHint(p).textContent())!, /приложение Telegram/);
  assert.match((await p.locator('[data-resend-note]').textContent())!, /по SMS/);
  await p.getByRole('button', { name: 'Прислать ещё раз по SMS' }).click();
  await p.locator('[data-step="code"] .hint[data-code-type="sms"]').waitFor();
  assert.match((await codeHint(p).textContent())!, /по SMS/);
  await p.getByLabel('Язык').selectOption('en');
  await p.getByRole('heading', { name: 'Add a connection' }).waitFor();
});

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
