// A connection that enters `error` is logged at warn with its code (over the fake platform): an
// operator reading the logs sees which connection and why, without the admin API.
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { Connections } from '../../src/connections/service.ts';
import { openKeyring } from '../../src/crypto/keyring.ts';
import { Platforms } from '../../src/platforms/registry.ts';
import { declarePlatformKinds } from '../../src/store/connections.ts';
import { Supervisor } from '../../src/supervisor/supervisor.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { fakeAdapter, fakeError, FakeWorld } from '../helpers/fake-platform.ts';
import { until } from '../helpers/stack.ts';

test('entering error logs a warn line with the connection, its kind and the code; active does not', async () => {
  const db = await createTestDatabase();
  const keyring = await openKeyring({ keyringKey: randomBytes(32) });
  const world = new FakeWorld();
  const platforms = new Platforms([fakeAdapter(world)]);
  await declarePlatformKinds(db.sql, platforms.pairs());
  const lines: Array<Record<string, unknown>> = [];
  const logger = winston.createLogger({
    level: 'debug', format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: new Writable({ write(chunk, _e, done) { lines.push(JSON.parse(String(chunk))); done(); } }) })],
  });
  const supervisor = new Supervisor({
    sql: db.sql, keyring, platforms, logger, shards: 2, memoryBudgetBytes: 50 * 1024 * 1024, restart: { max: 3, windowS: 60 },
    breakerHalfOpenS: 30, backoff: { baseMs: 10, capMs: 40 }, persistDebounceMs: 5, stepTimeoutMs: 2000,
  });
  await supervisor.start();
  const service = new Connections({ sql: db.sql, keyring, platforms, supervisor, logger, shards: 2 });
  try {
    const token = randomUUID();
    world.tokens.add(token);
    const c = await service.create('owner', { platform: 'fake', kind: 'token', token });
    assert.is(c.status, 'active');
    assert.equal(lines.filter((l) => l.message === 'connection entered error'), []);
    world.script(c.id, { send: [fakeError('FAKE_REVOKED')] });
    await supervisor.send({ id: randomUUID(), owner: 'owner', connectionId: c.id, chat: 'c1', text: 'x', silent: false, priority: 'normal', attempts: 1, createdAt: new Date() }).catch(() => undefined);
    await until(() => lines.some((l) => l.message === 'connection entered error'), 'the warn line');
    const line = lines.find((l) => l.message === 'connection entered error')!;
    assert.is(line.level, 'warn');
    assert.is(line.connectionId, c.id);
    assert.is(line.code, 'FAKE_REVOKED');
    assert.is(line.kind, 'token');
    assert.is(line.from, 'active');
  } finally {
    await supervisor.stop();
    await keyring.close();
    await db.drop();
  }
});

test.run();
