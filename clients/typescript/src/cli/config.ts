import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where the CLI finds the service: `--url`/`--token`, else INTEGRATION_URL/INTEGRATION_TOKEN, else the config file. */
export interface CliConfig { url: string; token?: string }

export class ConfigRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigRefused';
  }
}

/** $INTEGRATION_CONFIG, else $XDG_CONFIG_HOME/integration/config.json, else ~/.config/integration/config.json. */
export function configPath(env: NodeJS.ProcessEnv): string {
  if (env.INTEGRATION_CONFIG) return env.INTEGRATION_CONFIG;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'integration', 'config.json');
}

/** The file holds a token: owner only, like an ssh key; a wider mode is refused, not fixed silently. */
export function readConfigFile(path: string): Partial<CliConfig> {
  if (!existsSync(path)) return {};
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new ConfigRefused(`${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); it holds a token: chmod 600 ${path}`);
  }
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<CliConfig>;
    return { ...(typeof parsed.url === 'string' && { url: parsed.url }), ...(typeof parsed.token === 'string' && { token: parsed.token }) };
  } catch (err) {
    throw new ConfigRefused(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

export function writeConfigFile(path: string, config: CliConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // an existing file keeps its mode on write: make it exact
}

export function resolveConfig(flags: { url?: string; token?: string; config?: string }, env: NodeJS.ProcessEnv): CliConfig {
  const path = flags.config ?? configPath(env);
  const file = readConfigFile(path);
  const url = flags.url ?? env.INTEGRATION_URL ?? file.url ?? 'http://127.0.0.1:8080';
  const token = flags.token ?? env.INTEGRATION_TOKEN ?? file.token;
  return { url, ...(token && { token }) };
}
