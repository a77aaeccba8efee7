import type postgres from 'postgres';
import { secretContext, type Keyring } from '../crypto/keyring.ts';
import { deleteSecret, getSecrets, putSecret, type SecretName } from '../store/connections.ts';
import type { SecretVault } from '../platforms/adapter.ts';
import { AppError } from '../errors.ts';
import type { Fence } from '../store/leases.ts';

// Secrets are encrypted with the connection and the secret's name as associated data, so a
// ciphertext copied into another row does not decrypt (and the rewrap job rebuilds the same context).
// With a fence (several daemons), a write is refused once this node's lease on the shard moved on.
export function secretVault(sql: postgres.Sql, keyring: Keyring, connectionId: string, fence?: () => Fence | undefined, refused?: () => void): SecretVault {
  return {
    async load() {
      const rows = await getSecrets(sql, connectionId);
      const out: Record<SecretName, string> = {};
      for (const [name, ciphertext] of Object.entries(rows) as [SecretName, string][]) {
        out[name] = await keyring.decrypt(ciphertext, secretContext(connectionId, name));
      }
      return out;
    },
    async save(name, plaintext) {
      const f = fence?.();
      const ok = await putSecret(sql, connectionId, name, await keyring.encrypt(plaintext, secretContext(connectionId, name)), f);
      if (!ok && f) {
        refused?.();
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'The connection moved to another node; the secret was not saved here', { retryAfter: 1 });
      }
    },
    async remove(name) {
      const f = fence?.();
      if (!(await deleteSecret(sql, connectionId, name, f)) && f) refused?.();
    },
  };
}
