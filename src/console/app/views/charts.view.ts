import uPlot from 'uplot';
import { h, uid } from '../dom.ts';
import { lang, t } from '../i18n/index.ts';
import type { Message } from '../types.ts';
import type { Ctx } from './context.ts';

const hourMs = 3_600_000;
const hours = 24;
// 10 pages of 100 bound the cost of one draw; the summary says "1000+" beyond that.
const pageLimit = 100;
const maxPages = 10;

export interface HourBuckets { start: number[]; sent: number[]; failed: number[]; latency: (number | null)[] }

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Sent and failed per hour and the median accept → sent seconds, for the 24 hours up to `now`. */
export const bucketByHour = (messages: Message[], now: number): HourBuckets => {
  const first = Math.floor(now / hourMs) * hourMs - (hours - 1) * hourMs;
  const start = Array.from({ length: hours }, (_, i) => first + i * hourMs);
  const sent = start.map(() => 0);
  const failed = start.map(() => 0);
  const waits: number[][] = start.map(() => []);
  for (const m of messages) {
    const at = Date.parse((m.status === 'sent' ? m.sentAt : undefined) ?? m.createdAt);
    const i = Math.floor((at - first) / hourMs);
    if (i < 0 || i >= hours) continue;
    if (m.status === 'sent') {
      sent[i]!++;
      if (m.sentAt) waits[i]!.push(Math.max(0, (Date.parse(m.sentAt) - Date.parse(m.createdAt)) / 1000));
    } else if (m.status === 'failed') failed[i]!++;
  }
  return { start, sent, failed, latency: waits.map(median) };
};

// Session health drawn with uPlot (bundled into app.js; nothing is fetched from elsewhere) from the
// service's own data: the caller's messages of the last 24 h. Each chart has a text summary beside it
// for screen readers and for anyone who cannot read a canvas.
export class HealthCharts {
  readonly root: HTMLElement;
  private readonly summary = h('p', { class: 'chart-summary', 'data-chart-summary': '' });
  private readonly counts = h('div', { class: 'chart', role: 'img', 'data-chart': 'counts' });
  private readonly latency = h('div', { class: 'chart', role: 'img', 'data-chart': 'latency' });
  private plots: uPlot[] = [];

  constructor(private readonly ctx: Ctx) {
    const id = uid('charts');
    this.counts.setAttribute('aria-label', `${t('charts.sent')}, ${t('charts.failed')}`);
    this.latency.setAttribute('aria-label', t('charts.latency'));
    this.root = h('section', { class: 'charts', 'aria-labelledby': id },
      h('h3', { id }, t('charts.title')), this.summary, h('div', { class: 'chart-row' }, this.counts, this.latency));
  }

  async load(connectionId?: string): Promise<void> {
    const since = Date.now() - hours * hourMs;
    const all: Message[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const res = await this.ctx.api.listMessages({ limit: pageLimit, cursor, ...(connectionId ? { connectionId } : {}) }).catch(() => null);
      if (!res) break;
      all.push(...res.items);
      cursor = res.nextCursor;
      // Newest first: a page that ends before the window ends the walk.
      const last = res.items.at(-1);
      if (!cursor || (last && Date.parse(last.createdAt) < since)) break;
    }
    this.draw(bucketByHour(all, Date.now()));
  }

  private draw(b: HourBuckets): void {
    const sent = b.sent.reduce((a, x) => a + x, 0);
    const failed = b.failed.reduce((a, x) => a + x, 0);
    const waits = b.latency.filter((x): x is number => x !== null);
    this.summary.textContent = sent + failed === 0 ? t('charts.none')
      : t('charts.summary', { sent, failed, latency: waits.length ? (waits.reduce((a, x) => a + x, 0) / waits.length).toFixed(1) : '—' });
    this.summary.dataset.sent = String(sent);
    this.summary.dataset.failed = String(failed);
    for (const p of this.plots) p.destroy();
    const width = Math.max(260, Math.min(520, (this.root.clientWidth || 560) / 2 - 16));
    const x = b.start.map((s) => s / 1000);
    const fmt = new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit' });
    const axes: uPlot.Axis[] = [{ values: (_u, splits) => splits.map((s) => fmt.format(s * 1000)) }, {}];
    this.plots = [
      new uPlot({ width, height: 180, axes, series: [{}, { label: t('charts.sent'), stroke: '#1d7a46', width: 2 }, { label: t('charts.failed'), stroke: '#b42318', width: 2 }] },
        [x, b.sent, b.failed], this.counts),
      new uPlot({ width, height: 180, axes, series: [{}, { label: t('charts.latency'), stroke: '#2458c6', width: 2, spanGaps: true }] },
        [x, b.latency], this.latency),
    ];
  }
}
