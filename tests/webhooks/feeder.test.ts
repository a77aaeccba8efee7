// Stored events become webhook deliveries through the feeder's own cursor: filters by type and
// connection apply, other owners' endpoints get nothing, a restart neither loses nor repeats, and two
// feeders on one database share the work through the lease. Real Postgres; no HTTP (the dispatcher's
// own suite covers sending).
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendEvent, appendEvents, eventsCommitted } from '../../src/store/events.ts';
import { insertEndpoint } from '../../src/store/webhooks.ts';
import { startWebhookFeeder } from '../../src/webhooks/feeder.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const endpoint = (owner: string, events: string[], connectionIds?: string[]) =>
  db.sql.begin((tx) => insertEndpoint(tx, { id: randomUUID(), owner, url: 'https://hooks.example.com/in', events, secret: 'sealed', ...(connectionIds ? { connectionIds } : {}) }));

const deliveries = (endpointId: string) =>
  db.sql<{ event_id: string; event_type: string; body: string }[]>`select event_id, event_type, body from webhook_deliveries where endpoint_id = ${endpointId} order by created_at, event_id`;

test('each stored event reaches the matching endpoints of its owner once, with its id and envelope', async () => {
  const owner = `feed-${randomUUID()}`;
  const conn = randomUUID();
  const all = await endpoint(owner, ['*']);
  const received = await endpoint(owner, ['message.received']);
  const oneConnection = await endpoint(owner, ['*'], [conn]);
  const stranger = await endpoint(`other-${randomUUID()}`, ['*']);
  const feeder = startWebhookFeeder({ sql: db.sql, pollMs: 20 });
  try {
    const a = await appendEvent(db.sql, { customerId: owner, type: 'message.received', connectionId: conn, data: { text: 'hi' } });
    const b = await appendEvent(db.sql, { customerId: owner, type: 'connection.status', connectionId: randomUUID(), data: { status: 'active' } });
    eventsCommitted();
    await feeder.caughtUp();
    assert.equal((await deliveries(all.id)).map((d) => d.event_id).sort(), [a.id, b.id].sort());
    assert.equal((await deliveries(received.id)).map((d) => d.event_id), [a.id]);
    assert.equal((await deliveries(oneConnection.id)).map((d) => d.event_id), [a.id]);
    assert.is((await deliveries(stranger.id)).length, 0);
    const body = JSON.parse((await deliveries(received.id))[0]!.body) as { type: string; data: unknown; timestamp: string };
    assert.equal(body, { type: 'message.received', timestamp: a.occurredAt, data: { text: 'hi' } });
  } finally {
    await feeder.stop();
  }
});

test('a restart resumes after the cursor: nothing lost, nothing added twice; two feeders share one cursor', async () => {
  const owner = `feed-${randomUUID()}`;
  const all = await endpoint(owner, ['*']);
  const first = startWebhookFeeder({ sql: db.sql, pollMs: 20 });
  await appendEvents(db.sql, Array.from({ length: 30 }, (_, i) => ({ customerId: owner, type: 'message.status' as const, data: { i } })));
  eventsCommitted();
  await first.caughtUp();
  await first.stop();
  // Stored while no feeder ran.
  await appendEvents(db.sql, Array.from({ length: 1200 }, (_, i) => ({ customerId: owner, type: 'message.status' as const, data: { i: 30 + i } })));
  const a = startWebhookFeeder({ sql: db.sql, pollMs: 20, batch: 100 });
  const b = startWebhookFeeder({ sql: db.sql, pollMs: 20, batch: 100 });
  try {
    eventsCommitted();
    await Promise.race([a.caughtUp(), b.caughtUp()]);
    const rows = await deliveries(all.id);
    assert.is(rows.length, 1230);
    assert.is(new Set(rows.map((r) => r.event_id)).size, 1230);
    assert.ok(a.stats().holding !== b.stats().holding, 'exactly one feeder holds the cursor');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test.run();
