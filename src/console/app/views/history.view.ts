import { busy, field, h, uid } from '../dom.ts';
import { describeError } from '../error-text.ts';
import { agoElement } from '../format.ts';
import { t } from '../i18n/index.ts';
import type { Connection, Message, MessageStatus } from '../types.ts';
import { messageBadge } from './badges.ts';
import { HealthCharts } from './charts.view.ts';
import { type Ctx, connectionName, showProblem } from './context.ts';

const pageSize = 20;
const statuses: MessageStatus[] = ['queued', 'sending', 'sent', 'failed', 'cancelled'];

// Message history: every message of the caller, 20 a page (cursors from GET /v1/messages, a stack of
// them for "Newer"), filtered by connection and status, searched with q= over the texts. The health
// charts above it follow the connection filter.
export class HistoryView {
  readonly root: HTMLElement;
  private readonly list = h('ol', { class: 'msg-list', 'aria-label': t('history.list') });
  private readonly problem = h('p', { class: 'form-error', role: 'alert' });
  private readonly pageLabel = h('span', { class: 'hint', 'aria-live': 'polite' });
  private readonly newer: HTMLButtonElement;
  private readonly older: HTMLButtonElement;
  private readonly conn: HTMLSelectElement;
  private readonly status: HTMLSelectElement;
  private readonly search: HTMLInputElement;
  private readonly charts: HealthCharts;
  private cursors: (string | undefined)[] = [undefined];
  private next: string | undefined;

  constructor(private readonly ctx: Ctx, connections: () => Connection[]) {
    const conn = field(t('history.connection'), h('select', { name: 'connectionId' }));
    const status = field(t('history.status'), h('select', { name: 'status' },
      h('option', { value: '' }, t('history.any')), statuses.map((s) => h('option', { value: s }, s))));
    const search = field(t('history.search'), h('input', { type: 'search', name: 'q', autocomplete: 'off', maxlength: 200 }), t('history.search.hint'));
    this.conn = conn.input;
    this.status = status.input;
    this.search = search.input;
    const fill = () => {
      const before = this.conn.value;
      this.conn.replaceChildren(h('option', { value: '' }, t('history.any')), ...connections().map((c) => h('option', { value: c.id }, connectionName(c))));
      this.conn.value = [...this.conn.options].some((o) => o.value === before) ? before : '';
    };
    fill();
    this.conn.addEventListener('focus', fill);
    const form = h('form', { class: 'filters', 'data-form': 'history', role: 'search' },
      conn.wrap, status.wrap, search.wrap,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('history.apply'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.cursors = [undefined];
      void busy(form, () => this.load());
    });
    this.newer = h('button', { type: 'button', class: 'btn btn--small', onclick: () => this.move(-1) }, `← ${t('common.previous')}`);
    this.older = h('button', { type: 'button', class: 'btn btn--small', onclick: () => this.move(1) }, `${t('common.next')} →`);
    this.charts = new HealthCharts(ctx);
    const titleId = uid('history');
    this.root = h('section', { class: 'panel page', 'aria-labelledby': titleId, 'data-page': 'messages' },
      h('h2', { id: titleId }, t('history.title')), form, this.charts.root, this.problem, this.list,
      h('div', { class: 'pager' }, this.newer, this.pageLabel, this.older));
  }

  async load(): Promise<void> {
    const q = this.search.value.trim();
    try {
      const page = await this.ctx.api.listMessages({
        limit: pageSize, cursor: this.cursors.at(-1),
        ...(this.conn.value ? { connectionId: this.conn.value } : {}),
        ...(this.status.value ? { status: this.status.value } : {}),
        ...(q ? { q } : {}),
      });
      showProblem(this.problem, null);
      this.next = page.nextCursor;
      this.render(page.items);
    } catch (err) {
      showProblem(this.problem, err);
    }
    void this.charts.load(this.conn.value || undefined);
  }

  private async move(step: 1 | -1): Promise<void> {
    if (step === 1 && this.next) this.cursors.push(this.next);
    if (step === -1 && this.cursors.length > 1) this.cursors.pop();
    await this.load();
    (step === 1 ? this.older : this.newer).focus();
  }

  private render(items: Message[]): void {
    this.list.replaceChildren(...(items.length ? items.map((m) => this.row(m)) : [h('li', { class: 'empty' }, t('history.empty'))]));
    this.pageLabel.textContent = t('history.page', { n: this.cursors.length });
    this.newer.disabled = this.cursors.length <= 1;
    this.older.disabled = !this.next;
  }

  private row(m: Message): HTMLLIElement {
    const who = this.ctx.actorOf(m.connectionId);
    return h('li', { class: 'msg', 'data-message-id': m.id, 'data-status': m.status },
      h('div', { class: 'msg-head' }, messageBadge(m.status), h('span', { class: 'msg-chat' }, this.ctx.chatLabel(m.chat)),
        h('span', { class: 'msg-meta' }, `${m.priority} · `, agoElement(m.sentAt ?? m.createdAt))),
      m.text ? h('p', { class: 'msg-text' }, m.text) : null,
      m.error ? h('p', { class: 'msg-error' }, describeError(m.error, Date.now(), who)) : null);
  }
}
