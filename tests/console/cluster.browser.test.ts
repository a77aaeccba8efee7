// The admin cluster page in a real Chromium against the real daemon (GET /admin/cluster): nodes with
// their heartbeats and shards, every shard lease with owner and epoch, following a second node that
// joins and leaves; reached and read with the keyboard in English and Russian, 0 serious axe
// violations at 1280×800 and 390×844; a non-admin token never sees the page nor calls /admin.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import {
  api, artifactsDir, type ConsoleWorld, describeViolations, openConsole, seriousViolations, startConsoleWorld, stopConsoleWorld, waitUntil,
} from '../helpers/console-browser.ts';

interface ClusterView {
  node: string;
  nodes: { id: string; startedAt: string; lastSeenAt: string; shards: number[] }[];
  shards: { shard: number; owner: string | null; epoch: number; expiresAt: string | null }[];
}
interface World extends ConsoleWorld { user: string; admin: string; nodeId: string; shards: number; adminRequests: string[] }
const test = suite<World>('console cluster page in the browser');

test.before(async (w) => {
  const nodeId = `console-a-${randomBytes(3).toString('hex')}`;
  Object.assign(w, await startConsoleWorld({ NODE_ID: nodeId }));
  w.nodeId = nodeId;
  w.user = w.token(`cluster-${randomBytes(4).toString('hex')}`);
  w.admin = w.token(`cluster-admin-${randomBytes(4).toString('hex')}`, true);
  w.adminRequests = [];
  w.page.on('request', (r) => new URL(r.url()).pathname.startsWith('/admin/') && w.adminRequests.push(r.url()));
  // A single node ends up holding every shard.
  for (let i = 0; ; i++) {
    const r = await api<ClusterView>(w, w.admin, 'GET', '/admin/cluster');
    assert.is(r.status, 200, JSON.stringify(r.json));
    w.shards = r.json.shards.length;
    if (r.json.shards.every((s) => s.owner === nodeId)) break;
    if (i > 600) assert.unreachable(`the node never held every shard: ${JSON.stringify(r.json.shards)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
});

test.after(async (w) => {
  await w.page?.screenshot({ path: join(artifactsDir, 'cluster-last.png'), fullPage: true }).catch(() => undefined);
  await stopConsoleWorld(w);
});

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

const noSeriousViolations = async (w: World, label: string): Promise<void> => {
  for (const [width, height] of [[1280, 800], [390, 844]] as const) {
    await w.page.setViewportSize({ width, height });
    const found = await seriousViolations(w.page);
    assert.equal(found.length, 0, `${label} at ${width}×${height}:\n${describeViolations(found)}`);
    const overflow = await w.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `${label} at ${width}×${height} is ${overflow} px wider than the window`);
  }
  await w.page.setViewportSize({ width: 1280, height: 800 });
};

test('a non-admin token has no Cluster link, is sent home from its address, and never calls /admin', async (w) => {
  const p = w.page;
  await openConsole(w, w.user);
  assert.is(await p.locator('.nav a[data-view="cluster"]').count(), 0);
  await p.evaluate(`location.hash = 'view=cluster'`);
  await p.locator('.home').waitFor();
  assert.is(await p.locator('[data-page="cluster"]').count(), 0);
  assert.equal(w.adminRequests, []);
  const refused = await api(w, w.user, 'GET', '/admin/cluster');
  assert.is(refused.status, 403);
});

test('admin, by keyboard: this node with every shard, one lease row per shard with its owner and epoch', async (w) => {
  const p = w.page;
  const shards = w.shards;
  assert.ok(shards > 1, `${shards} shards`);
  await openConsole(w, w.admin);
  await tabTo(w, '.nav a[data-view="cluster"]');
  await p.getByRole('heading', { name: 'Cluster', exact: true }).waitFor();
  const node = p.locator(`[data-page="cluster"] tr[data-node-id="${w.nodeId}"]`);
  await node.waitFor();
  assert.is(await node.getAttribute('data-shard-count'), String(shards));
  assert.is(await node.locator('[data-this-node]').textContent(), 'this node');
  assert.match((await node.textContent()) ?? '', `0–${shards - 1}`);
  const truth = (await api<ClusterView>(w, w.admin, 'GET', '/admin/cluster')).json;
  await waitUntil(p, `document.querySelectorAll('[data-page="cluster"] tr[data-shard]').length === ${shards}`);
  for (const s of truth.shards) {
    const row = p.locator(`[data-page="cluster"] tr[data-shard="${s.shard}"]`);
    assert.is(await row.getAttribute('data-owner'), w.nodeId);
    assert.ok(Number(await row.getAttribute('data-epoch')) >= 1, `shard ${s.shard} epoch`);
  }
  assert.match((await p.locator('[data-cluster-summary]').textContent()) ?? '', `shards held: ${shards} of ${shards} · free: 0`);
  // The tables scroll with the keyboard: each is a focusable, labelled region.
  await p.getByRole('region', { name: 'Shard leases' }).focus();
  assert.is(await p.evaluate(`document.activeElement?.getAttribute('role')`), 'region');
});

test('admin: a second node joining shows up live with a share of the shards, and goes when it stops', async (w) => {
  const p = w.page;
  const second = `console-b-${randomBytes(3).toString('hex')}`;
  const config = loadConfig({
    HOST: '127.0.0.1', DATA_DIR: w.dataDir, DATABASE_URL: w.db.url, JWT_SECRET: w.secret, LOG_LEVEL: 'warn', NODE_ID: second,
    TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'e2e', TELEGRAM_DC: w.emu.mtproto, TELEGRAM_SERVER_KEYS: w.emu.serverKeys,
    TELEGRAM_BOT_API_URL: w.emu.botApi, OVERLOAD_LAG_MS: '60000',
  });
  const other = await startApp({ ...config, port: 0 });
  try {
    await p.locator(`[data-page="cluster"] tr[data-node-id="${second}"]`).waitFor({ timeout: 60_000 });
    // Rebalancing moves shards to it one at a time: the page shows them as they move.
    await waitUntil(p, `[...document.querySelectorAll('[data-page="cluster"] tr[data-shard]')].some((r) => r.dataset.owner === ${JSON.stringify(second)})`, 60_000);
    assert.is(await p.locator(`[data-page="cluster"] tr[data-node-id="${second}"] [data-this-node]`).count(), 0, 'the page was answered by the first node');
  } finally {
    await other.stop();
  }
  // A graceful stop hands its shards back: the node leaves the list and the first node holds everything again.
  await p.locator(`[data-page="cluster"] tr[data-node-id="${second}"]`).waitFor({ state: 'detached', timeout: 60_000 });
  await waitUntil(p, `[...document.querySelectorAll('[data-page="cluster"] tr[data-shard]')].every((r) => r.dataset.owner === ${JSON.stringify(w.nodeId)})`, 60_000);
});

for (const lang of ['en', 'ru'] as const) {
  test(`cluster page (${lang}): reached by keyboard, 0 serious axe violations at both sizes`, async (w) => {
    const p = w.page;
    await p.evaluate(`localStorage.setItem('integration-console.lang', '${lang}')`);
    await openConsole(w, w.admin);
    assert.is(await p.evaluate('document.documentElement.lang'), lang);
    await tabTo(w, '.nav a[data-view="cluster"]');
    await p.getByRole('heading', { name: lang === 'en' ? 'Cluster' : 'Кластер', exact: true }).waitFor();
    await p.locator(`[data-page="cluster"] tr[data-node-id="${w.nodeId}"]`).waitFor();
    await noSeriousViolations(w, `cluster (${lang})`);
  });
}

test('no script errors, no CSP violations, no request to another origin', (w) => {
  assert.equal(w.pageErrors, []);
  assert.equal(w.cspViolations, []);
  assert.equal(w.foreignRequests, []);
});

test.run();
