import { createHash } from 'node:crypto';

// shard = hash(connectionId) mod SHARDS (ARCHITECTURE.md). One node owns every shard today; the
// `shard` column and the per-shard queues let several nodes split them later through leases.
export function shardOf(connectionId: string, shards: number): number {
  return createHash('sha256').update(connectionId).digest().readUInt32BE(0) % shards;
}
