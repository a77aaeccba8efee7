// Static secrets other than sessions (JWT_SECRET, TELEGRAM_API_HASH, platform app secrets) come from
// Vault KV v2 when Vault is configured, before the configuration is validated; the environment is the
// fallback for a name the KV entry does not hold. Sessions and tokens at rest go through the keyring
// (transit), not here. The daemon's policy grants exactly this read (ops/vault/integration-service.hcl).
import vault from 'node-vault';

type Env = Record<string, string | undefined>;

export interface VaultSecrets {
  /** the environment with the values from Vault applied */
  env: Env;
  /** names taken from Vault (never the values) */
  loaded: string[];
  /** names in the KV entry that are not ours to take, left alone */
  ignored: string[];
}

// Only secrets: a KV entry cannot redirect the database or turn off TLS. Platform app secrets follow
// one naming rule (INSTAGRAM_APP_SECRET, TIKTOK_CLIENT_SECRET, WHATSAPP_VERIFY_TOKEN, …).
const fixed = new Set(['JWT_SECRET', 'TELEGRAM_API_HASH', 'KEYRING_KEY']);
const appSecret = /^[A-Z][A-Z0-9]*_(APP_SECRET|CLIENT_SECRET|VERIFY_TOKEN|WEBHOOK_SECRET)$/;
export const isVaultSecretName = (name: string): boolean => fixed.has(name) || appSecret.test(name);

export class VaultSecretsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultSecretsError';
  }
}

const trimmed = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());

/**
 * Reads `VAULT_KV_MOUNT` (secret) / `VAULT_KV_PATH` (integration-service/config) with VAULT_TOKEN or an
 * AppRole login. Without VAULT_ADDR nothing happens. A configured Vault that cannot be read stops the
 * start (the keyring needs the same Vault a moment later); an entry that does not exist is not an error.
 */
export async function secretsFromVault(env: Env, opts: { timeoutMs?: number } = {}): Promise<VaultSecrets> {
  const addr = trimmed(env.VAULT_ADDR);
  if (!addr) return { env, loaded: [], ignored: [] };
  const mount = (trimmed(env.VAULT_KV_MOUNT) ?? 'secret').replace(/^\/+|(?<!\/)\/+$/g, '');
  const path = (trimmed(env.VAULT_KV_PATH) ?? 'integration-service/config').replace(/^\/+|(?<!\/)\/+$/g, '');
  const client = vault({ endpoint: addr, requestOptions: { timeout: opts.timeoutMs ?? 5000 } });
  client.token = trimmed(env.VAULT_TOKEN) ?? '';
  const where = `${mount}/data/${path}`;
  let data: Record<string, unknown> = {};
  try {
    const roleId = trimmed(env.VAULT_ROLE_ID);
    const secretId = trimmed(env.VAULT_SECRET_ID);
    if (roleId && secretId) client.token = ((await client.approleLogin({ role_id: roleId, secret_id: secretId })) as { auth: { client_token: string } }).auth.client_token;
    const answer = (await client.read(where)) as { data?: { data?: Record<string, unknown> } };
    data = answer.data?.data ?? {};
  } catch (err) {
    const status = (err as { response?: { statusCode?: number } }).response?.statusCode;
    if (status !== 404) {
      // Vault's own message (e.g. "permission denied"); the token never appears in it.
      throw new VaultSecretsError(`could not read ${where} from Vault at ${addr}: ${status ? `HTTP ${status} ` : ''}${(err as Error).message}`);
    }
  }
  const out: Env = { ...env };
  const loaded: string[] = [];
  const ignored: string[] = [];
  for (const [name, value] of Object.entries(data)) {
    if (!isVaultSecretName(name) || typeof value !== 'string') {
      ignored.push(name);
      continue;
    }
    out[name] = value;
    loaded.push(name);
  }
  return { env: out, loaded: loaded.sort(), ignored: ignored.sort() };
}
