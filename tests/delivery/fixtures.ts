// Shared data for the delivery tests: connection rows (the outbox references them) and a recording
// sender that the tests can make fail on demand. The sender is the test double the brief allows:
// the real platform sender belongs to the supervisor.
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { AppError } from '../../src/errors.ts';
import { shardOf } from '../../src/shard.ts';
import type { MessageSender, OutboundMessage, SendCapabilities, SendProfile } from '../../src/delivery/types.ts';
import { telegramAdapter, type TelegramPacing } from '../../src/platforms/telegram/index.ts';

export type ConnectionKind = 'user' | 'bot';

export async function makeConnection(sql: postgres.Sql, owner: string, o: { kind?: ConnectionKind; status?: string; shards?: number } = {}): Promise<string> {
  const id = randomUUID();
  await sql`insert into connections (id, owner, platform, kind, status, shard)
            values (${id}, ${owner}, 'telegram', ${o.kind ?? 'user'}, ${o.status ?? 'active'}, ${shardOf(id, o.shards ?? 4)})`;
  return id;
}

/** The Telegram adapter's send capabilities (pacing, resend safety), with its pacing changed where a test says. */
export function telegramCapabilities(pacing: Partial<TelegramPacing> = {}): (platform: string, kind: string) => SendCapabilities | undefined {
  const telegram = telegramAdapter({ account: { apiId: 1, apiHash: 'test' }, bot: { botApiUrl: 'http://127.0.0.1:9' }, pacing });
  return (platform, kind) => (platform === 'telegram' ? telegram.kinds.find((k) => k.kind === kind)?.send : undefined);
}

export type Behaviour = (msg: OutboundMessage, call: number) => { platformMessageId: string } | AppError | Error | Promise<{ platformMessageId: string }>;

export class RecordingSender implements MessageSender {
  readonly calls: { msg: OutboundMessage; at: number }[] = [];
  readonly kinds = new Map<string, ConnectionKind>();
  behaviour: Behaviour = (msg) => ({ platformMessageId: `p-${msg.id.slice(0, 8)}` });
  now: () => number = Date.now;

  constructor(private readonly caps = telegramCapabilities()) {}

  async send(msg: OutboundMessage): Promise<{ platformMessageId: string }> {
    const n = this.calls.filter((c) => c.msg.id === msg.id).length + 1;
    this.calls.push({ msg, at: this.now() });
    const r = await this.behaviour(msg, n);
    if (r instanceof Error) throw r;
    return r;
  }

  capabilities(connectionId: string): SendProfile | undefined {
    const kind = this.kinds.get(connectionId) ?? 'user';
    return { kind, send: this.caps('telegram', kind)! };
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
