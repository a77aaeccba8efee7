import { PlatformControlError, type PlatformFault } from '../platforms/types.ts';

// `POST /faults {type, target: '<platform>', count?, seconds?}` for one platform's HTTP listeners:
// `http-5xx` and `rate-limit` answer the next `count` requests (default 1) with a 5xx or the platform's
// rate-limit error; `latency` delays every request by `seconds` (the next `count` only, when given;
// `seconds: 0` clears it).

export type FaultHit = 'http-5xx' | 'rate-limit' | undefined;

export class PlatformFaults {
  private serverErrors = 0;
  private rateLimits = 0;
  private latencyMs = 0;
  private latencyLeft = Infinity;

  arm(f: PlatformFault): void {
    const count = f.count === undefined ? undefined : Number(f.count);
    if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new PlatformControlError(400, 'count must be a positive integer');
    switch (f.type) {
      case 'http-5xx':
        this.serverErrors += count ?? 1;
        return;
      case 'rate-limit':
        this.rateLimits += count ?? 1;
        return;
      case 'latency': {
        const seconds = Number(f.seconds ?? NaN);
        if (!(seconds >= 0)) throw new PlatformControlError(400, 'latency needs seconds >= 0');
        this.latencyMs = seconds * 1000;
        this.latencyLeft = seconds === 0 ? Infinity : (count ?? Infinity);
        return;
      }
      default:
        throw new PlatformControlError(400, `unknown fault type ${String((f as { type?: unknown }).type)}; use http-5xx, latency or rate-limit`);
    }
  }

  /** Called once per request: the delay to add and the fault to answer with, if any. */
  take(): { delayMs: number; hit: FaultHit } {
    let delayMs = 0;
    if (this.latencyMs > 0 && this.latencyLeft > 0) {
      delayMs = this.latencyMs;
      if (--this.latencyLeft <= 0) this.latencyMs = 0;
    }
    if (this.serverErrors > 0) {
      this.serverErrors--;
      return { delayMs, hit: 'http-5xx' };
    }
    if (this.rateLimits > 0) {
      this.rateLimits--;
      return { delayMs, hit: 'rate-limit' };
    }
    return { delayMs, hit: undefined };
  }

  reset(): void {
    this.serverErrors = 0;
    this.rateLimits = 0;
    this.latencyMs = 0;
    this.latencyLeft = Infinity;
  }
}
