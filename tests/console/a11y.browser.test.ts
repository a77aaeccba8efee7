// axe-core (bundled from node_modules) on every page of the console, in English and Russian, at
// 1280×800 and 390×844: zero serious or critical violations and nothing wider than the window.
// Pages are reached with the keyboard.
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, botWithChat, type ConsoleWorld, describeViolations, openConsole, seriousViolations, startConsoleWorld, stopConsoleWorld } from '../helpers/console-browser.ts';

interface World extends ConsoleWorld { user: string; admin: string; bot: Awaited<ReturnType<typeof botWithChat>> }
const test = suite<World>('console accessibility (axe-core)');
const sizes = [[1280, 800], [390, 844]] as const;

test.before(async (w) => {
  Object.assign(w, await startConsoleWorld());
  w.user = w.token(`a11y-${randomBytes(4).toString('hex')}`);
  w.admin = w.token(`a11y-admin-${randomBytes(4).toString('hex')}`, true);
  w.bot = await botWithChat(w, w.user, 'Accessible chat');
  await api(w, w.user, 'POST', '/v1/messages', { connectionId: w.bot.connectionId, chat: w.bot.chatId, text: 'for the history page' });
});
test.after(async (w) => stopConsoleWorld(w));

const check = async (w: World, label: string): Promise<void> => {
  for (const [width, height] of sizes) {
    await w.page.setViewportSize({ width, height });
    const found = await seriousViolations(w.page);
    assert.equal(found.length, 0, `${label} at ${width}×${height}:\n${describeViolations(found)}`);
    const overflow = await w.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `${label} at ${width}×${height} is ${overflow} px wider than the window`);
  }
  await w.page.setViewportSize({ width: 1280, height: 800 });
};

// Tab until the element matching `selector` has focus, then Enter: the way a keyboard user gets there.
const tabTo = async (w: World, selector: string): Promise<void> => {
  for (let i = 0; i < 60; i++) {
    await w.page.keyboard.press('Tab');
    if (await w.page.evaluate(`document.activeElement?.matches(${JSON.stringify(selector)}) ?? false`)) {
      await w.page.keyboard.press('Enter');
      return;
    }
  }
  throw new Error(`Tab never reached ${selector}`);
};

test('the check itself finds a serious violation when there is one', async (w) => {
  await w.page.goto(`${w.app.url}/`);
  await w.page.locator('form.signin').waitFor();
  // An unlabelled text field (axe "label", critical), added through the DevTools protocol.
  await w.page.evaluate(`document.querySelector('form.signin').append(Object.assign(document.createElement('input'), { type: 'text' }))`);
  const found = await seriousViolations(w.page);
  assert.ok(found.some((v) => v.id === 'label'), describeViolations(found));
});

for (const lang of ['en', 'ru'] as const) {
  test(`sign-in page (${lang})`, async (w) => {
    await w.page.goto(`${w.app.url}/`);
    await w.page.evaluate(`sessionStorage.clear(); localStorage.setItem('integration-console.lang', '${lang}')`);
    await w.page.reload();
    await w.page.locator('form.signin').waitFor();
    assert.is(await w.page.evaluate('document.documentElement.lang'), lang);
    await check(w, `sign-in (${lang})`);
  });

  test(`connections page with a connection open (${lang})`, async (w) => {
    await openConsole(w, w.user);
    await tabTo(w, `.conn-row[data-connection-id="${w.bot.connectionId}"]`);
    await w.page.locator('[data-form="send"]').waitFor();
    await w.page.locator('.chat').first().waitFor();
    await check(w, `connections (${lang})`);
  });

  for (const view of ['messages', 'audit', 'privacy'] as const) {
    test(`${view} page (${lang})`, async (w) => {
      await tabTo(w, `.nav a[data-view="${view}"]`);
      await w.page.locator(`[data-page="${view}"]`).waitFor();
      if (view === 'messages') await w.page.locator('[data-page="messages"] .msg').first().waitFor();
      if (view === 'audit') await w.page.locator('[data-page="audit"] tbody tr').first().waitFor();
      if (view === 'privacy') await w.page.locator('[data-purpose="processing"]').waitFor();
      await check(w, `${view} (${lang})`);
      await w.page.evaluate('window.scrollTo(0, 0)');
    });
  }

  test(`actors page for an admin (${lang})`, async (w) => {
    await openConsole(w, w.admin);
    await tabTo(w, '.nav a[data-view="actors"]');
    await w.page.locator('[data-page="actors"] tbody tr').first().waitFor();
    await check(w, `actors (${lang})`);
  });
}

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
