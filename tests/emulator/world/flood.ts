// Sliding-window counters for Telegram's pacing rules. Pure: the caller passes `now` (ms), so tests
// drive time with a manual clock. A denied hit is not recorded, like Telegram, which does not
// extend a flood wait for calls it refused.

export class SlidingWindows {
  private readonly hits = new Map<string, number[]>();

  /** Records a hit and returns 0, or returns the ms to wait (nothing recorded) when `limit` hits already fall within `windowMs`. */
  hit(key: string, limit: number, windowMs: number, now: number): number {
    let times = this.hits.get(key);
    if (!times) this.hits.set(key, (times = []));
    while (times.length && times[0]! <= now - windowMs) times.shift();
    if (times.length >= limit) return times[0]! + windowMs - now;
    times.push(now);
    return 0;
  }

  /** Same check as hit() without recording: lets a caller test several windows before committing to all. */
  peek(key: string, limit: number, windowMs: number, now: number): number {
    const times = this.hits.get(key);
    if (!times) return 0;
    let live = 0;
    let oldest = Infinity;
    for (const t of times) if (t > now - windowMs) { live++; oldest = Math.min(oldest, t); }
    return live >= limit ? oldest + windowMs - now : 0;
  }

  /** Drops windows with no hit in the last `maxWindowMs`, so a long benchmark does not keep a key per chat forever. */
  prune(now: number, maxWindowMs: number): void {
    for (const [key, times] of this.hits) if (!times.length || times[times.length - 1]! <= now - maxWindowMs) this.hits.delete(key);
  }

  clear(): void {
    this.hits.clear();
  }
}

/** Telegram answers whole seconds, at least 1. */
export const waitSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
