import type { Clock } from './types.ts';

// Faults injected through POST /faults. A fault aims at one account (user or bot id) or, with no
// target, at everyone. drop-connections and revoke-session act once (the world does it); the
// others stay armed: flood-wait for `count` sends, latency and refuse-connections until `seconds`
// elapse (refuse) or until cleared / reset.

export type FaultType = 'drop-connections' | 'flood-wait' | 'revoke-session' | 'latency' | 'refuse-connections' | 'clear';
export const faultTypes: readonly FaultType[] = ['drop-connections', 'flood-wait', 'revoke-session', 'latency', 'refuse-connections', 'clear'];

interface Armed { type: 'flood-wait' | 'latency' | 'refuse-connections'; accountId?: number; seconds: number; remaining: number; until: number }

const applies = (f: Armed, accountId: number | undefined) => f.accountId === undefined || f.accountId === accountId;

export class Faults {
  private armed: Armed[] = [];

  constructor(private readonly clock: Clock) {}

  arm(type: Armed['type'], accountId: number | undefined, seconds: number, count: number): void {
    const until = type === 'refuse-connections' && seconds > 0 ? this.clock.now() + seconds * 1000 : Infinity;
    this.armed.push({ type, accountId, seconds, remaining: type === 'flood-wait' ? count : Infinity, until });
  }

  /** Consumes one armed flood wait for this sender: the seconds to answer, or 0. */
  takeFloodWait(accountId: number): number {
    const f = this.armed.find((x) => x.type === 'flood-wait' && x.remaining > 0 && applies(x, accountId));
    if (!f) return 0;
    f.remaining--;
    if (f.remaining === 0) this.armed = this.armed.filter((x) => x !== f);
    return f.seconds;
  }

  /** Extra delay before answering this account (ms); `undefined` account = not yet known. */
  latencyMs(accountId: number | undefined): number {
    let ms = 0;
    for (const f of this.armed) if (f.type === 'latency' && applies(f, accountId)) ms += f.seconds * 1000;
    return ms;
  }

  /** True when new connections (for this account, or any when undefined and the fault is global) are refused. */
  refuses(accountId: number | undefined, globalOnly = false): boolean {
    if (this.armed.length === 0) return false; // checked on every packet: no allocation when nothing is armed
    const now = this.clock.now();
    this.armed = this.armed.filter((f) => f.until > now);
    return this.armed.some((f) => f.type === 'refuse-connections' && (globalOnly ? f.accountId === undefined : applies(f, accountId)));
  }

  clear(): void {
    this.armed = [];
  }
}
