import { createHash } from 'node:crypto';

// Telegram drops a second messages.sendMessage with a random_id it has already seen from the same
// account, so deriving random_id from our message id makes a resend after a crash harmless.
// 63 bits (positive int64) from SHA-256. Dedupe is per account, so only collisions within one account
// matter: for 10^6 messages of one account the chance of any collision is ~5e-8.
const mask = (1n << 63n) - 1n;

export function randomIdFor(messageId: string): bigint {
  const v = createHash('sha256').update(messageId).digest().readBigUInt64BE(0) & mask;
  return v === 0n ? 1n : v; // 0 reads as "not set" in some clients
}

/** The file_id of a message's upload: stable across resends (its parts are replaced, not added), distinct from its random_id. */
export function fileIdFor(messageId: string): bigint {
  return randomIdFor(`file:${messageId}`);
}
