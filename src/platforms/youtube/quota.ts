// YouTube Data API quota, per Google Cloud project, per Pacific-time day ("Quota usage": "Daily quotas
// reset at midnight Pacific Time"). The service counts what it spends so that an upload past the quota
// is refused before any call, with retryAfter until the reset; a `quotaExceeded` answer (another app
// of the same project spent it) marks the day spent as well. One counter per process and project:
// the adapter's, shared by its connections (docs/platforms/youtube.md).

const pacific = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/Los_Angeles', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

function parts(ms: number): { y: number; m: number; d: number; h: number; min: number } {
  const p = Object.fromEntries(pacific.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: Number(p.year), m: Number(p.month), d: Number(p.day), h: Number(p.hour), min: Number(p.minute) };
}

export function pacificDay(ms: number): string {
  const { y, m, d } = parts(ms);
  return `${y}-${m}-${d}`;
}

/** Epoch ms of the next Pacific midnight after `ms` (07:00 or 08:00 UTC, by daylight saving). */
export function nextPacificMidnight(ms: number): number {
  const { y, m, d } = parts(ms);
  for (const utcHour of [7, 8]) {
    const t = Date.UTC(y, m - 1, d + 1, utcHour);
    const p = parts(t);
    if (p.h === 0 && p.min === 0) return t;
  }
  return Date.UTC(y, m - 1, d + 1, 8);
}

export interface YoutubeQuotaSettings {
  /** Units a project gets a day (default 10,000). */
  unitsPerDay: number;
  /** Units one videos.insert draws from them. */
  insertUnits: number;
  /** videos.insert calls a day in their own bucket, or null when inserts only draw units. */
  insertsPerDay: number | null;
}

export class YoutubeQuota {
  #day = '';
  #units = 0;
  #inserts = 0;
  #spent = false;

  constructor(private readonly s: YoutubeQuotaSettings, private readonly now: () => number = Date.now) {}

  #roll(): void {
    const day = pacificDay(this.now());
    if (day === this.#day) return;
    this.#day = day;
    this.#units = 0;
    this.#inserts = 0;
    this.#spent = false;
  }

  /** Seconds until the reset when `kind` cannot be afforded today, else 0 (and the call is counted). */
  take(kind: 'insert' | 'read'): number {
    this.#roll();
    const cost = kind === 'insert' ? this.s.insertUnits : 1;
    const bucketFull = kind === 'insert' && this.s.insertsPerDay !== null && this.#inserts + 1 > this.s.insertsPerDay;
    if (this.#spent || bucketFull || this.#units + cost > this.s.unitsPerDay) return this.retryAfterS();
    this.#units += cost;
    if (kind === 'insert') this.#inserts += 1;
    return 0;
  }

  /** The platform answered quotaExceeded: nothing more today. */
  spent(): void {
    this.#roll();
    this.#spent = true;
  }

  retryAfterS(): number {
    return Math.max(1, Math.ceil((nextPacificMidnight(this.now()) - this.now()) / 1000));
  }

  view(): Array<{ name: string; used: number; limit: number; resetsAt: string }> {
    this.#roll();
    const resetsAt = new Date(nextPacificMidnight(this.now())).toISOString();
    const out = [{ name: 'youtube.units.daily', used: this.#spent ? this.s.unitsPerDay : this.#units, limit: this.s.unitsPerDay, resetsAt }];
    if (this.s.insertsPerDay !== null) out.push({ name: 'youtube.uploads.daily', used: this.#spent ? this.s.insertsPerDay : this.#inserts, limit: this.s.insertsPerDay, resetsAt });
    return out;
  }
}
