// Rewrap job: moves every connection secret to the keyring's newest key version, so that old versions can
// be retired (Vault: min_decryption_version; local: drop from the file). Walks connection_secrets by primary
// key in batches (keyset pagination: no offset scans, no long transaction) and updates a row only if its
// ciphertext is still the one we read, so it is idempotent and safe next to writers and a second runner.
// The purpose keys (src/crypto/purpose-keys.ts, a handful of rows) are moved the same way, first.
import type postgres from 'postgres';
import { isAppError } from '../errors.ts';
import { logger } from '../observability/logger.ts';
import { replaceSecret, secretsPage } from '../store/connections.ts';
import { allPurposeKeys, replacePurposeKey } from '../store/purpose-keys.ts';
import { endpointSecretsPage, replaceEndpointSecret } from '../store/webhooks.ts';
import { webhookSecretContext } from '../webhooks/secrets.ts';
import { secretContext, type Keyring } from './keyring.ts';
import { purposeContext } from './purpose-keys.ts';

export interface RewrapCounts {
  scanned: number;
  rewrapped: number;
  current: number; // already on the newest version
  raced: number; // changed by someone else between our read and our update
  failed: number; // could not be rewrapped (malformed, wrong context): left as they were
}

export async function rewrapAll(sql: postgres.Sql, keyring: Keyring, opts: { batchSize?: number } = {}): Promise<RewrapCounts> {
  const batchSize = opts.batchSize ?? 100;
  const counts: RewrapCounts = { scanned: 0, rewrapped: 0, current: 0, raced: 0, failed: 0 };
  for (const row of await allPurposeKeys(sql)) {
    counts.scanned += 1;
    try {
      if (!keyring.needsRewrap(row.ciphertext)) {
        counts.current += 1;
        continue;
      }
      const next = await keyring.rewrap(row.ciphertext, purposeContext(row.purpose));
      if (await replacePurposeKey(sql, row, next)) counts.rewrapped += 1;
      else counts.raced += 1;
    } catch (err) {
      if (isAppError(err) && err.code === 'DEPENDENCY_UNAVAILABLE') throw err;
      counts.failed += 1;
      logger.warn('purpose key rewrap failed', { purpose: row.purpose, code: (err as { code?: string }).code });
    }
  }
  let after: { id: string; name: string } | null = null;
  for (;;) {
    const rows = await secretsPage(sql, after, batchSize);
    for (const row of rows) {
      counts.scanned += 1;
      try {
        if (!keyring.needsRewrap(row.ciphertext)) {
          counts.current += 1;
          continue;
        }
        const next = await keyring.rewrap(row.ciphertext, secretContext(row.connection_id, row.name));
        if (await replaceSecret(sql, row, next)) counts.rewrapped += 1;
        else counts.raced += 1;
      } catch (err) {
        // The keyring being down fails every row alike: stop, the next run starts over.
        if (isAppError(err) && err.code === 'DEPENDENCY_UNAVAILABLE') throw err;
        counts.failed += 1;
        // Never the ciphertext or the error's cause: only which row and the stable code.
        logger.warn('secret rewrap failed', { connectionId: row.connection_id, secret: row.name, code: (err as { code?: string }).code });
      }
    }
    if (rows.length < batchSize) break;
    const last = rows[rows.length - 1]!;
    after = { id: last.connection_id, name: last.name };
  }
  // Webhook signing secrets (current and, during a rotation, previous), bound to their endpoint.
  let afterEndpoint: string | null = null;
  for (;;) {
    const rows = await endpointSecretsPage(sql, afterEndpoint, batchSize);
    for (const row of rows) {
      for (const column of ['secret', 'previous_secret'] as const) {
        const ciphertext = row[column];
        if (!ciphertext) continue;
        counts.scanned += 1;
        try {
          if (!keyring.needsRewrap(ciphertext)) {
            counts.current += 1;
            continue;
          }
          const next = await keyring.rewrap(ciphertext, webhookSecretContext(row.id));
          if (await replaceEndpointSecret(sql, row.id, column, ciphertext, next)) counts.rewrapped += 1;
          else counts.raced += 1;
        } catch (err) {
          if (isAppError(err) && err.code === 'DEPENDENCY_UNAVAILABLE') throw err;
          counts.failed += 1;
          logger.warn('webhook secret rewrap failed', { webhookId: row.id, secret: column, code: (err as { code?: string }).code });
        }
      }
    }
    if (rows.length < batchSize) break;
    afterEndpoint = rows[rows.length - 1]!.id;
  }
  return counts;
}
