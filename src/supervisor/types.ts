import type { Fence } from '../store/leases.ts';

// What operators see of the supervisor's actors (/admin/actors).

export interface ActorSummary {
  id: string; kind: string; owner: string; state: string; since: string; restarts: number;
  breaker: { state: string; failures: number; openUntil?: string };
  memory: { bytes: number; budget: number };
  lastError?: { code: string; message: string; retryAt?: string };
  shard: number;
  /** the node running it (API.md "Several daemons") */
  node?: string;
}

export interface ActorDetail extends ActorSummary {
  snapshot: { value: unknown; status: string; tags: string[] };
  context: Record<string, unknown>; // without secrets
  transitions: { at: string; from: string; to: string; event: string }[]; // last 50
}

/** The shard leases of this node (src/cluster/cluster.ts), as the supervisor and delivery use them. */
export interface ShardOwnership {
  readonly node: string;
  /** Whether this node may run the shard now. */
  holds(shard: number): boolean;
  /** What a write for the shard carries; refused by the database once the lease moved on. */
  fence(shard: number): Fence;
  /**
   * A fenced write was refused: true when the lease is the reason — gone (the shard is being stopped),
   * or held now under a newer epoch than the write's `epoch`.
   */
  refused(shard: number, epoch?: number): Promise<boolean>;
}
