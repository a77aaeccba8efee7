import { h, uid } from '../dom.ts';
import { localTime } from '../format.ts';
import { t } from '../i18n/index.ts';
import type { AuditEntry } from '../types.ts';
import { type Ctx, showProblem } from './context.ts';

const pageSize = 50;

// The audit trail: the caller's own (GET /v1/audit), or everyone's for an admin token
// (GET /admin/audit, behind a checkbox). A table, newest first, paged by cursor.
export class AuditView {
  readonly root: HTMLElement;
  private readonly body = h('tbody');
  private readonly problem = h('p', { class: 'form-error', role: 'alert' });
  private readonly more: HTMLButtonElement;
  private readonly all: HTMLInputElement | null;
  private cursor: string | undefined;

  constructor(private readonly ctx: Ctx, admin: boolean) {
    const titleId = uid('audit');
    this.all = admin ? h('input', { type: 'checkbox', id: uid('audit-all'), name: 'all' }) : null;
    this.all?.addEventListener('change', () => void this.load());
    this.more = h('button', { type: 'button', class: 'btn btn--small', onclick: () => void this.load(true) }, `${t('common.next')} →`);
    this.root = h('section', { class: 'panel page', 'aria-labelledby': titleId, 'data-page': 'audit' },
      h('div', { class: 'panel-head' }, h('h2', { id: titleId }, t('audit.title')),
        h('button', { type: 'button', class: 'btn btn--small', onclick: () => void this.load() }, t('common.refresh'))),
      this.all ? h('label', { class: 'check', for: this.all.id }, this.all, t('audit.all')) : null,
      this.problem,
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': titleId },
        h('table', { class: 'table' },
          h('thead', null, h('tr', null, ...(['audit.at', 'audit.actor', 'audit.action', 'audit.target', 'audit.details'] as const).map((k) => h('th', { scope: 'col' }, t(k))))),
          this.body)),
      h('div', { class: 'pager' }, this.more));
  }

  async load(append = false): Promise<void> {
    try {
      const page = await this.ctx.api.audit({ limit: pageSize, cursor: append ? this.cursor : undefined }, this.all?.checked ?? false);
      showProblem(this.problem, null);
      this.cursor = page.nextCursor;
      const rows = page.items.map(row);
      if (append) this.body.append(...rows);
      else this.body.replaceChildren(...(rows.length ? rows : [h('tr', null, h('td', { colspan: 5, class: 'empty' }, t('audit.empty')))]));
      this.more.disabled = !this.cursor;
    } catch (err) {
      showProblem(this.problem, err);
    }
  }
}

const row = (e: AuditEntry): HTMLTableRowElement =>
  h('tr', { 'data-action': e.action },
    h('td', null, h('time', { datetime: e.at }, localTime(e.at))),
    h('td', { class: 'mono' }, e.owner && e.owner !== e.actor ? `${e.actor} (${e.owner})` : e.actor),
    h('td', null, e.action),
    h('td', { class: 'mono' }, e.target ?? ''),
    h('td', { class: 'mono' }, e.details === undefined || e.details === null ? '' : JSON.stringify(e.details)));
