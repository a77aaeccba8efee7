import type { ApiClient } from '../api-client.ts';
import { h } from '../dom.ts';
import type { Connection, Message } from '../types.ts';
import { t } from '../i18n/index.ts';

const hourMs = 3_600_000;
// 10 pages of 100 bound the start-up cost; beyond that the tile reads "1000+".
const pageLimit = 100;
const maxPages = 10;

interface Tile { value: HTMLElement; el: HTMLElement }

// Counts by connection state come from the list the app already holds; messages sent and failed in
// the last hour are read once from GET /v1/messages and then kept current from message.status events.
// A failed message has no failedAt, so the hour is judged by the event time, or createdAt at load.
export class StatsView {
  readonly root: HTMLElement;
  private readonly tiles = new Map<string, Tile>();
  private readonly sent = new Map<string, number>();
  private readonly failed = new Map<string, number>();
  private capped = { sent: false, failed: false };

  constructor(private readonly api: ApiClient) {
    const tile = (key: string, label: string, tone: string): HTMLElement => {
      const value = h('span', { class: 'tile-value', 'data-stat': key }, '0');
      const el = h('div', { class: `tile tile--${tone}` }, value, h('span', { class: 'tile-label' }, label));
      this.tiles.set(key, { value, el });
      return el;
    };
    this.root = h('section', { class: 'stats', 'aria-label': t('stats.label') },
      tile('active', t('stats.active'), 'ok'),
      tile('login', t('stats.login'), 'wait'),
      tile('error', t('stats.error'), 'bad'),
      tile('stopped', t('stats.stopped'), 'muted'),
      tile('sent', t('stats.sent'), 'ok'),
      tile('failed', t('stats.failed'), 'bad'),
    );
  }

  setConnections(list: Iterable<Connection>): void {
    const n = { active: 0, login: 0, error: 0, stopped: 0 };
    for (const c of list) {
      if (c.status === 'active' || c.status === 'error' || c.status === 'stopped') n[c.status]++;
      else n.login++;
    }
    for (const [k, v] of Object.entries(n)) this.set(k, String(v));
  }

  record(msg: Message, at: number = Date.now()): void {
    if (msg.status === 'sent') this.sent.set(msg.id, msg.sentAt ? Date.parse(msg.sentAt) : at);
    if (msg.status === 'failed') this.failed.set(msg.id, at);
    this.renderMessages();
  }

  async load(): Promise<void> {
    const [sent, failed] = await Promise.all([this.loadStatus('sent'), this.loadStatus('failed')]);
    for (const [id, t] of sent.seen) if (!this.sent.has(id)) this.sent.set(id, t);
    for (const [id, t] of failed.seen) if (!this.failed.has(id)) this.failed.set(id, t);
    this.capped = { sent: sent.capped, failed: failed.capped };
    this.renderMessages();
  }

  renderMessages(now: number = Date.now()): void {
    for (const map of [this.sent, this.failed]) for (const [id, t] of map) if (now - t > hourMs) map.delete(id);
    this.set('sent', `${this.sent.size}${this.capped.sent ? '+' : ''}`);
    this.set('failed', `${this.failed.size}${this.capped.failed ? '+' : ''}`);
  }

  private set(key: string, text: string): void {
    const t = this.tiles.get(key);
    if (t && t.value.textContent !== text) t.value.textContent = text;
  }

  // The API does not promise an order, so a page stops the walk only when none of it is recent.
  private async loadStatus(status: 'sent' | 'failed'): Promise<{ seen: Map<string, number>; capped: boolean }> {
    const seen = new Map<string, number>();
    const since = Date.now() - hourMs;
    let cursor: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const res = await this.api.listMessages({ status, limit: pageLimit, cursor });
      let recent = 0;
      for (const m of res.items) {
        const t = Date.parse((status === 'sent' ? m.sentAt : undefined) ?? m.createdAt);
        if (t >= since) {
          seen.set(m.id, t);
          recent++;
        }
      }
      cursor = res.nextCursor;
      if (!cursor || recent === 0) return { seen, capped: false };
    }
    return { seen, capped: true };
  }
}
