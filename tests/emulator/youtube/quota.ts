// YouTube Data API quota, per Google Cloud project (here: per emulator), per Pacific-time day.
// determine_quota_cost (2026): 10,000 units a day for most methods, and videos.insert in a bucket of its
// own, 100 calls a day at 1 per call. Older revisions charged insert 1,600 of the 10,000 units; both
// shapes are settings (`insertsPerDay`, `insertUnitCost`). Daily quotas reset at midnight Pacific Time.

const pacific = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/Los_Angeles', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

function pacificParts(ms: number): { y: number; m: number; d: number; h: number; min: number } {
  const p = Object.fromEntries(pacific.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: Number(p.year), m: Number(p.month), d: Number(p.day), h: Number(p.hour), min: Number(p.minute) };
}

/** "YYYY-MM-DD" of the Pacific calendar day that contains `ms`. */
export function pacificDay(ms: number): string {
  const { y, m, d } = pacificParts(ms);
  return `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** Epoch ms of the next Pacific midnight after `ms` (07:00 or 08:00 UTC, by daylight saving). */
export function nextPacificMidnight(ms: number): number {
  const { y, m, d } = pacificParts(ms);
  for (const utcHour of [7, 8]) {
    const candidate = Date.UTC(y, m - 1, d + 1, utcHour);
    const p = pacificParts(candidate);
    if (p.h === 0 && p.min === 0) return candidate;
  }
  throw new Error('no Pacific midnight found'); // unreachable: PT is UTC-7 or UTC-8
}

export interface QuotaSettings {
  unitsPerDay: number;
  /** Calls a day in videos.insert's own bucket; null when insert only draws on the units. */
  insertsPerDay: number | null;
  /** Units an insert draws from the shared 10,000 (0 today; 1,600 in older revisions). */
  insertUnitCost: number;
}

export interface QuotaView { day: string; units: number; unitsPerDay: number; inserts: number; insertsPerDay: number | null; resetsAt: string }

export class Quota {
  private day = '';
  private units = 0;
  private inserts = 0;

  constructor(private readonly settings: () => QuotaSettings) {}

  private roll(now: number): void {
    const day = pacificDay(now);
    if (day !== this.day) {
      this.day = day;
      this.units = 0;
      this.inserts = 0;
    }
  }

  /** Charges one method call; false when the day's quota cannot cover it (the call gets `quotaExceeded`). */
  charge(now: number, kind: 'insert' | 'read'): boolean {
    this.roll(now);
    const s = this.settings();
    if (kind === 'read') {
      if (this.units + 1 > s.unitsPerDay) return false;
      this.units += 1;
      return true;
    }
    if (s.insertsPerDay !== null && this.inserts + 1 > s.insertsPerDay) return false;
    if (this.units + s.insertUnitCost > s.unitsPerDay) return false;
    this.inserts += 1;
    this.units += s.insertUnitCost;
    return true;
  }

  view(now: number): QuotaView {
    this.roll(now);
    const s = this.settings();
    return {
      day: this.day, units: this.units, unitsPerDay: s.unitsPerDay, inserts: this.inserts, insertsPerDay: s.insertsPerDay,
      resetsAt: new Date(nextPacificMidnight(now)).toISOString(),
    };
  }

  reset(): void {
    this.day = '';
    this.units = 0;
    this.inserts = 0;
  }
}
