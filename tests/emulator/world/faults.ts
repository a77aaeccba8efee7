import type { Clock } from './types.ts';

// Faults injected through POST /faults. A fault aims at one account (user or bot id) or, with no
// target, at everyone. drop-connections and revoke-session act once (the world does it); the
// others stay armed: flood-wait for `count` sends, migrate for `count` MTProto requests, latency and
// refuse-connections until `seconds` elapse (refuse) or until cleared / reset.

export type FaultType = 'drop-connections' | 'flood-wait' | 'revoke-session' | 'latency' | 'refuse-connections' | 'migrate' | 'clear';
export const faultTypes: readonly FaultType[] = ['drop-connections', 'flood-wait', 'revoke-session', 'latency', 'refuse-connections', 'migrate', 'clear'];

interface Armed {
  type: 'flood-wait' | 'latency' | 'refuse-connections' | 'migrate';
  accountId?: number;
  seconds: number;
  remaining: number;
  until: number;
  /** migrate: the DC named in NETWORK_MIGRATE_X, and optionally the one method it answers (lower case). */
  dc?: number;
  method?: string;
}

const applies = (f: Armed, accountId: number | undefined) => f.accountId === undefined || f.accountId === accountId;

export class Faults {
  private armed: Armed[] = [];

  constructor(private readonly clock: Clock) {}

  arm(type: Armed['type'], accountId: number | undefined, seconds: number, count: number): void {
    const until = type === 'refuse-connections' && seconds > 0 ? this.clock.now() + seconds * 1000 : Infinity;
    this.armed.push({ type, accountId, seconds, remaining: type === 'flood-wait' ? count : Infinity, until });
  }

  /** NETWORK_MIGRATE_<dc> for the next `count` MTProto requests of the account (of `method` only, if given). */
  armMigrate(accountId: number | undefined, dc: number, count: number, method?: string): void {
    this.armed.push({ type: 'migrate', accountId, seconds: 0, remaining: count, until: Infinity, dc, method: method?.toLowerCase() });
  }

  /** Consumes one armed migrate fault for this request: the DC to name, or 0. Runs on every RPC. */
  takeMigrate(accountId: number | undefined, method: string): number {
    if (this.armed.length === 0) return 0;
    const f = this.armed.find((x) => x.type === 'migrate' && x.remaining > 0 && applies(x, accountId) && (x.method === undefined || x.method === method.toLowerCase()));
    if (!f) return 0;
    f.remaining--;
    if (f.remaining === 0) this.armed = this.armed.filter((x) => x !== f);
    return f.dc!;
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
