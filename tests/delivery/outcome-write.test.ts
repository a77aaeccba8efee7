// Writes that follow markSending, against a Postgres cluster stopped under them (a private cluster:
// the shared one is never touched), and the dead-letter path that revives a row. A row left in
// `sending` means "may have been sent": a bot message there is failed as outcome unknown, never
// resent. So a message surely not sent must not be left there (it would be lost), and a message
// that may have been sent must not be put back in the queue (it would go out twice). The sent write
// above all: the platform already has the message, so a failed write must never turn into a resend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import postgres from 'postgres';
import winston from 'winston';
import { Pacer, type PaceTarget } from '../../src/delivery/pacer.ts';
import { Processor } from '../../src/delivery/processor.ts';
import { systemClock } from '../../src/delivery/types.ts';
import { AppError } from '../../src/errors.ts';
import { acceptMessages } from '../../src/store/messages.ts';
import { migrate } from '../../src/store/migrate.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-services.ts';
import { makeConnection, RecordingSender, telegramCapabilities, waitFor, type ConnectionKind } from './fixtures.ts';

let pg: PrivatePostgres;
let sql: postgres.Sql;
// postgres.js holds a query while it waits out its reconnect backoff (up to 20 s), so a write can
// hang through a short outage instead of failing; this client fails each write at once (no backoff).
let failFast: postgres.Sql;
const logger = winston.createLogger({ silent: true });

