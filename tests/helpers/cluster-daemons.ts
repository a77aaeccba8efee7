// Several whole daemons (tests/delivery/fault-daemon.ts: startApp from the environment) on one
// database, as child processes, for the cluster e2e tests. Each prints {"url"} when it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const daemonFile = new URL('../delivery/fault-daemon.ts', import.meta.url).pathname;

export interface Daemon { name: string; child: ChildProcess; url: string; out: string[] }
export interface ClusterView { node: string; nodes: { id: string; shards: number[] }[]; shards: { shard: number; owner: string | null; epoch: number }[] }

/**
 * `host`: run the daemon under that host name, in a UTS namespace of its own (root only), so the
 * nodes take each other for other hosts: a dead peer's pid is not checked and a takeover waits out
 * its grace, as across machines. unshare and sh exec in place: the child's pid is the daemon's.
 */
export function spawnDaemon(name: string, env: Record<string, string>, host?: string): Promise<Daemon> {
  if (host !== undefined && !/^[a-z0-9-]{1,63}$/.test(host)) throw new Error(`bad host name ${host}`);
  const node = [process.execPath, '--import', 'tsx', daemonFile];
  const [cmd, ...args] = host === undefined ? node : ['unshare', '--uts', 'sh', '-c', `hostname ${host} && exec "$@"`, 'sh', ...node];
  const child = spawn(cmd!, args, { env: { ...process.env, ...env, NODE_ID: name }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const keep = (line: string) => { out.push(line); if (out.length > 500) out.shift(); };
  child.stderr!.on('data', (d: Buffer) => keep(d.toString()));
  return new Promise((resolve, reject) => {
    // 120 s: on a 2-core machine shared with other suites (load 15+) a daemon has taken over 60 s to listen.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon ${name} not listening after 120 s: ${out.join('')}`));
    }, 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{"url"')) return keep(line);
      clearTimeout(timer);
      resolve({ name, child, url: (JSON.parse(line) as { url: string }).url, out });
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon ${name} exited early (${code}): ${out.join('')}`)); });
  });
}

export const running = (d: Daemon) => d.child.exitCode === null && d.child.signalCode === null;

/** Sends the signal and waits for the exit (SIGCONT first, in case it was stopped). */
export async function stopDaemon(d: Daemon, signal: NodeJS.Signals): Promise<void> {
  if (!running(d)) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGCONT');
  d.child.kill(signal);
  await exited;
}

export async function clusterView(d: Daemon, adminToken: string): Promise<ClusterView> {
  const res = await fetch(`${d.url}/admin/cluster`, { headers: { authorization: `Bearer ${adminToken}` } });
  if (res.status !== 200) throw new Error(`GET /admin/cluster on ${d.name}: ${res.status}`);
  return (await res.json()) as ClusterView;
}

/** Every shard owned by one of `names`, each of them holding between 1 and ceil(shards / n) + 1. */
export function spread(v: ClusterView, names: string[], shards: number): boolean {
  const max = Math.ceil(shards / names.length) + 1;
  const owned = v.shards.every((s) => s.owner !== null && names.includes(s.owner));
  const live = v.nodes.map((n) => n.id).sort().join() === [...names].sort().join();
  return owned && live && v.nodes.every((n) => n.shards.length >= 1 && n.shards.length <= max);
}

/** One counter of a daemon's GET /metrics (0 when absent). */
export async function metric(d: Daemon, name: string): Promise<number> {
  const text = await (await fetch(`${d.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
