// Meta's publishing quota per account in a moving 24 hours (Instagram `content_publishing_limit`: 50;
// Threads `threads_publishing_limit`: 250 posts). The service reads usage and total from the API and
// counts its own publishes on top, so a post over the limit is refused before any call, with the
// seconds until a slot frees. What the API reported has no timestamps: those posts are counted until
// one window after the reading (a conservative bound), and the next send past `staleMs` reads again.

export interface QuotaReading { usage: number; total: number; durationS: number }

export class PublishQuota {
  #limit?: number;
  #windowMs = 24 * 3600_000;
  #base = 0;
  #baseAt = 0;
  #local: number[] = [];
  #readAt = -Infinity;

  constructor(private readonly name: string, private readonly staleMs: number, private readonly now: () => number) {}

  /** A fresh reading from the API: it includes every publish made so far. */
  sync(r: QuotaReading): void {
    const t = this.now();
    this.#limit = r.total;
    this.#windowMs = r.durationS * 1000;
    this.#base = r.usage;
    this.#baseAt = t;
    this.#local = [];
    this.#readAt = t;
  }

  get stale(): boolean {
    return this.#limit === undefined || this.now() - this.#readAt >= this.staleMs;
  }

  /** A publish this service made (counted until it leaves the window). */
  note(): void {
    this.#local.push(this.now());
  }

  used(): number {
    const t = this.now();
    this.#local = this.#local.filter((x) => x > t - this.#windowMs);
    const base = t < this.#baseAt + this.#windowMs ? this.#base : 0;
    return base + this.#local.length;
  }

  /** Seconds until one more publish fits, or 0 when it fits now (or no limit is known yet). */
  waitS(): number {
    if (this.#limit === undefined || this.used() < this.#limit) return 0;
    const frees = [...(this.#base > 0 && this.now() < this.#baseAt + this.#windowMs ? [this.#baseAt + this.#windowMs] : []), ...this.#local.slice(0, 1).map((x) => x + this.#windowMs)];
    const at = frees.length ? Math.min(...frees) : this.now() + 3600_000;
    return Math.max(1, Math.ceil((at - this.now()) / 1000));
  }

  view(): Array<{ name: string; used: number; limit: number; resetsAt: string }> {
    if (this.#limit === undefined) return [];
    const used = this.used();
    const next = [...(this.#base > 0 && this.now() < this.#baseAt + this.#windowMs ? [this.#baseAt + this.#windowMs] : []), ...this.#local.slice(0, 1).map((x) => x + this.#windowMs)];
    const resetsAt = new Date(next.length ? Math.min(...next) : this.now()).toISOString();
    return [{ name: this.name, used, limit: this.#limit, resetsAt }];
  }
}
