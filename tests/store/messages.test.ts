import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../src/errors.ts';
import {
  acceptMessages, claimDue, getMessage, getMessagesForDelivery, listMessages, listUnpublished, markFailed, markPublished, markSendingMany,
  markSentMany, rescheduleMessage, toApiMessage, usedIdempotencyKeys,
} from '../../src/store/messages.ts';
import { readEvents } from '../../src/store/events.ts';
import postgres from 'postgres';
import { countWire, wireDelta } from '../bench/wire-counts.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { makeConnection } from '../delivery/fixtures.ts';

let db: TestDatabase;
test.before(async () => { db = await createTestDatabase(); });
test.after(async () => { await db.drop(); });

const rejects = async (p: Promise<unknown>, code: string) => {
  try { await p; } catch (err) {
    assert.instance(err, AppError);
    assert.is((err as AppError).code, code);
    return;
  }
  assert.unreachable(`expected ${code}`);
};

test('same idempotency key and body twice → one row, second flagged replay', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const input = { connectionId: conn, chat: '@chan', text: 'hello', idempotencyKey: 'k1' };
  const [a] = await acceptMessages(db.sql, owner, [input], { actor: owner });
  const [b] = await acceptMessages(db.sql, owner, [input], { actor: owner });
  assert.is(a!.replay, false);
  assert.is(b!.replay, true);
  assert.is(b!.message.id, a!.message.id);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${owner}`;
  assert.is(n, 1);
  await rejects(acceptMessages(db.sql, owner, [{ ...input, text: 'other' }], { actor: owner }), 'IDEMPOTENCY_CONFLICT');
  // Another owner may use the same key independently.
  const other = `o-${randomUUID()}`;
  const conn2 = await makeConnection(db.sql, other);
  const [c] = await acceptMessages(db.sql, other, [{ ...input, connectionId: conn2 }], { actor: other });
  assert.is(c!.replay, false);
});

test('an accept is two writes to Postgres (one without keys, stored with its audit row and queued event); with a key, one more', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  // Counted on a client opened after counting starts (the counter sets older connections aside).
  const wire = countWire({ pgPort: Number(new URL(db.url).port || 5432), amqpPort: -1, apiPort: () => undefined });
  const own = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    await own`select 1`;
    // Each shape once first: postgres.js describes a statement it has not prepared on a connection yet (a round trip more).
    await acceptMessages(own, owner, [{ connectionId: conn, chat: '@a', text: 'warm' }, { connectionId: conn, chat: '@a', text: 'warm' }], { actor: owner });
    await acceptMessages(own, owner, [{ connectionId: conn, chat: '@a', text: 'warm', idempotencyKey: 'w0' }], { actor: owner });
    const accept = async (inputs: Parameters<typeof acceptMessages>[2]) => {
      const before = wire.snapshot();
      const results = await acceptMessages(own, owner, inputs, { actor: owner });
      return { results, writes: wireDelta(before, wire.snapshot()).writes.postgres };
    };
    // BEGIN + owner lock + quota read, then insert + audit + events + COMMIT.
    const plain = await accept([{ connectionId: conn, chat: '@a', text: 'one' }, { connectionId: conn, chat: '@a', text: 'two' }]);
    assert.is(plain.writes, 2, 'writes without idempotency keys');
    assert.equal(plain.results.map((r) => [r.message.text, r.replay]), [['one', false], ['two', false]]);
    const keyed = await accept([{ connectionId: conn, chat: '@a', text: 'three', idempotencyKey: 'w1' }]);
    assert.is(keyed.writes, 3, 'writes with a key: the insert, then the events with COMMIT');
    assert.is(keyed.results[0]!.replay, false);
  } finally {
    wire.stop();
    await own.end();
  }
  const events = (await readEvents(db.sql, owner, { afterPos: 0, limit: 10 })).filter((e) => (e.data as { text: string }).text !== 'warm');
  // Within a batch, events come in message id order.
  assert.equal(events.map((e) => [e.type, (e.data as { text: string; status: string }).text, (e.data as { status: string }).status]).sort(),
    [['message.status', 'one', 'queued'], ['message.status', 'three', 'queued'], ['message.status', 'two', 'queued']]);
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from audit where owner = ${owner} and action = 'message.accepted'`;
  assert.is(n, 6, 'one audit row per message');
});

