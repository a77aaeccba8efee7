import { h } from '../dom.ts';
import { localTime, timeAgo } from '../format.ts';
import type { Connection } from '../types.ts';
import { statusBadge } from './badges.ts';
import { connectionName, kindLabel } from './context.ts';
import { t } from '../i18n/index.ts';

interface Row { li: HTMLLIElement; button: HTMLButtonElement; name: HTMLElement; meta: HTMLElement; badge: HTMLElement; since: HTMLTimeElement }

// Keyed rows updated in place: a status event changes a badge's text without rebuilding the list,
// so focus and scroll position survive a stream of events.
export class ConnectionList {
  readonly root: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly empty: HTMLElement;
  private readonly rows = new Map<string, Row>();

  constructor(private readonly onSelect: (id: string) => void, onRefresh: () => void) {
    this.list = h('ul', { class: 'conn-list', 'aria-label': t('conns.title') });
    this.empty = h('p', { class: 'empty' }, t('conns.empty'));
    this.root = h('section', { class: 'panel panel--list', 'aria-labelledby': 'conns-title' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'conns-title' }, t('conns.title')),
        h('button', { type: 'button', class: 'btn btn--small', onclick: onRefresh }, t('common.refresh'))),
      this.empty, this.list);
  }

  render(connections: Connection[], selectedId: string | null, now: number = Date.now()): void {
    const ordered = [...connections].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
    const keep = new Set(ordered.map((c) => c.id));
    for (const [id, row] of this.rows) {
      if (keep.has(id)) continue;
      row.li.remove();
      this.rows.delete(id);
    }
    for (const c of ordered) {
      const row = this.rows.get(c.id) ?? this.create(c.id);
      setText(row.name, connectionName(c));
      setText(row.meta, [c.platform === 'telegram' ? (c.kind === 'bot' ? t('conns.bot') : t('conns.user')) : kindLabel(c), c.username ? `@${c.username}` : '', c.phone ?? ''].filter(Boolean).join(' · '));
      if (row.badge.dataset.status !== c.status) {
        const badge = statusBadge(c.status);
        row.badge.replaceWith(badge);
        row.badge = badge;
      }
      setText(row.since, timeAgo(c.statusSince, now));
      // The app's 1 s ticker keeps the text current between renders (refreshTimes).
      row.since.dataset.ago = c.statusSince;
      row.since.dateTime = c.statusSince;
      row.since.title = localTime(c.statusSince);
      if (c.id === selectedId) row.button.setAttribute('aria-current', 'true');
      else row.button.removeAttribute('aria-current');
    }
    // Moving a node blurs it, so the DOM order is only touched when the order really changed.
    const current = Array.from(this.list.children);
    if (current.length !== ordered.length || ordered.some((c, i) => current[i] !== this.rows.get(c.id)!.li)) {
      this.list.append(...ordered.map((c) => this.rows.get(c.id)!.li));
    }
    this.empty.hidden = ordered.length > 0;
  }

  private create(id: string): Row {
    const name = h('span', { class: 'conn-name' });
    const meta = h('span', { class: 'conn-meta' });
    const badge = h('span', { class: 'badge' });
    const since = h('time', { class: 'conn-since' });
    const button = h('button', { type: 'button', class: 'conn-row', 'data-connection-id': id, 'data-focus-key': `conn-${id}`, onclick: () => this.onSelect(id) },
      h('span', { class: 'conn-main' }, name, meta), h('span', { class: 'conn-side' }, badge, since));
    const li = h('li', null, button);
    const row = { li, button, name, meta, badge, since };
    this.rows.set(id, row);
    return row;
  }
}

const setText = (el: HTMLElement, text: string): void => {
  if (el.textContent !== text) el.textContent = text;
};
