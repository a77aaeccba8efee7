// Shared data for the delivery tests: connection rows (the outbox references them) and a recording
// sender that the tests can make fail on demand. The sender is the test double the brief allows:
// the real platform sender belongs to the supervisor.
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { AppError } from '../../src/errors.ts';
import { shardOf } from '../../src/shard.ts';
import type { ConnectionKind, MessageSender, OutboundMessage } from '../../src/delivery/types.ts';

export async function makeConnection(sql: postgres.Sql, owner: string, o: { kind?: ConnectionKind; status?: string; shards?: number } = {}): Promise<string> {
  const id = randomUUID();
  await sql`insert into connections (id, owner, kind, status, shard)
            values (${id}, ${owner}, ${o.kind ?? 'user'}, ${o.status ?? 'active'}, ${shardOf(id, o.shards ?? 4)})`;
  return id;
}

export type Behaviour = (msg: OutboundMessage, call: number) => { platformMessageId: string } | AppError | Error | Promise<{ platformMessageId: string }>;

export class RecordingSender implements MessageSender {
  readonly calls: { msg: OutboundMessage; at: number }[] = [];
  readonly kinds = new Map<string, ConnectionKind>();
  behaviour: Behaviour = (msg) => ({ platformMessageId: `p-${msg.id.slice(0, 8)}` });
  now: () => number = Date.now;

  async send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const n = this.calls.filter((c) => c.msg.id === msg.id).length + 1;
    this.calls.push({ msg, at: this.now() });
    const r = await this.behaviour(msg, n);
    if (r instanceof Error) throw r;
    return r;
  }

  kindOf(connectionId: string): ConnectionKind | undefined {
    return this.kinds.get(connectionId) ?? 'user';
  }

  countById(): Map<string, number> {
    const m = new Map<string, number>();
    for (const c of this.calls) m.set(c.msg.id, (m.get(c.msg.id) ?? 0) + 1);
    return m;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