test('the accept of one connection is planned once per database connection, a batch of several connections as before', async () => {
  const owner = `o-${randomUUID()}`;
  const [a, b] = [await makeConnection(db.sql, owner), await makeConnection(db.sql, owner)];
  const stranger = await makeConnection(db.sql, `o-${randomUUID()}`);
  // A table with statistics, as in production: on an empty, never analyzed one both forms look alike to the planner.
  await db.sql`insert into connections (id, owner, platform, kind, shard, login)
    select gen_random_uuid(), 'filler-' || (g % 50), 'telegram', 'bot', g % 64, '{}' from generate_series(1, 1000) g`;
  await db.sql`analyze connections`;
  // One database connection, so every run meets the same prepared statement (pg_prepared_statements is per session).
  const own = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    for (let i = 0; i < 8; i++) await acceptMessages(own, owner, [{ connectionId: a, chat: '@a', text: `one ${i}` }], { actor: owner });
    const plans = await own<{ generic: number; custom: number }[]>`
      select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
      where statement like '%pg_advisory_xact_lock%' and statement like '%left join connections%' and statement not like '%pg_prepared_statements%'`;
    // Postgres plans a prepared statement anew for its first five runs, then keeps its generic plan
    // when that costs no more: the equality form gets there, `= any(array)` stayed custom (8 of 8).
    assert.equal(plans.map((p) => p.custom), [5]);
    assert.ok(plans[0]!.generic >= 3, `generic plans: ${plans[0]!.generic}`);
    const both = await acceptMessages(own, owner, [{ connectionId: a, chat: '@a', text: 'x' }, { connectionId: b, chat: '@b', text: 'y' }], { actor: owner });
    assert.equal(both.map((r) => r.message.connection_id), [a, b]);
    await rejects(acceptMessages(own, owner, [{ connectionId: stranger, chat: '@a', text: 'z' }], { actor: owner }), 'NOT_FOUND');
    await rejects(acceptMessages(own, owner, [{ connectionId: a, chat: '@a', text: 'z' }, { connectionId: stranger, chat: '@a', text: 'z' }], { actor: owner }), 'NOT_FOUND');
  } finally {
    await own.end();
  }
});

test('the accept\'s count and a batch naming several connections are planned once per database connection, whoever the owner', async () => {
  const owners = Array.from({ length: 8 }, (_, i) => `o-${i}-${randomUUID()}`);
  const conns = new Map<string, string[]>();
  for (const o of owners) conns.set(o, [await makeConnection(db.sql, o), await makeConnection(db.sql, o)]);
  // Backlogs of different sizes, with statistics: a plan made for one owner's count costs differently from the next one's.
  for (const [i, o] of owners.entries()) {
    // Published and due tomorrow: the relay's and the claimers' queries of the other tests do not see them.
    await db.sql`insert into messages (id, owner, connection_id, chat, text, shard, published_at, available_at)
      select gen_random_uuid(), ${o}, ${conns.get(o)![0]!}, '@x', 'backlog ' || g, 1, now(), now() + interval '1 day'
      from generate_series(1, ${1 + i * i * 40}) g`;
  }
  await db.sql`analyze messages`;
  await db.sql`analyze connections`;
  const own = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    for (const o of owners) {
      const [a, b] = conns.get(o)!;
      const r = await acceptMessages(own, o, [{ connectionId: a!, chat: '@a', text: 'x' }, { connectionId: b!, chat: '@b', text: 'y' }], { actor: o });
      assert.equal(r.map((x) => x.message.connection_id), [a, b]);
    }
    const plans = await own<{ statement: string; generic: number; custom: number }[]>`
      select statement, generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
      where (statement like '%count(*)::int from messages where owner%' or statement like '%left join connections%')
        and statement not like '%pg_prepared_statements%'`;
    assert.is(plans.length, 2);
    for (const p of plans) assert.equal([p.custom, p.generic], [5, 3], p.statement.slice(0, 160));
  } finally {
    await own.end();
    await db.sql`delete from messages where owner = any(${owners})`;
  }
});

