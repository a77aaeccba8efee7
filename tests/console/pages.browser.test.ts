// The console's pages in a real Chromium against the real daemon: message history (paging, status
// filter, search), session-health charts drawn from messages this test sent, the audit log, the
// privacy page (consents, export download, delete everything with a typed word), and the admin-only
// actors page (live, and never shown to a non-admin token).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, artifactsDir, botWithChat, type ConsoleWorld, control, openConsole, startConsoleWorld, stopConsoleWorld, waitUntil } from '../helpers/console-browser.ts';

interface World extends ConsoleWorld { user: string; bot: Awaited<ReturnType<typeof botWithChat>>; word: string; adminRequests: string[] }
const test = suite<World>('console pages in the browser');
// 21: one more than a page. Spread over 4 chats: the daemon paces a group chat at one message per 3 s
// (Telegram's 20 a minute), so one chat would take a minute.
const sent = 21;
const chats = 4;

test.before(async (w) => {
  Object.assign(w, await startConsoleWorld());
  w.user = w.token(`pages-${randomBytes(4).toString('hex')}`);
  w.bot = await botWithChat(w, w.user, 'History chat');
  w.word = `needle${randomBytes(3).toString('hex')}`;
  const chatIds = [w.bot.chatId];
  for (let i = 1; i < chats; i++) {
    const username = `hist_${i}_${randomBytes(3).toString('hex')}`;
    await control(w, 'POST', '/chats', { type: 'supergroup', title: `History ${i}`, username, members: [{ id: Number(w.bot.botId), role: 'admin', rights: { postMessages: true } }] });
    const c = await api<{ id: string }>(w, w.user, 'POST', `/v1/connections/${w.bot.connectionId}/chats`, { chat: `@${username}` });
    chatIds.push(c.json.id);
  }
  for (let i = 0; i < sent; i++) {
    const text = i === 7 ? `the ${w.word} is here` : `history message ${i}`;
    const r = await api(w, w.user, 'POST', '/v1/messages', { connectionId: w.bot.connectionId, chat: chatIds[i % chats], text });
    assert.is(r.status, 202, JSON.stringify(r.json));
  }
  let done = 0;
  for (let i = 0; i < 600 && done < sent; i++) {
    done = (await api<{ items: unknown[] }>(w, w.user, 'GET', `/v1/messages?status=sent&limit=100`)).json.items.length;
    if (done < sent) await new Promise((res) => setTimeout(res, 100));
  }
  assert.is(done, sent, 'not every message was sent');
  w.adminRequests = [];
  w.page.on('request', (r) => new URL(r.url()).pathname.startsWith('/admin/') && w.adminRequests.push(r.url()));
  await openConsole(w, w.user);
});

test.after(async (w) => {
  await w.page?.screenshot({ path: join(artifactsDir, 'pages-last.png'), fullPage: true }).catch(() => undefined);
  await stopConsoleWorld(w);
});

test('message history: 20 a page, Older/Newer by keyboard, status filter and search', async (w) => {
  const p = w.page;
  await p.getByRole('link', { name: 'Messages' }).focus();
  await p.keyboard.press('Enter');
  await p.getByRole('heading', { name: 'Message history' }).waitFor();
  const rows = p.locator('[data-page="messages"] .msg');
  await waitUntil(p, `document.querySelectorAll('[data-page="messages"] .msg').length === 20`);
  await p.getByRole('button', { name: /Older/ }).focus();
  await p.keyboard.press('Enter');
  await waitUntil(p, `document.querySelectorAll('[data-page="messages"] .msg').length === ${sent - 20}`);
  assert.ok(await p.getByRole('button', { name: /Older/ }).isDisabled());
  await p.getByRole('button', { name: /Newer/ }).click();
  await waitUntil(p, `document.querySelectorAll('[data-page="messages"] .msg').length === 20`);
  await p.getByLabel('Search the texts').fill(w.word);
  await p.keyboard.press('Enter');
  await waitUntil(p, `document.querySelectorAll('[data-page="messages"] .msg').length === 1`);
  assert.match((await rows.first().textContent()) ?? '', w.word);
  await p.getByLabel('Search the texts').fill('');
  await p.getByLabel('Status').selectOption('failed');
  await p.getByRole('button', { name: 'Show' }).click();
  await p.locator('[data-page="messages"] .empty', { hasText: 'No messages match.' }).waitFor();
  await p.getByLabel('Status').selectOption('');
});

