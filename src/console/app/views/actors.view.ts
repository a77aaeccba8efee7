import { h, uid } from '../dom.ts';
import { t } from '../i18n/index.ts';
import type { ActorList, ActorSummary } from '../types.ts';
import { type Ctx, showProblem } from './context.ts';

// Read every 2 s while the page is open: the tree of a busy node changes by the second, and an
// operator watching a restart wants to see it without pressing anything.
const refreshMs = 2_000;

// Admin only (the page exists only for a token with the admin scope; the server enforces it with 403
// anyway): the supervisor's actors with state, restarts, breaker and memory, and a restart button.
export class ActorsView {
  readonly root: HTMLElement;
  private readonly body = h('tbody');
  private readonly totals = h('p', { class: 'hint', 'data-actor-totals': '' });
  private readonly problem = h('p', { class: 'form-error', role: 'alert' });
  private timer: number | undefined;

  constructor(private readonly ctx: Ctx) {
    const titleId = uid('actors');
    const cols = ['actors.id', 'actors.kind', 'actors.state', 'actors.restarts', 'actors.breaker', 'actors.memory', 'actors.node'] as const;
    this.root = h('section', { class: 'panel page', 'aria-labelledby': titleId, 'data-page': 'actors' },
      h('h2', { id: titleId }, t('actors.title')), this.totals, this.problem,
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': titleId },
        h('table', { class: 'table' },
          h('thead', null, h('tr', null, ...cols.map((k) => h('th', { scope: 'col' }, t(k))), h('td', null))),
          this.body)));
  }

  start(): void {
    this.stop();
    void this.load();
    this.timer = window.setInterval(() => void this.load(), refreshMs);
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
  }

  async load(): Promise<void> {
    let list: ActorList;
    try {
      list = await this.ctx.api.actors();
      showProblem(this.problem, null);
    } catch (err) {
      showProblem(this.problem, err);
      return;
    }
    this.totals.textContent = t('actors.totals', { totals: Object.entries(list.totals).map(([k, v]) => `${k} ${v}`).join(', ') || '0' });
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focusKey : undefined;
    this.body.replaceChildren(...(list.items.length ? list.items.map((a) => this.row(a)) : [h('tr', null, h('td', { colspan: 8, class: 'empty' }, t('actors.empty')))]));
    if (focused) this.body.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  }

  private row(a: ActorSummary): HTMLTableRowElement {
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
    return h('tr', { 'data-actor-id': a.id, 'data-state': a.state },
      h('td', { class: 'mono' }, a.id),
      h('td', null, a.kind),
      h('td', null, a.state, a.lastError ? h('span', { class: 'msg-error' }, ` ${a.lastError.code}`) : null),
      h('td', { 'data-restarts': String(a.restarts) }, String(a.restarts)),
      h('td', null, a.breaker ? `${a.breaker.state} (${a.breaker.failures})` : ''),
      h('td', null, a.memory ? `${mib(a.memory.bytes)} / ${mib(a.memory.budget)}` : ''),
      h('td', null, a.node ?? ''),
      h('td', null, h('button', {
        type: 'button', class: 'btn btn--small', 'data-focus-key': `restart-${a.id}`, 'aria-label': t('actors.restart.label', { id: a.id }),
        onclick: () => void this.restart(a.id),
      }, t('actors.restart'))));
  }

  private async restart(id: string): Promise<void> {
    try {
      await this.ctx.api.restartActor(id);
      this.ctx.toast('info', t('actors.restarted', { id }));
      await this.load();
    } catch (err) {
      showProblem(this.problem, err);
    }
  }
}
