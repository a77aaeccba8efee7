// The write that records a delivered message, against a Postgres cluster stopped under it (a private
// cluster: the shared one is never touched). The platform already has the message, so a failed
// write must never turn into a resend: it is retried until the database is back, and past that it
// leaves the row in `sending`, where a bot message is failed as "outcome unknown" and never resent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import postgres from 'postgres';
import winston from 'winston';
import { Pacer } from '../../src/delivery/pacer.ts';
import { Processor } from '../../src/delivery/processor.ts';
import { systemClock } from '../../src/delivery/types.ts';
import { acceptMessages } from '../../src/store/messages.ts';
import { migrate } from '../../src/store/migrate.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-services.ts';
import { makeConnection, RecordingSender } from './fixtures.ts';

let pg: PrivatePostgres;
let sql: postgres.Sql;
// postgres.js holds a query while it waits out its reconnect backoff (up to 20 s), so a write can
// hang through a short outage instead of failing; this client fails each write at once (no backoff).
let failFast: postgres.Sql;
const logger = winston.createLogger({ silent: true });

test.before(async () => {
  pg = await startPrivatePostgres();
  const url = await pg.createDatabase('sent_write');
  sql = postgres(url, { max: 4, onnotice: () => undefined });
  failFast = postgres(url, { max: 2, backoff: () => 0, connect_timeout: 2, onnotice: () => undefined });
  await migrate(sql);
  await failFast`select 1`; // fetches the array types sql.array() needs, as the daemon's migrate does
});

test.after(async () => {
  await sql?.end({ timeout: 1 });
  await failFast?.end({ timeout: 1 });
  await pg?.close();
});

async function botMessage() {
  const owner = `o-${Date.now()}-${Math.random()}`;
  const connectionId = await makeConnection(sql, owner, { kind: 'bot' });
  const [r] = await acceptMessages(sql, owner, [{ connectionId, chat: '@c', text: 'once' }], { actor: owner });
  const sender = new RecordingSender();
  sender.kinds.set(connectionId, 'bot');
  return { id: r!.message.id, sender };
}

const processor = (sender: RecordingSender, leaseMs: number, db = sql) =>
  new Processor({ sql: db, sender, pacer: new Pacer({ clock: systemClock }), clock: systemClock, logger, leaseMs });

const row = async (id: string) =>
  (await sql<{ status: string; attempts: number; platform_message_id: string | null; error: { code: string; message: string } | null }[]>`
    select status, attempts, platform_message_id, error from messages where id = ${id}`)[0]!;

// Postgres is down from the moment the platform answers until 8 s later: longer than the ~6 s the
// write used to be retried, after which the failure was handled as a failed send and rescheduled.
test('a bot message sent while Postgres restarts is recorded once it is back, and sent once', async () => {
  const { id, sender } = await botMessage();
  let restarted: Promise<void> | undefined;
  sender.behaviour = async () => {
    await pg.stop();
    restarted = new Promise((r) => setTimeout(r, 8000)).then(() => pg.start());
    return { platformMessageId: 'tg-1' };
  };
  const outcome = await processor(sender, 60_000).process({ id, claimed: true });
  await restarted;
  assert.is(outcome, 'sent');
  const r = await row(id);
  assert.is(r.status, 'sent');
  assert.is(r.platform_message_id, 'tg-1');
  assert.is(sender.calls.length, 1);
});

// Past half the lease the error propagates (the broker copy comes back): the row stays `sending`,
// and the next copy fails the bot message rather than sending it again.
test('a sent write still failing after half the lease leaves `sending`; the next copy fails it, no resend', async () => {
  const { id, sender } = await botMessage();
  let restarted: Promise<void> | undefined;
  sender.behaviour = async () => {
    await pg.stop();
    restarted = new Promise((r) => setTimeout(r, 4000)).then(() => pg.start());
    return { platformMessageId: 'tg-2' };
  };
  const err = await processor(sender, 2000, failFast).process({ id, claimed: true }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'the database error propagates');
  await restarted;
  assert.is((await row(id)).status, 'sending');
  assert.is(await processor(sender, 2000).process({ id, claimed: true }), 'uncertain');
  const r = await row(id);
  assert.is(r.status, 'failed');
  assert.match(r.error!.message, /outcome unknown/);
  assert.is(sender.calls.length, 1);
});

test.run();
