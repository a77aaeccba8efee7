import type { IntegrationClient } from '../client.ts';
import type { Output } from './output.ts';

/** What every command gets: the client (made on first use, so `token mint` needs no token) and the output. */
export interface Context {
  client(): IntegrationClient;
  out: Output;
  env: NodeJS.ProcessEnv;
  /** --url/--token/--config as given */
  flags: { url?: string; token?: string; config?: string };
}
