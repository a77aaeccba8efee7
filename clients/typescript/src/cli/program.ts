import { Command, Option } from 'commander';
import { createClient, type IntegrationClient } from '../client.ts';
import type { Context } from './context.ts';
import { makeOutput } from './output.ts';
import { resolveConfig } from './config.ts';
import { adminCommands, chatCommands, connectionCommands, webhookCommands } from './resources.ts';
import { eventsCommand, sendCommand } from './messaging.ts';
import { loginCommand } from './login.ts';
import { tokenCommand } from './token.ts';

export function buildProgram(env: NodeJS.ProcessEnv = process.env): { program: Command; context: () => Context } {
  const program = new Command()
    .name('integration')
    .description('Operate an Integration Service from the terminal (the typed client underneath).')
    .addOption(new Option('--url <url>', 'service address').env('INTEGRATION_URL'))
    .addOption(new Option('--token <jwt>', 'bearer token (prefer INTEGRATION_TOKEN or the config file: flags show in ps)'))
    .option('--config <file>', 'config file with {"url","token"}, mode 0600 (default ~/.config/integration/config.json)')
    .option('--json', 'machine-readable output: one JSON document per result on stdout, errors as JSON on stderr')
    .showHelpAfterError()
    // Usage errors exit 2 (main.ts), as the help says; set before the subcommands, which inherit it.
    .exitOverride()
    .addHelpText('after', [
      '',
      'Configuration: --url/--token, else INTEGRATION_URL/INTEGRATION_TOKEN, else the config file (refused when',
      'group or others can read it). `integration token mint --sub me --save` writes one for a local daemon.',
      'Exit codes: 0 done, 1 the service refused (the API\'s code is printed) or could not be reached, 2 usage.',
    ].join('\n'));

  let cached: IntegrationClient | undefined;
  const context = (): Context => {
    const opts = program.opts<{ url?: string; token?: string; config?: string; json?: boolean }>();
    const flags = { ...(opts.url && { url: opts.url }), ...(opts.token && { token: opts.token }), ...(opts.config && { config: opts.config }) };
    return {
      env, flags, out: makeOutput(opts.json === true),
      client() {
        if (cached) return cached;
        const cfg = resolveConfig(flags, env);
        if (!cfg.token) throw new Error('no token: set INTEGRATION_TOKEN, pass --token, or save one with `integration token mint --sub <you> --save`');
        cached = createClient({ baseUrl: cfg.url, token: cfg.token });
        return cached;
      },
    };
  };

  loginCommand(program, context);
  connectionCommands(program, context);
  chatCommands(program, context);
  sendCommand(program, context);
  eventsCommand(program, context);
  webhookCommands(program, context);
  adminCommands(program, context);
  tokenCommand(program, context);
  return { program, context };
}
