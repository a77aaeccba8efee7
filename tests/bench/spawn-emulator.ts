// Starts the emulator in its own process (so its CPU never counts against the daemon's) and
// returns the addresses from its ready line.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface EmulatorProcess {
  mtproto: string;
  /** Every DC's "host:port" by DC id. */
  dcs: Record<string, string>;
  botApi: string;
  control: string;
  serverKeys: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** V8 flags of the emulator process: room for a long benchmark's delivered log. */
export const EMULATOR_NODE_ARGS = ['--max-old-space-size=4096'];

/** `nodeArgs` are extra node flags (e.g. --cpu-prof to profile the emulator); `args` the emulator's own (--dcs 3). */
export async function spawnEmulator(nodeArgs: string[] = [], args: string[] = []): Promise<EmulatorProcess> {
  // Its stdin is a pipe from this process: when this process ends, however, the emulator ends too.
  const proc = spawn(process.execPath, [...EMULATOR_NODE_ARGS, ...nodeArgs, '--import', 'tsx', 'tests/emulator/main.ts', '--exit-with-stdin', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: proc.stdout! }), 'line')) as [string];
  const ready = JSON.parse(line) as Omit<EmulatorProcess, 'proc' | 'stop'>;
  return {
    ...ready, proc,
    async stop() {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

export async function control<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`emulator ${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

export const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
