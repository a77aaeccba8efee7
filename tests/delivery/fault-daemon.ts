// Child process for faults.e2e.test.ts: the whole daemon (startApp) configured from the environment
// the test passes, on a free port. Prints one JSON line {"url"} when it listens; SIGTERM stops it
// gracefully, SIGKILL is what the test uses to crash it.
import { startApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';

const app = await startApp({ ...loadConfig(process.env), port: 0 });
process.stdout.write(`${JSON.stringify({ url: app.url })}\n`);
process.on('SIGTERM', () => {
  void app.stop().then(() => process.exit(0), () => process.exit(1));
});
