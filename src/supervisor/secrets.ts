import type postgres from 'postgres';
import { secretContext, type Keyring } from '../crypto/keyring.ts';
import { deleteSecret, getSecrets, putSecret, type SecretName } from '../store/connections.ts';
import type { SecretVault } from './driver.ts';

// Secrets are encrypted with the connection and the secret's name as associated data, so a
// ciphertext copied into another row does not decrypt (and the rewrap job rebuilds the same context).
export function secretVault(sql: postgres.Sql, keyring: Keyring, connectionId: string): SecretVault {
  return {
    async load() {
      const rows = await getSecrets(sql, connectionId);
      const out: Partial<Record<SecretName, string>> = {};
      for (const [name, ciphertext] of Object.entries(rows) as [SecretName, string][]) {
        out[name] = await keyring.decrypt(ciphertext, secretContext(connectionId, name));
      }
      return out;
    },
    async save(name, plaintext) {
      await putSecret(sql, connectionId, name, await keyring.encrypt(plaintext, secretContext(connectionId, name)));
    },
    async remove(name) {
      await deleteSecret(sql, connectionId, name);
    },
  };
}
