// Russian and English in a real Chromium: the language comes from the browser (ru-RU here), the switch
// changes it and is remembered across reloads, and server error codes read as sentences of the chosen
// language, from the catalogues in src/console/app/i18n.
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type ConsoleWorld, openConsole, startConsoleWorld, stopConsoleWorld } from '../helpers/console-browser.ts';

interface World extends ConsoleWorld { user: string }
const test = suite<World>('console languages in the browser');

test.before(async (w) => {
  Object.assign(w, await startConsoleWorld({}, 'ru-RU'));
  w.user = w.token(`i18n-${randomBytes(4).toString('hex')}`);
});
test.after(async (w) => stopConsoleWorld(w));

test('a Russian browser gets the Russian console, sign-in page included', async (w) => {
  const p = w.page;
  await p.goto(w.app.url);
  await p.getByRole('heading', { name: 'Вход' }).waitFor();
  assert.is(await p.evaluate('document.documentElement.lang'), 'ru');
  await openConsole(w, w.user);
  await p.getByRole('heading', { name: 'Консоль интеграций' }).waitFor();
  await p.getByRole('heading', { name: 'Добавить подключение' }).waitFor();
  assert.is(await p.locator('.live').textContent(), 'онлайн');
});

test('a server error code reads as a Russian sentence, a client check too', async (w) => {
  const p = w.page;
  await p.getByRole('radio', { name: 'Бот' }).check();
  await p.getByLabel('Токен бота').fill('nonsense');
  await p.getByRole('button', { name: 'Добавить бота' }).click();
  await p.locator('[data-form="bot"] .field-error', { hasText: 'Токен бота выглядит так' }).waitFor();
  await p.getByLabel('Токен бота').fill('123456:not-a-real-token');
  await p.getByRole('button', { name: 'Добавить бота' }).click();
  await p.locator('[data-form="bot"] .field-error', { hasText: 'TG_BOT_TOKEN_INVALID — Telegram не знает такого токена бота' }).waitFor();
});

test('the switch turns the console English, and the choice outlives a reload; the token stays', async (w) => {
  const p = w.page;
  await p.getByLabel('Язык').selectOption('en');
  await p.getByRole('heading', { name: 'Integration console' }).waitFor();
  await p.locator('.live--open').waitFor();
  assert.is(await p.evaluate('document.documentElement.lang'), 'en');
  await p.reload();
  await p.getByRole('heading', { name: 'Add a connection' }).waitFor();
  await p.getByLabel('Language').selectOption('ru');
  await p.getByRole('heading', { name: 'Добавить подключение' }).waitFor();
});

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