test('the delivery\'s batched statements are planned once per database connection whatever their batch sizes', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await db.sql`insert into messages (id, owner, connection_id, chat, text, shard, status)
    select gen_random_uuid(), 'filler', ${conn}, '@x', 'filler ' || g, 1, 'sent' from generate_series(1, 5000) g`;
  await db.sql`analyze messages`;
  const own = postgres(db.url, { max: 1, onnotice: () => undefined });
  try {
    await own`select 1`; // postgres.js reads the array types on its first query; sql.array needs them
    // Batch sizes vary as loop turns do; with the arrays as plain parameters every run was planned anew
    // (its estimate follows the array's length), at 250–600 µs a statement with its events.
    for (const n of [1, 3, 2, 5, 1, 4, 2, 6, 1, 3]) {
      const acc = await acceptMessages(db.sql, owner, Array.from({ length: n }, (_, k) => ({ connectionId: conn, chat: '@a', text: `m${n} ${k}` })), { actor: owner });
      const ids = acc.map((r) => r.message.id);
      assert.is(await markPublished(own, acc.map((r) => ({ id: r.message.id, seq: r.message.publish_seq }))), n);
      assert.is((await getMessagesForDelivery(own, ids)).size, n);
      assert.is((await markSendingMany(own, acc.map((r) => ({ id: r.message.id, seq: r.message.publish_seq })), 60_000)).size, n);
      assert.is((await markSentMany(own, ids.map((id) => ({ id, platformMessageId: `p-${id}` })))).size, n);
    }
    const plans = await own<{ statement: string; generic: number; custom: number }[]>`
      select statement, generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
      where statement like '%from messages where id = any%' and statement not like '%pg_prepared_statements%'`;
    assert.is(plans.length, 4, 'markPublished, getMessagesForDelivery, markSendingMany, markSentMany');
    for (const p of plans) assert.equal([p.custom, p.generic], [5, 5], p.statement.slice(0, 200));
  } finally {
    await own.end();
  }
});

test('usedIdempotencyKeys: owner-scoped', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '1', text: 't', idempotencyKey: 'used' }], { actor: owner });
  assert.equal([...await usedIdempotencyKeys(db.sql, owner, ['used', 'fresh'])], ['used']);
  assert.is((await usedIdempotencyKeys(db.sql, `o-${randomUUID()}`, ['used'])).size, 0);
});

test('concurrent requests with one key store one row', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const input = { connectionId: conn, chat: '1', text: 'race', idempotencyKey: 'same' };
  const rs = await Promise.all(Array.from({ length: 5 }, () => acceptMessages(db.sql, owner, [input], { actor: owner })));
  assert.is(new Set(rs.map((r) => r[0]!.message.id)).size, 1);
  assert.is(rs.filter((r) => !r[0]!.replay).length, 1);
});

