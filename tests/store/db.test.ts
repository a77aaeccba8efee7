import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AppError } from '../../src/errors.ts';
import { openDatabase, type Database } from '../../src/store/db.ts';
import { createTestDatabase, testServerUrl, type TestDatabase } from '../helpers/db.ts';
import { TcpProxy } from './tcp-proxy.ts';
import winston from 'winston';

const log = winston.createLogger({ silent: true });
const cleanups: Array<() => Promise<void>> = [];
const server = new URL(testServerUrl);

const freshDb = async (): Promise<TestDatabase> => {
  const db = await createTestDatabase({ migrate: false });
  cleanups.push(() => db.drop());
  return db;
};

const closedPort = async (): Promise<number> => {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
};

const urlVia = (port: number, name: string, password?: string) => {
  const u = new URL(testServerUrl);
  u.host = `127.0.0.1:${port}`;
  u.pathname = `/${name}`;
  if (password) u.password = password;
  return u.toString();
};

const rejection = async (p: Promise<unknown>): Promise<{ err: AppError; ms: number }> => {
  const started = performance.now();
  try {
    await p;
  } catch (err) {
    return { err: err as AppError, ms: performance.now() - started };
  }
  throw new Error('expected a rejection');
};

test('opens a real server, migrates it and pings', async () => {
  const t = await freshDb();
  const db = await openDatabase({ databaseUrl: t.url, dataDir: '/nonexistent' }, log);
  try {
    assert.is(db.embedded, false);
    const ms = await db.ping();
    assert.type(ms, 'number');
    assert.ok(ms >= 0 && ms < 2000);
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from schema_migrations where version = 1`;
    assert.is(row!.n, 1);
  } finally {
    await db.close();
    await db.close(); // idempotent: shutdown paths may call it twice
  }
});

test('a closed port fails fast at open with a clear error that hides the password', async () => {
  const port = await closedPort();
  const { err, ms } = await rejection(openDatabase({ databaseUrl: urlVia(port, 'x', 'pw-secret'), dataDir: '/nonexistent' }, log));
  assert.instance(err, AppError);
  assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
  assert.is(err.message, `could not open the database: connect ECONNREFUSED 127.0.0.1:${port}`);
  assert.ok(ms < 2000, `took ${ms} ms`);
});

test('ping fails fast while the server is down and works again when it is back, same pool', async () => {
  const t = await freshDb();
  const proxy = new TcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  await proxy.start();
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: urlVia(proxy.port, t.name), dataDir: '/nonexistent' }, log, { max: 3 });
    const id = randomUUID();
    await db.sql`insert into audit (owner, actor, action, target) values ('o', 'test', 'before-outage', ${id})`;
    assert.type(await db.ping(), 'number');

    await proxy.stop(); // server gone: open sockets cut, new connections refused
    for (let i = 0; i < 3; i++) {
      const { err, ms } = await rejection(db.ping());
      assert.instance(err, AppError);
      assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
      assert.match(err.message, /^database ping failed: /);
      assert.ok(ms < 2100, `ping ${i} took ${ms} ms`);
    }

    await proxy.start(); // back on the same port
    assert.type(await db.ping(), 'number');
    const rows = await db.sql<{ action: string }[]>`select action from audit where target = ${id}`;
    assert.equal(rows.map((r) => r.action), ['before-outage']);
  } finally {
    await db?.close();
    await proxy.stop();
  }
});

test('a server that stops answering makes ping give up at its deadline, then recover', async () => {
  const t = await freshDb();
  const proxy = new TcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  await proxy.start();
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: urlVia(proxy.port, t.name), dataDir: '/nonexistent' }, log, { max: 1, pingTimeoutMs: 400 });
    await db.ping();
    proxy.pause(); // connected, but no bytes move: what a dropped network path looks like
    const { err, ms } = await rejection(db.ping());
    assert.is(err.code, 'DEPENDENCY_UNAVAILABLE');
    assert.is(err.message, 'database ping failed: no answer within 400 ms');
    assert.ok(ms >= 390 && ms < 1500, `took ${ms} ms`);
    proxy.resume();
    assert.type(await db.ping(), 'number');
  } finally {
    proxy.resume();
    await db?.close();
    await proxy.stop();
  }
});

test.after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test.run();
