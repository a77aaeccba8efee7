// Opens the keyring the configuration names: Vault transit, or the local versioned keyring. The
// port itself (the interface, its errors, the ciphertext format) is in port.ts, which the adapters
// implement; this module only chooses one.
import type postgres from 'postgres';
import { metrics } from '../observability/metrics.ts';
import { isKeyringError, type Keyring } from './port.ts';

export * from './port.ts';

export interface KeyringOptions {
  // Vault transit is used when vaultAddr is set; otherwise the local keyring.
  vaultAddr?: string;
  vaultToken?: string;
  vaultRoleId?: string;
  vaultSecretId?: string;
  vaultNamespace?: string;
  vaultTransitMount?: string; // default "transit"
  vaultKeyName?: string; // default "integration-service"
  // Local keyring: master key (KEYRING_KEY: base64 of 32 bytes, or the raw 32 bytes) and/or the keyring file.
  // With `sql` the versions live in the database (the daemon); without it, with a file the keyring is
  // file-backed (the key, when given, wraps the data keys), and with only a key it is HKDF-derived. There is deliberately no automatic fallback from file to derived when the file cannot be
  // written: both number their versions from 1, so switching modes would orphan every stored ciphertext.
  keyringKey?: string | Buffer;
  keyringFile?: string;
  // The daemon's database: with it the local keyring keeps its versions there (shared by every node, each
  // wrapped by KEYRING_KEY) and the file is only read, for its master key and for a one-time import.
  sql?: postgres.Sql;
  rotateDays?: number; // default 7
  now?: () => number; // injected clock (ms since epoch)
}

// Picks the adapter from configuration. The adapters are imported lazily so that a local deployment never
// loads node-vault (and axios) at all.
export async function openKeyring(opts: KeyringOptions): Promise<Keyring> {
  return counted(await openAdapter(opts));
}

// Every failed operation is counted (integration_keyring_errors_total): the KeyringFailures alert
// (ops/prometheus/alerts.yml) pages on them, since a keyring that cannot decrypt stops every session.
const countedOps = ['encrypt', 'decrypt', 'rotate', 'rotateIfDue', 'rewrap', 'ping'] as const;
function counted(ring: Keyring): Keyring {
  const wrapped = Object.create(ring) as Keyring;
  for (const op of countedOps) {
    const call = ring[op] as (...args: unknown[]) => Promise<unknown>;
    (wrapped as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => call.apply(ring, args).catch((err: unknown) => {
      metrics.keyringErrors.inc({ op, reason: isKeyringError(err) ? err.reason : 'unavailable' });
      throw err;
    });
  }
  return wrapped;
}

async function openAdapter(opts: KeyringOptions): Promise<Keyring> {
  if (opts.vaultAddr) {
    const { VaultKeyring } = await import('./vault-keyring.ts');
    return VaultKeyring.open({
      addr: opts.vaultAddr,
      token: opts.vaultToken,
      roleId: opts.vaultRoleId,
      secretId: opts.vaultSecretId,
      namespace: opts.vaultNamespace,
      mount: opts.vaultTransitMount,
      keyName: opts.vaultKeyName,
      now: opts.now,
    });
  }
  const { LocalKeyring } = await import('./local-keyring.ts');
  return LocalKeyring.open({
    masterKey: opts.keyringKey,
    ...(opts.sql && { sql: opts.sql }),
    // With neither a key nor a file, a generated keyring file under ./data keeps secrets readable across restarts.
    file: opts.keyringFile ?? (opts.keyringKey ? undefined : 'data/keyring.json'),
    rotateDays: opts.rotateDays,
    now: opts.now,
  });
}
