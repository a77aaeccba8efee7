import { parseArgs } from 'node:util';
import { startEmulator } from './index.ts';
import { parsePlatforms } from './platforms/registry.ts';

// `npm run emulator -- [--dcs N] [--mtproto-port N] [--botapi-port N] [--control-port N] [--platforms telegram,instagram,…|all]`
// (0 = any free port; DC k on mtproto-port + k - 1): prints one JSON line with the addresses when
// ready, serves until SIGTERM/SIGINT, or with --exit-with-stdin until its stdin ends too.

const { values } = parseArgs({
  options: {
    'mtproto-port': { type: 'string', default: '0' },
    'botapi-port': { type: 'string', default: '0' },
    'control-port': { type: 'string', default: '0' },
    'code-ttl-ms': { type: 'string' },
    dcs: { type: 'string', default: '3' },
    platforms: { type: 'string' },
    // JSON per platform, e.g. '{"instagram":{"postLimit":100000,"processingMs":{"image":0}}}' for benchmarks.
    'platform-options': { type: 'string' },
    // Telegram's flood limits, e.g. '{"perGroupPerMinute":1000000}' for a benchmark that measures the daemon, not the pacing.
    limits: { type: 'string' },
    // Stop when stdin ends: a parent that spawned the emulator with a pipe takes it along however it
    // exits (a benchmark dying on an uncaught error, or kill -9, left it running before).
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

const port = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number, got ${v}`);
  return n;
};

const dcs = Number(values.dcs);
if (!Number.isInteger(dcs) || dcs < 1 || dcs > 5) throw new Error(`--dcs must be 1 to 5, got ${values.dcs}`);

const emu = await startEmulator({
  dcs,
  mtprotoPort: port('mtproto-port', values['mtproto-port']),
  botApiPort: port('botapi-port', values['botapi-port']),
  controlPort: port('control-port', values['control-port']),
  codeTtlMs: values['code-ttl-ms'] ? Number(values['code-ttl-ms']) : undefined,
  platforms: parsePlatforms(values.platforms),
  platformOptions: values['platform-options'] ? JSON.parse(values['platform-options']) as Record<string, object> : undefined,
  ...(values.limits ? { limits: JSON.parse(values.limits) as Record<string, number> } : {}),
});
process.stdout.write(`${JSON.stringify({ mtproto: emu.mtproto, dcs: emu.dcs, botApi: emu.botApi, control: emu.control, serverKeys: emu.serverKeys, ...emu.platformsReady() })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void emu.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (values['exit-with-stdin']) {
  process.stdin.on('end', stop).on('error', stop).resume();
}
