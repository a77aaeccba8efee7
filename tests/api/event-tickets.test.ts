import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryTickets, redisTickets } from '../../src/api/event-tickets.ts';

test('memory: a ticket is taken once, with its grant; unknown and malformed ones are nothing', async () => {
  const store = memoryTickets();
  const { ticket, expiresAt } = await store.issue({ sub: 'alice', tokenExpiresAt: 1_900_000_000_000 });
  assert.match(ticket, /^[\w-]{43}$/);
  assert.ok(Date.parse(expiresAt) > Date.now());
  assert.equal(await store.take(ticket), { sub: 'alice', tokenExpiresAt: 1_900_000_000_000 });
  assert.is(await store.take(ticket), undefined);
  assert.is(await store.take('A'.repeat(43)), undefined);
  assert.is(await store.take('../../etc'), undefined);
});

test('memory: an expired ticket is refused; the live set is bounded (the oldest goes)', async () => {
  const expired = memoryTickets(0);
  assert.is(await expired.take((await expired.issue({ sub: 'a' })).ticket), undefined);
  const bounded = memoryTickets(30_000, 2);
  const t1 = (await bounded.issue({ sub: 'a' })).ticket;
  const t2 = (await bounded.issue({ sub: 'b' })).ticket;
  const t3 = (await bounded.issue({ sub: 'c' })).ticket;
  assert.is(await bounded.take(t1), undefined);
  assert.equal(await bounded.take(t2), { sub: 'b' });
  assert.equal(await bounded.take(t3), { sub: 'c' });
});

test('Redis: taken once (GETDEL), kept with a 30 s expiry; a down Redis is an error, not a refusal', async () => {
  const redis = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
  await once(redis, 'ready');
  const prefix = `test:ticket:${randomUUID()}:`;
  const store = redisTickets(redis, 30_000, prefix);
  const { ticket } = await store.issue({ sub: 'bob' });
  const ttl = await redis.pttl(prefix + ticket);
  assert.ok(ttl > 0 && ttl <= 30_000, `pttl ${ttl}`);
  const [first, second] = await Promise.all([store.take(ticket), store.take(ticket)]);
  assert.equal([first, second].filter(Boolean), [{ sub: 'bob' }]);
  await redis.quit();
  const down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
  down.on('error', () => undefined);
  const failing = redisTickets(down);
  assert.ok(await failing.issue({ sub: 'x' }).then(() => false, () => true));
  assert.ok(await failing.take('A'.repeat(43)).then(() => false, () => true));
  down.disconnect();
});

test.run();
