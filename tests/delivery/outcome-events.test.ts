// MESSAGE_STATUS_EVENTS: under `all` a message's events are every status it passes through; under
// `outcomes` only how it ended. Driven through the Processor against real Postgres, one message
// per test, each try a process() call as a broker copy would make it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import type { StatusEvents } from '../../src/config.ts';
import { Pacer } from '../../src/delivery/pacer.ts';
import { Processor, type Outcome } from '../../src/delivery/processor.ts';
import { systemClock } from '../../src/delivery/types.ts';
import { AppError } from '../../src/errors.ts';
import { readEvents } from '../../src/store/events.ts';
import { acceptMessages } from '../../src/store/messages.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeConnection, RecordingSender, telegramCapabilities } from './fixtures.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const logger = winston.createLogger({ silent: true });

/** Accepts one message under `mode` and tries it until it is final; its events' statuses and the outcomes. */
async function run(mode: StatusEvents, behaviour: RecordingSender['behaviour']) {
  const owner = `o-${Date.now()}-${Math.random()}`;
  const connectionId = await makeConnection(db.sql, owner, { kind: 'user' });
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId, chat: '@c', text: 'once' }], { actor: owner, announce: mode === 'all' });
  const id = r!.message.id;
  const sender = new RecordingSender();
  sender.kinds.set(connectionId, 'user');
  sender.behaviour = behaviour;
  // The pacer is not under test: a fresh one per try lets a retry go at once instead of after its backoff.
  const outcomes: Outcome[] = [];
  for (let i = 0; i < 5 && !['sent', 'failed'].includes(outcomes.at(-1) ?? ''); i++) {
    const processor = new Processor({
      sql: db.sql, sender, capabilities: telegramCapabilities(), pacer: new Pacer({ clock: systemClock }), clock: systemClock, logger, statusEvents: mode,
    });
    outcomes.push(await processor.process({ id, claimed: true }));
  }
  const events = await readEvents(db.sql, owner, { afterPos: 0, limit: 100 });
  return { outcomes, statuses: events.map((e) => (e.data as { status: string }).status) };
}

const flaky: RecordingSender['behaviour'] = (_m, call) => (call < 3 ? new AppError('TG_UNAVAILABLE', 'try again') : { platformMessageId: '7' });

test('all: a message retried twice then sent has an event for every status it took', async () => {
  const r = await run('all', flaky);
  assert.equal(r.outcomes, ['retry', 'retry', 'sent']);
  assert.equal(r.statuses, ['queued', 'sending', 'queued', 'sending', 'queued', 'sending', 'sent']);
});

test('outcomes: the same message has one event, sent', async () => {
  const r = await run('outcomes', flaky);
  assert.equal(r.outcomes, ['retry', 'retry', 'sent']);
  assert.equal(r.statuses, ['sent']);
});

test('outcomes: a flood wait then a send is one event; a refusal is one event, failed', async () => {
  const flood = await run('outcomes', (_m, call) => (call < 2 ? new AppError('TG_API_429', 'Too Many Requests: retry after 0', { retryAfter: 0 }) : { platformMessageId: '8' }));
  assert.equal(flood.outcomes, ['flood', 'sent']);
  assert.equal(flood.statuses, ['sent']);
  const refused = await run('outcomes', () => new AppError('TG_CHAT_WRITE_FORBIDDEN', 'cannot write'));
  assert.equal(refused.outcomes, ['failed']);
  assert.equal(refused.statuses, ['failed']);
});

test.run();
