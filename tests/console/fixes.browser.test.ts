// What a new user hit in the console (issue 21), each in a real Chromium against the real daemon and
// the Telegram emulator: a text over 4096 characters refused visibly (nothing cut), the 429 notice
// counting down and gone when the wait is over, toasts that keep off the send form and name chats by
// title, relative times that move each second, and a bot's errors that say "bot".
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, artifactsDir, botWithChat, type ConsoleWorld, control, openConsole, startConsoleWorld, stopConsoleWorld, waitUntil } from '../helpers/console-browser.ts';

interface World extends ConsoleWorld { user: string; bot: Awaited<ReturnType<typeof botWithChat>>; posts: number }
const test = suite<World>('console fixes in the browser');
const sendLimit = 4;
const title = `Release notes ${randomBytes(2).toString('hex')}`;

test.before(async (w) => {
  Object.assign(w, await startConsoleWorld({ RATE_LIMIT_SEND: String(sendLimit) }));
  w.user = w.token(`fixes-${randomBytes(4).toString('hex')}`);
  w.bot = await botWithChat(w, w.user, title);
  w.posts = 0;
  w.page.on('request', (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/v1/messages' && w.posts++);
  // Fake timers, time still flowing: the 429 test jumps over the wait instead of sitting through it.
  await w.page.clock.install();
  await openConsole(w, w.user);
  await w.page.locator(`.conn-row[data-connection-id="${w.bot.connectionId}"]`).click();
  await w.page.locator('[data-form="send"]').waitFor();
});

test.after(async (w) => {
  await w.page?.screenshot({ path: join(artifactsDir, 'fixes-last.png'), fullPage: true }).catch(() => undefined);
  await stopConsoleWorld(w);
});

test('a text over 4096 characters is kept whole, counted as over, and refused before sending', async (w) => {
  const p = w.page;
  const text = p.getByLabel('Text');
  await text.fill('x'.repeat(4100));
  assert.is((await text.inputValue()).length, 4100, 'the textarea cut the text');
  assert.is(await p.locator('[data-counter]').textContent(), '4100 / 4096, 4 over the limit');
  await p.locator('[data-form="send"] .field-error', { hasText: 'At most 4096 characters (now 4100)' }).waitFor();
  const before = w.posts;
  await p.getByRole('button', { name: 'Send', exact: true }).click();
  assert.is(w.posts, before, 'an over-long text was sent');
  assert.is((await text.inputValue()).length, 4100);
  await text.fill('x'.repeat(4096));
  assert.is(await p.locator('[data-counter]').textContent(), '4096 / 4096');
  assert.is(await text.getAttribute('aria-invalid'), null, 'a 4096-character text is still marked invalid');
  await text.fill('');
});

test('toasts name the chat by its title and keep off the send form (1280 wide: over the left column)', async (w) => {
  const p = w.page;
  const text = `toast check ${randomBytes(3).toString('hex')}`;
  await p.getByLabel('Text').fill(text);
  await p.getByRole('button', { name: 'Send', exact: true }).click();
  const toast = p.locator('.toast', { hasText: `Message to ${title} sent` });
  await toast.waitFor();
  const [t, f] = [await toast.boundingBox(), await p.locator('[data-form="send"]').boundingBox()];
  assert.ok(t && f);
  const overlaps = t.x < f.x + f.width && f.x < t.x + t.width && t.y < f.y + f.height && f.y < t.y + t.height;
  assert.not.ok(overlaps, `toast ${JSON.stringify(t)} covers the send form ${JSON.stringify(f)}`);
});

test('a message received in a chat of a connection not on screen is toasted with the chat title, not its id', async (w) => {
  const p = w.page;
  await p.reload();
  await p.locator('.live--open').waitFor();
  assert.is(await p.locator('.conn-row[aria-current="true"]').count(), 0);
  const { userId } = await control<{ userId: number }>(w, 'POST', '/users', { phone: `+4479140${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`, firstName: 'Dora' });
  const said = `hello group ${randomBytes(3).toString('hex')}`;
  await control(w, 'POST', '/updates', { to: Number(w.bot.botId), fromUserId: userId, chatId: Number(w.bot.platformChatId), text: said });
  const toast = p.locator('.toast', { hasText: said });
  await toast.waitFor();
  const line = (await toast.textContent()) ?? '';
  assert.ok(line.includes(`in ${title}:`), line);
  assert.not.ok(line.includes(`in ${w.bot.platformChatId}:`), line);
});

test('narrow screen: toasts are part of the page, not floated over the form', async (w) => {
  const p = w.page;
  await p.setViewportSize({ width: 390, height: 844 });
  const position = `getComputedStyle(document.querySelector('.toasts')).position`;
  assert.is(await p.evaluate(position), 'static');
  await p.setViewportSize({ width: 1280, height: 800 });
  assert.is(await p.evaluate(position), 'fixed');
});

test('relative times move every second, not every 30 s', async (w) => {
  const p = w.page;
  const since = p.locator(`.conn-row[data-connection-id="${w.bot.connectionId}"] time.conn-since`);
  const first = await since.textContent();
  assert.match(first ?? '', /ago$/);
  await p.clock.fastForward(2_000);
  const sel = `.conn-row[data-connection-id="${w.bot.connectionId}"] time.conn-since`;
  await waitUntil(p, `document.querySelector(${JSON.stringify(sel)})?.textContent !== ${JSON.stringify(first)}`);
});

test('a bot connection\'s chat error says "bot", not "account"', async (w) => {
  const p = w.page;
  await p.locator(`.conn-row[data-connection-id="${w.bot.connectionId}"]`).click();
  const username = `members_${randomBytes(3).toString('hex')}`;
  await control(w, 'POST', '/chats', { type: 'supergroup', title: 'Members only', username, members: [{ id: Number(w.bot.botId), role: 'member' }] });
  await p.getByLabel('Chat', { exact: true }).first().fill(`@${username}`);
  await p.getByLabel('Require admin rights').check();
  await p.getByRole('button', { name: 'Add chat' }).click();
  const err = p.locator('[data-form="add-chat"] .field-error', { hasText: 'TG_NOT_ADMIN' });
  await err.waitFor();
  const line = (await err.textContent()) ?? '';
  assert.match(line, /The bot is not an admin of this chat/);
  assert.not.match(line, /account/);
  await p.getByLabel('Require admin rights').uncheck();
  await p.getByLabel('Chat', { exact: true }).first().fill('');
});

test('429: the notice counts down from Retry-After and is gone once the wait is over', async (w) => {
  const p = w.page;
  // Use up the caller's send budget from outside the page (the same sub), then send from the form.
  let status = 202;
  for (let i = 0; i < sendLimit + 1 && status !== 429; i++) {
    status = (await api(w, w.user, 'POST', '/v1/messages', { connectionId: w.bot.connectionId, chat: w.bot.chatId, text: `budget ${i}` })).status;
  }
  await p.getByLabel('Text').fill('one too many');
  await p.getByRole('button', { name: 'Send', exact: true }).click();
  const notice = p.locator('[data-form="send"] .form-error');
  await notice.filter({ hasText: /^RATE_LIMITED — Too many requests; try again in \d+ s$/ }).waitFor();
  const first = Number((await notice.textContent())!.match(/in (\d+) s/)![1]);
  assert.ok(first >= 1 && first <= 60, `wait of ${first} s`);
  await p.clock.fastForward(3_000);
  // Page-side code as strings: the tests are type-checked without the DOM library.
  const notice$ = `document.querySelector('[data-form="send"] .form-error')?.textContent`;
  await waitUntil(p, `Number((${notice$} ?? '').match(/in (\\d+) s/)?.[1] ?? 99) < ${first}`);
  await p.clock.fastForward((first + 1) * 1000);
  await waitUntil(p, `${notice$} === ''`);
  assert.is(await p.getByLabel('Text').inputValue(), 'one too many', 'the text was lost');
});

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
