// Boots a throwaway RabbitMQ node from ops/rabbitmq/rabbitmq.conf + mtls.conf + enabled_plugins
// (cert paths, ports and disk limit rewritten into a temp dir, certificates made by
// ops/rabbitmq/make-dev-certs.sh) next to the shared node on 5672, which it never touches, and
// talks to it with rabbitmq-client over amqps://: a client with our CA and a client certificate
// publishes with confirms and consumes; a client trusting another CA, and one without a client
// certificate, are refused. The node is stopped and its files removed at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Connection, type ConnectionOptions } from 'rabbitmq-client';
import { freePort, privateRabbitEnv } from '../helpers/private-services.ts';

const root = new URL('../../', import.meta.url).pathname;
// The Debian wrapper /usr/sbin/rabbitmq-server switches to the rabbitmq user; the scripts behind
// it run as the caller, who then owns the node's files in the temp dir.
const bin = '/usr/lib/rabbitmq/bin';
const dir = mkdtempSync(join(tmpdir(), 'rmq-tls-'));
const node = `tls-${randomBytes(4).toString('hex')}@localhost`;
let amqpsPort = 0;
let metricsPort = 0;
// Like production, the daemon logs in as its own user, not guest.
const user = 'integration-service';
const password = randomBytes(12).toString('hex');
let started = false;

const env = (distPort: number): NodeJS.ProcessEnv => privateRabbitEnv(dir, node, distPort);
let nodeEnv: NodeJS.ProcessEnv = {};

const ctl = (...args: string[]) => spawnSync(join(bin, 'rabbitmqctl'), ['-n', node, ...args], { cwd: dir, env: nodeEnv, encoding: 'utf8', timeout: 70_000 });

const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

const file = (name: string) => readFileSync(join(dir, name));

const connect = async (tls: ConnectionOptions['tls']) => {
  const conn = new Connection({ url: `amqps://${user}:${password}@localhost:${amqpsPort}`, tls, connectionTimeout: 5000, retryLow: 200, retryHigh: 400 });
  const errors: Error[] = [];
  conn.on('error', (err) => errors.push(err));
  try {
    await conn.onConnect(3000, true);
    return { conn, errors, connected: true };
  } catch (err) {
    errors.push(err as Error);
    return { conn, errors, connected: false };
  }
};

const boot = async () => {
  const [p1, p2, p3, p4] = [await freePort(), await freePort(), await freePort(), await freePort()];
  amqpsPort = p1;
  metricsPort = p3;
  nodeEnv = env(p2);
  execFileSync('bash', [join(root, 'ops/rabbitmq/make-dev-certs.sh'), dir], { stdio: 'pipe' });
  // A second, unrelated CA: what a client trusting the wrong authority holds.
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=rogue-ca', '-keyout', 'rogue-ca.key', '-out', 'rogue-ca.pem');
  // conf.d order: rabbitmq.conf, then the production mTLS overlay; a later key overrides an earlier one.
  const conf = [readFileSync(join(root, 'ops/rabbitmq/rabbitmq.conf'), 'utf8'), readFileSync(join(root, 'ops/rabbitmq/mtls.conf'), 'utf8')]
    .join('\n')
    .replaceAll('/etc/rabbitmq/tls/', `${dir}/`)
    .replace(/^listeners\.ssl\.default = 5671$/m, `listeners.ssl.default = 127.0.0.1:${amqpsPort}`)
    // This machine's disk may have less free than production's 2 GB floor.
    .replace(/^disk_free_limit\.absolute = .*$/m, 'disk_free_limit.absolute = 50MB')
    // The plugins of ops/rabbitmq/enabled_plugins, on spare loopback ports.
    .replace(/^prometheus\.tcp\.port = .*$/m, `prometheus.tcp.port = ${metricsPort}\nprometheus.tcp.ip = 127.0.0.1\nmanagement.tcp.port = ${p4}\nmanagement.tcp.ip = 127.0.0.1`);
  assert.match(conf, new RegExp(`listeners.ssl.default = 127.0.0.1:${amqpsPort}`));
  writeFileSync(join(dir, 'rabbitmq.conf'), conf);
  copyFileSync(join(root, 'ops/rabbitmq/enabled_plugins'), join(dir, 'enabled_plugins'));
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  // cwd: a node that fails to boot leaves erl_crash.dump in its working directory.
  const boot = spawnSync(join(bin, 'rabbitmq-server'), ['-detached'], { cwd: dir, env: nodeEnv, encoding: 'utf8', timeout: 30_000 });
  assert.is(boot.status, 0, `rabbitmq-server -detached: ${boot.stderr}`);
  started = true;
  // The node registers with epmd a moment after -detached returns; await_startup then blocks
  // until it has booted (~3 s here), but says "not running" if asked too early.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = ctl('await_startup', '--timeout', '60');
    if (r.status === 0) break;
    if (Date.now() > deadline || crashLog()) throw new Error(`node ${node} did not start: ${r.stdout}${r.stderr}\n${crashLog()}`);
    await new Promise((res) => setTimeout(res, 500));
  }
  for (const args of [['add_user', user, password], ['set_permissions', '-p', '/', user, '.*', '.*', '.*']]) {
    const r = ctl(...args);
    assert.is(r.status, 0, `rabbitmqctl ${args[0]}: ${r.stderr}`);
  }
};