test('session health charts are drawn from the messages sent here', async (w) => {
  const p = w.page;
  const summary = p.locator('[data-chart-summary]');
  await waitUntil(p, `Number(document.querySelector('[data-chart-summary]')?.dataset.sent) === ${sent}`);
  assert.match((await summary.textContent()) ?? '', new RegExp(`${sent} sent, 0 failed`));
  assert.is(await p.locator('[data-chart="counts"] canvas').count(), 1);
  assert.is(await p.locator('[data-chart="latency"] canvas').count(), 1);
});

test('audit log: the caller\'s own entries; a non-admin has no "everyone" switch', async (w) => {
  const p = w.page;
  await p.getByRole('link', { name: 'Audit log' }).click();
  await p.locator('[data-page="audit"] tbody tr[data-action]').first().waitFor();
  assert.is(await p.getByLabel('Everyone (admin)').count(), 0);
});

test('a non-admin token never sees the actors page, even by its address, nor calls /admin', async (w) => {
  const p = w.page;
  assert.is(await p.getByRole('link', { name: 'Actors' }).count(), 0);
  await p.evaluate(`location.hash = 'view=actors'`);
  await p.locator('.home').waitFor();
  assert.is(await p.locator('[data-page="actors"]').count(), 0);
  assert.equal(w.adminRequests, []);
});

test('admin: the actors page shows the tree and follows a restart live', async (w) => {
  const p = w.page;
  const admin = w.token('operator', true);
  await openConsole(w, admin);
  await p.getByRole('link', { name: 'Actors' }).click();
  const row = p.locator(`[data-page="actors"] tr[data-actor-id="${w.bot.connectionId}"]`);
  await row.waitFor();
  const before = Number(await row.locator('[data-restarts]').getAttribute('data-restarts'));
  const r = await api(w, admin, 'POST', `/admin/actors/${w.bot.connectionId}/restart`, {});
  assert.ok(r.status < 300, `restart: ${r.status}`);
  await p.locator(`[data-page="actors"] tr[data-actor-id="${w.bot.connectionId}"] [data-restarts="${before + 1}"]`).waitFor();
  await p.getByRole('link', { name: 'Audit log' }).click();
  await p.getByLabel('Everyone (admin)').check();
  await p.locator('[data-page="audit"] tbody tr[data-action]').first().waitFor();
  await openConsole(w, w.user);
});

test('privacy: grant processing, download the export with the consent history', async (w) => {
  const p = w.page;
  await p.getByRole('link', { name: 'Privacy' }).click();
  const processing = p.locator('[data-purpose="processing"]');
  await processing.waitFor();
  await p.getByRole('button', { name: /^Grant: Processing/ }).click();
  await p.locator('[data-purpose="processing"][data-granted="true"]').waitFor();
  const download = p.waitForEvent('download');
  await p.getByRole('button', { name: 'Download my data' }).click();
  const file = await download;
  const body = JSON.parse(await readFile((await file.path())!, 'utf8')) as Record<string, unknown>;
  assert.match(JSON.stringify(body), /"processing"/);
  assert.not.match(JSON.stringify(body), /bot[_-]?token"\s*:\s*"\d+:/i);
});

test('privacy: delete everything needs the typed word, then signs out and the data is gone', async (w) => {
  const p = w.page;
  const confirm = p.getByLabel('Type DELETE to confirm');
  await confirm.fill('delete');
  await p.getByRole('button', { name: 'Delete everything' }).click();
  await p.locator('[data-form="erase"] .field-error', { hasText: 'Type DELETE exactly' }).waitFor();
  await confirm.fill('DELETE');
  await p.getByRole('button', { name: 'Delete everything' }).click();
  await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  await p.locator('.field-error', { hasText: 'Everything was deleted.' }).waitFor();
  const left = await api<{ items: unknown[] }>(w, w.user, 'GET', '/v1/connections');
  assert.equal(left.json.items, []);
});

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
