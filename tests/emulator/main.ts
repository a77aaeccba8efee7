import { parseArgs } from 'node:util';
import { startEmulator } from './index.ts';

// `npm run emulator -- [--mtproto-port N] [--botapi-port N] [--control-port N]` (0 = any free port):
// prints one JSON line with the addresses when ready, serves until SIGTERM/SIGINT.

const { values } = parseArgs({
  options: {
    'mtproto-port': { type: 'string', default: '0' },
    'botapi-port': { type: 'string', default: '0' },
    'control-port': { type: 'string', default: '0' },
    'code-ttl-ms': { type: 'string' },
  },
});

const port = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number, got ${v}`);
  return n;
};

const emu = await startEmulator({
  mtprotoPort: port('mtproto-port', values['mtproto-port']),
  botApiPort: port('botapi-port', values['botapi-port']),
  controlPort: port('control-port', values['control-port']),
  codeTtlMs: values['code-ttl-ms'] ? Number(values['code-ttl-ms']) : undefined,
});
process.stdout.write(`${JSON.stringify({ mtproto: emu.mtproto, botApi: emu.botApi, control: emu.control, serverKeys: emu.serverKeys })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void emu.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
