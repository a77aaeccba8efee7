import { busy, field, h, uid } from '../dom.ts';
import { localTime } from '../format.ts';
import { t } from '../i18n/index.ts';
import type { Consent } from '../types.ts';
import { type Ctx, showProblem } from './context.ts';

const purposes = ['processing', 'message-retention'] as const;
// The text a decision refers to: this console's wording of the purposes (docs/console.md).
export const consentVersion = 'console-2026-12';

// Privacy: the caller's consents (grant, withdraw), a download of everything stored about them, and
// "delete everything" behind a typed confirmation word.
export class PrivacyView {
  readonly root: HTMLElement;
  private readonly list = h('ul', { class: 'consent-list' });
  private readonly problem = h('p', { class: 'form-error', role: 'alert' });
  private consents: Consent[] = [];

  constructor(private readonly ctx: Ctx, onErased: () => void) {
    const titleId = uid('privacy');
    const exportProblem = h('p', { class: 'form-error', role: 'alert' });
    const exportButton = h('button', { type: 'button', class: 'btn', 'data-action': 'export' }, t('privacy.export.submit'));
    exportButton.addEventListener('click', async () => {
      try {
        const blob = await busy(exportButton, () => ctx.api.exportMe());
        const file = `my-data-${new Date().toISOString().slice(0, 10)}.json`;
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: file, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
        showProblem(exportProblem, null);
        ctx.toast('success', t('privacy.export.done', { file }));
      } catch (err) {
        showProblem(exportProblem, err);
      }
    });

    const word = t('privacy.erase.word');
    const confirm = field(t('privacy.erase.type', { word }), h('input', { type: 'text', name: 'confirm', autocomplete: 'off', spellcheck: 'false' }));
    const eraseProblem = h('p', { class: 'form-error', role: 'alert' });
    const erase = h('form', { class: 'erase-form', novalidate: true, 'data-form': 'erase' },
      h('p', { class: 'hint' }, t('privacy.erase.hint')), confirm.wrap, eraseProblem,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--danger' }, t('privacy.erase.submit'))));
    confirm.input.addEventListener('input', () => confirm.setError(null));
    erase.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (confirm.input.value.trim() !== word) {
        confirm.setError(t('privacy.erase.mismatch', { word }));
        confirm.input.focus();
        return;
      }
      try {
        await busy(erase, () => ctx.api.deleteMe());
        onErased();
      } catch (err) {
        showProblem(eraseProblem, err);
      }
    });

    const h3 = (key: 'privacy.consents' | 'privacy.export' | 'privacy.erase') => {
      const id = uid('p');
      return { id, el: h('h3', { id }, t(key)) };
    };
    const [c, x, d] = [h3('privacy.consents'), h3('privacy.export'), h3('privacy.erase')];
    this.root = h('section', { class: 'panel page', 'aria-labelledby': titleId, 'data-page': 'privacy' },
      h('h2', { id: titleId }, t('privacy.title')),
      h('section', { class: 'subpanel', 'aria-labelledby': c.id }, c.el, this.problem, this.list),
      h('section', { class: 'subpanel', 'aria-labelledby': x.id }, x.el, h('p', { class: 'hint' }, t('privacy.export.hint')), exportButton, exportProblem),
      h('section', { class: 'subpanel', 'aria-labelledby': d.id }, d.el, erase));
  }

  async load(): Promise<void> {
    try {
      this.consents = await this.ctx.api.consents();
      showProblem(this.problem, null);
    } catch (err) {
      showProblem(this.problem, err);
    }
    this.render();
  }

  private render(): void {
    this.list.replaceChildren(...purposes.map((p) => {
      const c = this.consents.find((x) => x.purpose === p);
      const name = t(`privacy.purpose.${p}`);
      const state = !c ? t('privacy.never') : t(c.granted ? 'privacy.granted' : 'privacy.withdrawn', { version: c.version, at: localTime(c.at) });
      const grant = !c?.granted;
      return h('li', { class: 'consent', 'data-purpose': p, 'data-granted': String(Boolean(c?.granted)) },
        h('div', { class: 'consent-main' }, h('span', { class: 'consent-name' }, name), h('span', { class: 'consent-state' }, state)),
        h('button', {
          type: 'button', class: grant ? 'btn btn--primary btn--small' : 'btn btn--danger btn--small', 'data-focus-key': `consent-${p}`,
          'aria-label': t(grant ? 'privacy.grant.label' : 'privacy.withdraw.label', { purpose: name }),
          onclick: (e) => void this.decide(p, grant, e),
        }, t(grant ? 'privacy.grant' : 'privacy.withdraw')));
    }));
  }

  private async decide(purpose: string, granted: boolean, e: Event): Promise<void> {
    const name = t(`privacy.purpose.${purpose as typeof purposes[number]}`);
    if (!granted && !(await this.ctx.confirm(t('privacy.withdraw.ask', { purpose: name }), t('privacy.withdraw')))) return;
    try {
      await busy(e.currentTarget as HTMLElement, () => this.ctx.api.decideConsent(purpose, granted, consentVersion));
      this.ctx.toast('success', t('privacy.saved', { purpose: name }));
      await this.load();
      this.list.querySelector<HTMLElement>(`[data-focus-key="consent-${purpose}"]`)?.focus();
    } catch (err) {
      showProblem(this.problem, err);
    }
  }
}