test.before(async () => {
  pg = await startPrivatePostgres();
  const url = await pg.createDatabase('outcome_write');
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

async function message(kind: ConnectionKind = 'bot') {
  const owner = `o-${Date.now()}-${Math.random()}`;
  const connectionId = await makeConnection(sql, owner, { kind });
  const [r] = await acceptMessages(sql, owner, [{ connectionId, chat: '@c', text: 'once' }], { actor: owner });
  const sender = new RecordingSender();
  sender.kinds.set(connectionId, kind);
  return { id: r!.message.id, sender };
}

const processor = (sender: RecordingSender, leaseMs = 60_000, db = sql, pacer = new Pacer({ clock: systemClock })) =>
  new Processor({ sql: db, sender, capabilities: telegramCapabilities(), pacer, clock: systemClock, logger, leaseMs });

const row = async (id: string) =>
  (await sql<{ status: string; attempts: number; platform_message_id: string | null; error: { code: string; message: string } | null }[]>`
    select status, attempts, platform_message_id, error from messages where id = ${id}`)[0]!;

// Settles once Postgres is back from the last outage; awaited after every test, so a failed
// assertion does not leave the next test without a database.
let restarted: Promise<void> = Promise.resolve();
test.after.each(() => restarted);

/** Stops Postgres now and starts it again after `ms` (see `restarted`). */
async function outage(ms: number): Promise<void> {
  await pg.stop();
  restarted = new Promise((r) => setTimeout(r, ms)).then(() => pg.start());
}

// Postgres is down from the moment the platform answers until 8 s later: longer than the ~6 s the
// sent write used to be retried, after which the failure was handled as a failed send and
// rescheduled (12 of 1000 bot messages went out twice in faults.e2e's Postgres restart).
test('a bot message sent while Postgres restarts is recorded once it is back, and sent once', async () => {
  const { id, sender } = await message();
  sender.behaviour = async () => {
    await outage(8000);
    return { platformMessageId: 'tg-1' };
  };
  const outcome = await processor(sender).process({ id, claimed: true });
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
  const { id, sender } = await message();
  sender.behaviour = async () => {
    await outage(4000);
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

// Telegram answered with a flood wait: nothing was posted. Postgres is down for 3 s from that
// answer; the reschedule used to fail at once, leaving `sending`, and the next copy failed the
// never-sent bot message as "outcome unknown".
test('a flood wait answered while Postgres restarts goes back to queued, then is sent once', async () => {
  const { id, sender } = await message();
  sender.behaviour = async (msg, call) => {
    if (call > 1) return { platformMessageId: 'tg-flood' };
    await outage(3000);
    throw new AppError('TG_API_429', 'Too Many Requests: retry after 1', { retryAfter: 1 });
  };
  const outcome = await processor(sender, 60_000, failFast).process({ id, claimed: true });
  await restarted;
  assert.is(outcome, 'flood');
  let r = await row(id);
  assert.is(r.status, 'queued');
  assert.is(r.error?.code, 'TG_API_429');

  assert.is(await processor(sender).process({ id, claimed: true }), 'sent');
  r = await row(id);
  assert.is(r.status, 'sent');
  assert.is(r.platform_message_id, 'tg-flood');
  assert.is(sender.calls.length, 2, 'the refused call and the one that posted');
});

// A flood wait for the chat lands between markSending and the call (another message's answer): the
// call gate says no and nothing is sent. Postgres goes down at that moment, for 3 s.
test('a call held back by the gate while Postgres restarts goes back to queued, then is sent once', async () => {
  const { id, sender } = await message();
  class FloodedPacer extends Pacer {
    override async beforeCall(t: PaceTarget, signal?: AbortSignal) {
      await outage(3000);
      this.pause(t, 30, 'chat'); // past the gate's 5 s hold: the gate defers instead of waiting
      return super.beforeCall(t, signal);
    }
  }
  const outcome = await processor(sender, 60_000, failFast, new FloodedPacer({ clock: systemClock })).process({ id, claimed: true });
  await restarted;
  assert.is(outcome, 'deferred');
  assert.is((await row(id)).status, 'queued');
  assert.is(sender.calls.length, 0);

  assert.is(await processor(sender).process({ id, claimed: true }), 'sent');
  assert.is((await row(id)).status, 'sent');
  assert.is(sender.calls.length, 1);
});

// A permanent refusal is as final as a send: it must be stored with its own code, not turned into
// "outcome unknown" by the next copy.
test('a permanent refusal answered while Postgres restarts is stored as that failure', async () => {
  const { id, sender } = await message();
  sender.behaviour = async () => {
    await outage(3000);
    throw new AppError('TG_CHAT_WRITE_FORBIDDEN', 'Forbidden: bot was kicked from the channel chat');
  };
  const outcome = await processor(sender, 60_000, failFast).process({ id, claimed: true });
  await restarted;
  assert.is(outcome, 'failed');
  const r = await row(id);
  assert.is(r.status, 'failed');
  assert.is(r.error?.code, 'TG_CHAT_WRITE_FORBIDDEN');
  assert.is(sender.calls.length, 1);
});

// The send succeeded, the sent write gave up (past half the lease), copies kept failing until the
// broker dead-lettered the message. The row is still `sending`: the dead letter used to reschedule
// it, and the relay's fresh copy posted the bot message a second time.
test('a dead-lettered bot message left in `sending` is failed as outcome unknown, never resent', async () => {
  const { id, sender } = await message();
  sender.behaviour = async (msg, call) => {
    if (call === 1) await outage(3000);
    return { platformMessageId: `tg-${call}` };
  };
  const err = await processor(sender, 2000, failFast).process({ id, claimed: true }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'the sent write gave up');
  await restarted;
  assert.is((await row(id)).status, 'sending');

  const p = processor(sender);
  assert.is(await p.deadLettered(id), 'uncertain');
  const r = await row(id);
  assert.is(r.status, 'failed');
  assert.is(r.error?.code, 'OUTCOME_UNKNOWN');
  assert.match(r.error!.message, /outcome unknown/);
  // Any copy still around (the relay, a redelivery) finds it final.
  assert.is(await p.process({ id, claimed: true }), 'duplicate');
  assert.is(sender.calls.length, 1);
});

// The dead letter of an earlier copy arrives while a later copy is mid-send in this process. It used
// to act at once: a user row was rescheduled (the send's sent write then found no `sending` row, and
// the queued row went out again), a bot row would be failed although the send is succeeding.
for (const kind of ['bot', 'user'] as const) {
  test(`a dead letter waits for the ${kind} send in flight: the row ends sent, one call`, async () => {
    const { id, sender } = await message(kind);
    let answer!: () => void;
    const answered = new Promise<void>((r) => { answer = r; });
    sender.behaviour = async (msg, call) => {
      await answered;
      return { platformMessageId: `tg-${kind}-${call}` };
    };
    const p = processor(sender);
    const sending = p.process({ id, claimed: true });
    await waitFor(() => sender.calls.length === 1, 5000, 'the send to start');
    const dead = p.deadLettered(id);
    // Long enough for the dead letter's read and write (a few ms) had it not waited.
    await new Promise((r) => setTimeout(r, 300));
    assert.is((await row(id)).status, 'sending', 'nothing touched the row during the send');
    answer();
    assert.is(await sending, 'sent');
    assert.is(await dead, 'duplicate');
    const r = await row(id);
    assert.is(r.status, 'sent');
    assert.is(r.platform_message_id, `tg-${kind}-1`);
    // Any later copy finds it final.
    assert.is(await p.process({ id, claimed: true }), 'duplicate');
    assert.is(sender.calls.length, 1);
  });
}

test.run();
