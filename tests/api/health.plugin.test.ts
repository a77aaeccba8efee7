import Hapi from '@hapi/hapi';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { healthPlugin } from '../../src/api/health.plugin.ts';
import { registry } from '../../src/observability/metrics.ts';
import { shellServer } from './shell-server.ts';

let postgresUp = false;
const srv = await shellServer({
  checks: {
    redis: async () => {},
    postgres: async () => {
      if (!postgresUp) throw new Error('connect ECONNREFUSED 127.0.0.1:5432 (postgres://svc:s3cr3t-pw@127.0.0.1:5432/app)');
    },
  },
});
await srv.server.initialize();
const readiness = async () => {
  const res = await srv.server.inject('/health/ready');
  return { status: res.statusCode, body: JSON.parse(res.payload) };
};

test('/health/live answers 200 without auth', async () => {
  const res = await srv.server.inject('/health/live');
  assert.is(res.statusCode, 200);
  assert.equal(JSON.parse(res.payload), { status: 'ok' });
});

test('one failing check → 503 naming it, without the password; then it recovers', async () => {
  const down = await readiness();
  assert.is(down.status, 503);
  assert.is(down.body.checks.postgres.ok, false);
  assert.match(down.body.checks.postgres.error, /ECONNREFUSED/);
  assert.not.ok(JSON.stringify(down.body).includes('s3cr3t-pw'));
  assert.is(down.body.checks.redis.ok, true);
  assert.type(down.body.checks.redis.latencyMs, 'number');
  assert.match(await registry.metrics(), /integration_ready\{check="postgres"\} 0/);

  postgresUp = true;
  const up = await readiness();
  assert.is(up.status, 200);
  assert.is(up.body.status, 'ok');
  assert.equal(Object.keys(up.body.checks).sort(), ['postgres', 'redis']);
  assert.ok(Object.values(up.body.checks).every((c: any) => c.ok === true && !('error' in c)));
  assert.match(await registry.metrics(), /integration_ready\{check="postgres"\} 1/);
});

test('a hung check times out and the others still answer (checks run in parallel)', async () => {
  const server = Hapi.server();
  await server.register({
    plugin: healthPlugin,
    options: { timeoutMs: 50, checks: { hung: () => new Promise<void>(() => {}), fine: async () => {} } },
  });
  const started = Date.now();
  const res = await server.inject('/health/ready');
  const body = JSON.parse(res.payload);
  assert.is(res.statusCode, 503);
  assert.equal(body.checks.hung.ok, false);
  assert.match(body.checks.hung.error, /timed out after 50 ms/);
  assert.is(body.checks.fine.ok, true);
  assert.ok(Date.now() - started < 1000);
  await server.stop();
});

test.after(() => srv.server.stop());
test.run();
