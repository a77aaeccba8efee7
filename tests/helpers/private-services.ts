// Throwaway RabbitMQ node and PostgreSQL cluster for tests that stop and start their broker or
// database mid-run: the shared services on 5672/5432 are used by other suites at the same time and
// are never touched. Each lives in its own temp dir on spare loopback ports and is removed by close().
// Measured here (2 cores, loaded): RabbitMQ boot 4-15 s, stop 2-4 s; initdb ~3 s, pg start/stop ~0.3 s.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const freePort = async (): Promise<number> => {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
};

export interface PrivateRabbit {
  /** amqp://guest:guest@127.0.0.1:PORT/VHOST-less base; add a vhost with addVhost() */
  url: string;
  port: number;
  node: string;
  /** a fresh vhost; returns the amqp URL naming it */
  addVhost(name: string): string;
  /** rabbitmqctl list_queues output for a vhost (diagnostics) */
  queues(vhost: string): string;
  /** stops the whole node (connections drop, the port closes); data stays in its mnesia dir */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const rabbitBin = '/usr/lib/rabbitmq/bin';

/** The environment of a RabbitMQ node living entirely in `dir`, apart from the shared node on 5672. */
export function privateRabbitEnv(dir: string, node: string, distPort: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: dir, // the node and rabbitmqctl share a fresh Erlang cookie here
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'), // not /etc/rabbitmq's, which names the shared node
    RABBITMQ_NODENAME: node,
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'node.pid'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
}

export async function startPrivateRabbit(): Promise<PrivateRabbit> {
  const dir = mkdtempSync(join(tmpdir(), 'rmq-private-'));
  const node = `priv-${randomBytes(4).toString('hex')}@localhost`;
  const [port, distPort] = [await freePort(), await freePort()];
  const env = privateRabbitEnv(dir, node, distPort);
  writeFileSync(join(dir, 'rabbitmq.conf'), [
    `listeners.tcp.default = 127.0.0.1:${port}`,
    'disk_free_limit.absolute = 50MB', // this machine's disk may have little free
    'log.console = false',
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  const ctl = (...args: string[]) => spawnSync(join(rabbitBin, 'rabbitmqctl'), ['-n', node, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 70_000 });
  const crashLog = () => (existsSync(join(dir, 'erl_crash.dump')) ? readFileSync(join(dir, 'erl_crash.dump'), 'utf8').slice(0, 400) : '');
  let running = false;

  const start = async () => {
    const boot = spawnSync(join(rabbitBin, 'rabbitmq-server'), ['-detached'], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
    if (boot.status !== 0) throw new Error(`rabbitmq-server -detached: ${boot.stderr}`);
    running = true;
    // The node registers with epmd a moment after -detached returns; await_startup says "not
    // running" if asked too early, so ask again until the deadline.
    const deadline = Date.now() + 90_000;
    for (;;) {
      const r = ctl('await_startup', '--timeout', '60');
      if (r.status === 0) return;
      if (Date.now() > deadline || crashLog()) throw new Error(`node ${node} did not start: ${r.stdout}${r.stderr}\n${crashLog()}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  };
  const stop = async () => {
    if (!running) return;
    // With the pid file, stop returns only once the OS process has exited (the port is closed).
    const r = ctl('stop', join(dir, 'node.pid'));
    running = false;
    if (r.status !== 0) throw new Error(`rabbitmqctl stop: ${r.stderr}`);
  };
  await start();
  const url = `amqp://guest:guest@127.0.0.1:${port}`;
  return {
    url, port, node,
    addVhost(name) {
      for (const args of [['add_vhost', name], ['set_permissions', '-p', name, 'guest', '.*', '.*', '.*']]) {
        const r = ctl(...args);
        if (r.status !== 0) throw new Error(`rabbitmqctl ${args[0]}: ${r.stderr}`);
      }
      return `${url}/${encodeURIComponent(name)}`;
    },
    queues: (vhost) => ctl('list_queues', '-p', vhost, 'name', 'messages_ready', 'messages_unacknowledged', 'consumers').stdout,
    stop,
    start,
    async close() {
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** a fresh empty database; returns its URL */
  createDatabase(name: string): Promise<string>;
  /** pg_ctl -m fast stop: backends get FATAL 57P01 and the port closes */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export const pgBinDir = (() => {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  return versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'pg_ctl')));
})();

// initdb refuses to run as root; the Debian package creates the postgres user for exactly this.
const asServerUser = (cmd: string, args: string[]) =>
  process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  if (!pgBinDir) throw new Error('no PostgreSQL server binaries: install the postgresql package or set PG_BINDIR');
  const dir = mkdtempSync(join(tmpdir(), 'pg-private-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout.trim()), 0);
  await asServerUser(join(pgBinDir, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const pgCtl = (...args: string[]) => asServerUser(join(pgBinDir!, 'pg_ctl'), ['-D', data, '-w', ...args]);
  // fsync off: a test cluster need not survive a power cut, and fsync is most of a commit's cost here.
  const start = async () => { await pgCtl('-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`, 'start'); };
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    port, url,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      await run('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-qc', `create database ${name}`]);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop: async () => { await pgCtl('-m', 'fast', 'stop'); },
    start,
    async close() {
      await pgCtl('-m', 'immediate', 'stop').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
