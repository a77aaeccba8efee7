// A benchmark's emulator ends with the benchmark, however the benchmark ends: spawnEmulator ties it to
// its parent through a stdin pipe (--exit-with-stdin). Before, a benchmark killed or dying on an
// uncaught error left its emulator serving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('the emulator exits when the process that spawned it is killed with SIGKILL', async () => {
  // A stand-in benchmark: spawns the emulator, prints its pid, then runs until killed.
  const bench = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
    "const { spawnEmulator } = await import('./tests/bench/spawn-emulator.ts'); const e = await spawnEmulator([], ['--dcs', '1']); console.log(e.proc.pid); setInterval(() => undefined, 1000);"],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: bench.stdout! }), 'line')) as [string];
  const emulator = Number(line);
  try {
    assert.ok(Number.isInteger(emulator) && alive(emulator), 'the emulator runs');
    bench.kill('SIGKILL');
    await once(bench, 'exit');
    const deadline = Date.now() + 10_000;
    while (alive(emulator) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.not.ok(alive(emulator), 'the emulator is gone within 10 s of its parent');
  } finally {
    if (alive(emulator)) process.kill(emulator, 'SIGKILL'); // ours: started by the stand-in above
    if (bench.exitCode === null) bench.kill('SIGKILL');
  }
});

test.run();