// uvu swallows an error thrown by a hook (the file just reports 0 passed): print it first.
test.before(async () => {
  try {
    await boot();
  } catch (err) {
    console.error(err);
    throw err;
  }
});

const crashLog = () => {
  const dump = join(dir, 'erl_crash.dump');
  return existsSync(dump) ? readFileSync(dump, 'utf8').split('\n').slice(0, 3).join('\n') : '';
};

test.after(() => {
  try {
    if (started) {
      // With the pid file, stop returns only once the OS process has exited.
      const r = ctl('stop', join(dir, 'node.pid'));
      if (r.status !== 0 && existsSync(join(dir, 'node.pid'))) {
        process.kill(Number(readFileSync(join(dir, 'node.pid'), 'utf8').trim()), 'SIGKILL');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the node listens for AMQP over TLS only', () => {
  const r = ctl('status', '--formatter', 'json');
  assert.is(r.status, 0, r.stderr);
  const listeners = (JSON.parse(r.stdout) as { listeners: Array<{ protocol: string; port: number }> }).listeners;
  assert.ok(listeners.some((l) => l.protocol === 'amqp/ssl' && l.port === amqpsPort), JSON.stringify(listeners));
  assert.not.ok(listeners.some((l) => l.protocol === 'amqp'), JSON.stringify(listeners));
});

test('the rabbitmq_prometheus plugin serves metrics for the rabbitmq scrape job', async () => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.is(res.status, 200);
  assert.match(await res.text(), /^rabbitmq_build_info\{/m);
});

test('a client with our CA and a client certificate publishes with confirms and consumes', async () => {
  const { conn, connected, errors } = await connect({ ca: file('ca.pem'), cert: file('client.pem'), key: file('client.key') });
  try {
    assert.ok(connected, errors.map(String).join('; '));
    const queue = `integration.tls-${randomBytes(4).toString('hex')}`;
    const queueOptions = { queue, durable: true, arguments: { 'x-queue-type': 'quorum' as const } };
    await conn.queueDeclare(queueOptions);
    const publisher = conn.createPublisher({ confirm: true, maxAttempts: 1 });
    const body = { id: randomBytes(8).toString('hex'), text: 'over TLS' };
    await publisher.send({ routingKey: queue, durable: true }, body);
    let consumer: ReturnType<Connection['createConsumer']> | undefined;
    const received = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10_000);
      consumer = conn.createConsumer({ queue, queueOptions, qos: { prefetchCount: 1 } }, async (msg) => {
        clearTimeout(timer);
        resolve(msg.body);
      });
    });
    assert.equal(received, body);
    await consumer?.close();
    await publisher.close();
    const q = ctl('list_queues', 'name', 'type', '--formatter', 'json');
    assert.equal((JSON.parse(q.stdout) as Array<{ name: string; type: string }>).find((x) => x.name === queue), { name: queue, type: 'quorum' });
    await conn.queueDelete({ queue });
  } finally {
    await conn.close();
  }
});

test('a client that trusts another CA refuses the server', async () => {
  const { conn, connected, errors } = await connect({ ca: file('rogue-ca.pem'), cert: file('client.pem'), key: file('client.key') });
  await conn.close();
  assert.not.ok(connected);
  assert.match(errors.map((e) => `${e.message} ${(e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code}`).join(' '),
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify|self.signed|certificate/i);
});

test('a client without a client certificate is refused by the server', async () => {
  const { conn, connected, errors } = await connect({ ca: file('ca.pem') });
  await conn.close();
  assert.not.ok(connected, 'connected without a client certificate');
  // TLS 1.3 reports the server's refusal as an alert on the first read.
  assert.match(errors.map((e) => `${e.message} ${(e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code}`).join(' '),
    /CERTIFICATE_REQUIRED|certificate required/i);
});

test.run();
