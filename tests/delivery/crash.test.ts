// kill -9 in the middle of sending, then a restart: every accepted message ends sent exactly once as
// far as the chat can tell, or (bots only, when the kill hit between "sending" and "sent") failed
// with an error. User-account resends carry the same random_id, which Telegram drops.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from 'rabbitmq-client';
import { deleteTopology, topology } from '../../src/delivery/topology.ts';
import { acceptMessages } from '../../src/store/messages.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeConnection, waitFor } from './fixtures.ts';

const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const worker = new URL('./crash-worker.ts', import.meta.url).pathname;

function spawnWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', worker], { env: { ...process.env, ...env, NODE_ENV: 'test' }, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(child); });
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}

for (const mode of ['broker', 'embedded'] as const) {
  test(`kill -9 mid-run (${mode}): 0 lost, 0 duplicated`, async () => {
    const db: TestDatabase = await createTestDatabase({ max: 5 });
    const prefix = `crash-${randomUUID().slice(0, 8)}`;
    const log = join(tmpdir(), `${prefix}.sent`);
    const children: ChildProcess[] = [];
    const env = { DB_URL: db.url, PREFIX: prefix, SENT_LOG: log, ...(mode === 'broker' ? { AMQP_URL: amqpUrl } : {}) };
    try {
      const o = `o-${randomUUID()}`;
      const user = await makeConnection(db.sql, o, { kind: 'user', shards: 2 });
      const bot = await makeConnection(db.sql, o, { kind: 'bot', shards: 2 });
      const inputs = Array.from({ length: 400 }, (_, i) => ({ connectionId: i % 2 ? bot : user, chat: `c${i % 200}`, text: `k${i}` }));
      const ids = (await acceptMessages(db.sql, o, inputs, { actor: o })).map((r) => r.message.id);
      const lines = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);

      const t0 = Date.now();
      const first = await spawnWorker(env);
      children.push(first);
      await waitFor(() => lines().length >= 120, 30_000, 'first sends');
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));

      const second = await spawnWorker(env);
      children.push(second);
      await waitFor(async () => {
        const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where status in ('queued', 'sending')`;
        return n === 0;
      }, 60_000, 'every row final after the restart');
      second.kill('SIGTERM');
      await waitFor(() => second.exitCode !== null || second.signalCode !== null, 20_000, 'graceful stop');
      assert.is(second.exitCode, 0, 'SIGTERM drained and exited cleanly');

      const rows = await db.sql<{ id: string; status: string; kind: string; error: { code: string } | null }[]>`
        select m.id, m.status, c.kind, m.error from messages m join connections c on c.id = m.connection_id`;
      const sends = new Map<string, number>();
      for (const l of lines()) { const id = l.split(' ')[0]!; sends.set(id, (sends.get(id) ?? 0) + 1); }
      const lost = rows.filter((r) => r.status === 'sent' && !sends.has(r.id));
      const botDuplicates = rows.filter((r) => r.kind === 'bot' && (sends.get(r.id) ?? 0) > 1);
      const userResends = rows.filter((r) => r.kind === 'user' && (sends.get(r.id) ?? 0) > 1).length;
      const inDoubt = rows.filter((r) => r.status === 'failed');
      console.log(`  ${mode} (${Date.now() - t0} ms): ${rows.length} messages, ${sends.size} reached the chat, user resends deduped by random_id: ${userResends}, bot messages failed in doubt: ${inDoubt.length}`);
      assert.is(rows.length, ids.length);
      assert.equal(lost.map((r) => r.id), [], 'every sent row reached the chat');
      assert.equal(botDuplicates.map((r) => r.id), [], 'no bot message sent twice');
      assert.ok(inDoubt.every((r) => r.kind === 'bot' && r.error?.code === 'OUTCOME_UNKNOWN'), 'only bot messages in doubt fail');
      assert.ok(rows.filter((r) => r.status === 'sent').every((r) => sends.has(r.id)));
      // Only what was in flight at the kill can be in doubt: the worker runs at most 16 sends at once
      // (per queue with the broker, and the one bot is on one queue), and a slot is held until its outcome is written.
      assert.ok(inDoubt.length <= 16, `no more in doubt than were in flight (${inDoubt.length})`);

      // Every status change was stored with its event, the kill notwithstanding: per message, the
      // events hold the statuses it went through in order (queued first, the row's status last) and
      // one `sending` per attempt the row counts (each markSending is one statement with its event).
      const trail = new Map<string, string[]>();
      for (const e of await db.sql<{ id: string; status: string }[]>`
        select data->>'id' as id, data->>'status' as status from events where type = 'message.status' order by pos`) {
        trail.set(e.id, [...(trail.get(e.id) ?? []), e.status]);
      }
      const attempts = new Map((await db.sql<{ id: string; attempts: number }[]>`select id, attempts from messages`).map((r) => [r.id, r.attempts]));
      const broken = rows.filter((r) => {
        const t = trail.get(r.id) ?? [];
        return t[0] !== 'queued' || t.at(-1) !== r.status || t.filter((x) => x === 'sending').length !== attempts.get(r.id)
          || t.slice(1, -1).some((x) => x !== 'sending' && x !== 'queued');
      });
      assert.equal(broken.map((r) => [r.id, r.status, attempts.get(r.id), trail.get(r.id)]).slice(0, 5), [], 'each message\'s events are its status sequence');
    } finally {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      if (mode === 'broker') {
        const admin = new Connection(amqpUrl);
        await deleteTopology(admin, topology({ prefix, shards: 2 })).catch(() => undefined);
        await admin.close();
      }
      rmSync(log, { force: true });
      await db.drop();
    }
  });
}

test.run();