test('batch is all-or-none, audit rows commit with the messages', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const good = { connectionId: conn, chat: '@a', text: 'ok' };
  await rejects(acceptMessages(db.sql, owner, [good, { ...good, connectionId: randomUUID() }], { actor: owner }), 'NOT_FOUND');
  await rejects(acceptMessages(db.sql, owner, [good, { ...good, text: '' }], { actor: owner }), 'VALIDATION_ERROR');
  await rejects(acceptMessages(db.sql, owner, [good, { ...good, idempotencyKey: 'x' }, { ...good, text: 'different', idempotencyKey: 'x' }], { actor: owner }), 'IDEMPOTENCY_CONFLICT');
  const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from messages where owner = ${owner}`;
  assert.is(n, 0);
  const [{ a }] = await db.sql<{ a: number }[]>`select count(*)::int as a from audit where owner = ${owner}`;
  assert.is(a, 0);
  // The conflict is found after the insert that also stored the `queued` events: rolled back together.
  assert.is((await readEvents(db.sql, owner, { afterPos: 0, limit: 100 })).length, 0, 'no event of a batch rolled back');

  const rs = await acceptMessages(db.sql, owner, [good, { ...good, priority: 'high' }], { actor: 'user-1' });
  const audit = await db.sql<{ actor: string; action: string; target: string }[]>`select actor, action, target from audit where owner = ${owner} order by id`;
  assert.equal(audit.map((r) => r.target).sort(), rs.map((r) => r.message.id).sort());
  assert.ok(audit.every((r) => r.action === 'message.accepted' && r.actor === 'user-1'));
  const events = await readEvents(db.sql, owner, { afterPos: 0, limit: 100 });
  assert.equal(events.map((e) => [e.type, (e.data as { id: string }).id, (e.data as { status: string }).status]).sort(),
    rs.map((r) => ['message.status', r.message.id, 'queued']).sort(), 'one queued event per message, committed with it');
});

test('inactive connection → CONNECTION_NOT_ACTIVE', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner, { status: 'error' });
  await rejects(acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '1', text: 't' }], { actor: owner }), 'CONNECTION_NOT_ACTIVE');
});

test('owner scoping: another owner\'s message and connection are invisible', async () => {
  const owner = `o-${randomUUID()}`;
  const intruder = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '1', text: 'mine' }], { actor: owner });
  assert.ok(await getMessage(db.sql, owner, r!.message.id));
  assert.is(await getMessage(db.sql, intruder, r!.message.id), undefined);
  assert.is(await getMessage(db.sql, owner, 'not-a-uuid'), undefined);
  assert.is((await listMessages(db.sql, intruder, { limit: 10 })).items.length, 0);
  await rejects(acceptMessages(db.sql, intruder, [{ connectionId: conn, chat: '1', text: 'x' }], { actor: intruder }), 'NOT_FOUND');
});

test('listMessages: keyset pages, filters, newest first', async () => {
  const owner = `o-${randomUUID()}`;
  const c1 = await makeConnection(db.sql, owner);
  const c2 = await makeConnection(db.sql, owner);
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) {
    const [r] = await acceptMessages(db.sql, owner, [{ connectionId: i % 2 ? c2 : c1, chat: '1', text: `m${i}` }], { actor: owner });
    ids.push(r!.message.id);
  }
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listMessages(db.sql, owner, { limit: 3, ...(cursor ? { cursor } : {}) });
    seen.push(...page.items.map((m) => m.id));
    cursor = page.nextCursor;
  } while (cursor);
  assert.equal(seen, [...ids].reverse());
  const only = await listMessages(db.sql, owner, { limit: 10, connectionId: c2 });
  assert.is(only.items.length, 3);
  assert.is((await listMessages(db.sql, owner, { limit: 10, status: 'sent' })).items.length, 0);
  await rejects(listMessages(db.sql, owner, { limit: 1, cursor: 'garbage' }), 'VALIDATION_ERROR');
});

test('status transitions and API shape', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const [r] = await acceptMessages(db.sql, owner, [{ connectionId: conn, chat: '@c', text: 'hi', priority: 'low' }], { actor: owner });
  const id = r!.message.id;
  assert.equal((await listUnpublished(db.sql, { limit: 100, horizonMs: 0 })).map((e) => e.id).includes(id), true);
  assert.is(await markPublished(db.sql, [{ id, seq: 0 }]), 1);
  assert.is((await listUnpublished(db.sql, { limit: 100, horizonMs: 0 })).some((e) => e.id === id), false);
  const markSending = async (seq: number, leaseMs: number) => (await markSendingMany(db.sql, [{ id, seq }], leaseMs)).get(id);
  assert.is(await markSending(99, 1000), undefined, 'stale seq cannot start a send');
  const sending = await markSending(0, 60_000);
  assert.is(sending!.status, 'sending');
  assert.is(sending!.attempts, 1);
  const retryAt = new Date(Date.now() + 5000);
  const back = await rescheduleMessage(db.sql, id, { at: retryAt, error: { code: 'TG_UNAVAILABLE', message: 'down', retryAt: retryAt.toISOString() }, retry: true });
  assert.is(back!.status, 'queued');
  assert.is(back!.publish_seq, 1);
  assert.is(back!.published_at, null);
  assert.is(back!.retries, 1);
  assert.equal(toApiMessage(back!).error, { code: 'TG_UNAVAILABLE', message: 'down', retryAt: retryAt.toISOString() });
  await markSending(1, 60_000);
  const sent = (await markSentMany(db.sql, [{ id, platformMessageId: '4242' }])).get(id);
  const api = toApiMessage(sent!);
  assert.is(api.status, 'sent');
  assert.is(api.platformMessageId, '4242');
  assert.is(api.attempts, 2);
  assert.is(api.error, undefined);
  assert.ok(api.sentAt);
  assert.equal(Object.keys(api).sort(), ['attempts', 'chat', 'connectionId', 'createdAt', 'direction', 'id', 'platformMessageId', 'priority', 'sentAt', 'status', 'text']);
  assert.is(await markFailed(db.sql, id, { code: 'INTERNAL', message: 'x' }), undefined, 'a sent message never turns failed');
});

test('claimDue hides claimed rows from a second claimer and prefers high priority', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  await db.sql`update messages set status = 'sent' where status in ('queued', 'sending')`; // earlier tests' rows
  await acceptMessages(db.sql, owner, [
    { connectionId: conn, chat: '1', text: 'low', priority: 'low' },
    { connectionId: conn, chat: '1', text: 'high', priority: 'high' },
  ], { actor: owner });
  const first = await claimDue(db.sql, { limit: 1, leaseMs: 30_000 });
  assert.is(first[0]!.text, 'high');
  assert.is(first[0]!.publish_seq, 1);
  const second = await claimDue(db.sql, { limit: 10, leaseMs: 30_000 });
  assert.equal(second.map((m) => m.text), ['low']);
  assert.is((await claimDue(db.sql, { limit: 10, leaseMs: 30_000 })).length, 0);
});

test('batched updates of overlapping rows in opposite orders never deadlock (rows are locked in id order)', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const inputs = Array.from({ length: 200 }, (_, i) => ({ connectionId: conn, chat: '@chan', text: `m${i}` }));
  const ids = (await acceptMessages(db.sql, owner, inputs, { actor: owner })).map((r) => r.message.id);
  const errors: string[] = [];
  const note = (e: { code?: string; message?: string }) => { errors.push(e.code ?? e.message ?? '?'); };
  for (let round = 0; round < 20; round++) {
    // The relay marks a batch published while consumers mark the same rows sending and sent (the
    // two orders differ as they do live: publish order vs arrival order).
    const shuffled = [...ids].sort(() => Math.random() - 0.5);
    await Promise.all([
      markPublished(db.sql, ids.map((id) => ({ id, seq: 0 }))).catch(note),
      markSendingMany(db.sql, shuffled.map((id) => ({ id, seq: 0 })), 60_000).catch(note),
      markSentMany(db.sql, [...shuffled].reverse().map((id) => ({ id, platformMessageId: '1' }))).catch(note),
    ]);
    await db.sql`update messages set status = 'queued', published_at = null where id = any(${db.sql.array(ids)}::uuid[])`;
  }
  assert.equal(errors, []);
  // And the batched forms do what the single ones do.
  const sending = await markSendingMany(db.sql, [{ id: ids[0]!, seq: 0 }, { id: ids[1]!, seq: 7 }, { id: randomUUID(), seq: 0 }], 60_000);
  assert.equal([...sending.keys()], [ids[0]]);
  assert.is(sending.get(ids[0]!)!.status, 'sending');
  const sent = await markSentMany(db.sql, [{ id: ids[0]!, platformMessageId: '42' }, { id: ids[1]!, platformMessageId: '43' }]);
  assert.equal([...sent.values()].map((r) => [r.id, r.status, r.platform_message_id]), [[ids[0], 'sent', '42']]);
});

test('markSentMany stores each message.status event in the statement that marks it sent', async () => {
  const owner = `o-${randomUUID()}`;
  const conn = await makeConnection(db.sql, owner);
  const ids = (await acceptMessages(db.sql, owner, [1, 2, 3].map((i) => ({ connectionId: conn, chat: '@c', text: `s${i}` })), { actor: owner })).map((r) => r.message.id);
  await markSendingMany(db.sql, ids.map((id) => ({ id, seq: 0 })), 60_000);
  const after = (await readEvents(db.sql, owner, { afterPos: 0, limit: 100 })).at(-1)!.pos;
  const sent = await markSentMany(db.sql, [{ id: ids[0]!, platformMessageId: '7' }, { id: ids[1]!, platformMessageId: '8' }]);
  assert.is(sent.size, 2);
  const events = await readEvents(db.sql, owner, { afterPos: after, limit: 100, types: ['message.status'] });
  const byId = (a: { data: unknown }, b: { data: unknown }) => ((a.data as { id: string }).id < (b.data as { id: string }).id ? -1 : 1);
  assert.equal(events.map((e) => [e.connectionId, (e.data as { id: string }).id, (e.data as { status: string }).status]).sort(),
    [[conn, ids[0], 'sent'], [conn, ids[1], 'sent']].sort());
  assert.equal(events.sort(byId).map((e) => e.data), [sent.get(ids[0]!)!, sent.get(ids[1]!)!].map((r) => ({ data: JSON.parse(JSON.stringify(toApiMessage(r))) })).sort(byId).map((x) => x.data));
  // A repeat (the row moved on) changes nothing and stores nothing; the third, never sent, has none.
  assert.is((await markSentMany(db.sql, [{ id: ids[0]!, platformMessageId: '7' }])).size, 0);
  assert.is((await readEvents(db.sql, owner, { afterPos: after, limit: 100 })).length, 2);
});

test.run();
