import { h, uid } from '../dom.ts';
import { localTime } from '../format.ts';
import { t } from '../i18n/index.ts';
import type { Webhook, WebhookDelivery } from '../types.ts';
import { confirmDialog } from './confirm-dialog.ts';
import { type Ctx, showProblem } from './context.ts';

// Webhooks: the caller's endpoints (GET /v1/webhooks), a form to add one (its secret shown once, in
// the answer that creates it, and never again), per endpoint a test event, its delivery log with a
// retry button for failed deliveries, secret rotation (the new secret shown once; the old one keeps
// signing for 24 h), enable/disable (a disabled endpoint comes back here) and delete (asked first).
export class WebhooksView {
  readonly root: HTMLElement;
  private readonly body = h('tbody');
  private readonly problem = h('p', { class: 'form-error', role: 'alert' });
  private readonly notice = h('p', { class: 'notice', role: 'status' });
  private readonly secretBox = h('div', { class: 'webhook-secret', hidden: true });
  private readonly deliveries = h('section', { class: 'webhook-deliveries', hidden: true });
  private readonly url: HTMLInputElement;
  private readonly events: HTMLInputElement;

  constructor(private readonly ctx: Ctx) {
    const titleId = uid('webhooks');
    this.url = h('input', { type: 'url', id: uid('wh-url'), name: 'url', required: true });
    this.events = h('input', { type: 'text', id: uid('wh-events'), name: 'events', value: '*' });
    const form = h('form', { class: 'form webhook-form', onsubmit: (e: Event) => { e.preventDefault(); void this.create(); } },
      h('label', { for: this.url.id }, t('webhooks.url')), this.url,
      h('label', { for: this.events.id }, t('webhooks.events')), this.events,
      h('button', { type: 'submit', class: 'btn' }, t('webhooks.add')));
    this.root = h('section', { class: 'panel page', 'aria-labelledby': titleId, 'data-page': 'webhooks' },
      h('div', { class: 'panel-head' }, h('h2', { id: titleId }, t('webhooks.title')),
        h('button', { type: 'button', class: 'btn btn--small', onclick: () => void this.load() }, t('common.refresh'))),
      form, this.secretBox, this.problem, this.notice,
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': titleId },
        h('table', { class: 'table' },
          h('thead', null, h('tr', null, ...(['webhooks.url', 'webhooks.events', 'webhooks.state', 'webhooks.actions'] as const).map((k) => h('th', { scope: 'col' }, t(k))))),
          this.body)),
      this.deliveries);
  }

  async load(): Promise<void> {
    try {
      const list = await this.ctx.api.listWebhooks();
      showProblem(this.problem, null);
      this.body.replaceChildren(...(list.length ? list.map((w) => this.row(w)) : [h('tr', null, h('td', { colspan: 4, class: 'empty' }, t('webhooks.empty')))]));
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  private async create(): Promise<void> {
    try {
      const events = this.events.value.split(',').map((s) => s.trim()).filter(Boolean);
      const w = await this.ctx.api.createWebhook({ url: this.url.value.trim(), events: events.length ? events : ['*'] });
      showProblem(this.problem, null);
      this.url.value = '';
      this.showSecret(t('webhooks.secretOnce'), w.secret);
      await this.load();
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  /** Shown once: the service never answers a secret again (rotation gives a new one). */
  private showSecret(intro: string, secret: string | undefined): void {
    this.secretBox.replaceChildren(h('p', null, intro), h('code', { class: 'mono', 'data-secret': '' }, secret ?? ''));
    this.secretBox.hidden = false;
  }

  private async rotate(w: Webhook): Promise<void> {
    if (!(await confirmDialog(t('webhooks.rotateAsk', { url: w.url }), t('webhooks.rotate')))) return;
    try {
      const r = await this.ctx.api.rotateWebhookSecret(w.id);
      showProblem(this.problem, null);
      this.showSecret(t('webhooks.rotatedOnce'), r.secret);
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  private async setEnabled(w: Webhook, enabled: boolean): Promise<void> {
    try {
      await this.ctx.api.setWebhookEnabled(w.id, enabled);
      showProblem(this.problem, null);
      await this.load();
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  private async remove(w: Webhook): Promise<void> {
    if (!(await confirmDialog(t('webhooks.deleteAsk', { url: w.url }), t('common.delete')))) return;
    try {
      await this.ctx.api.deleteWebhook(w.id);
      showProblem(this.problem, null);
      this.deliveries.hidden = true;
      this.notice.textContent = t('webhooks.deleted', { url: w.url });
      await this.load();
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  private row(w: Webhook): HTMLTableRowElement {
    return h('tr', { 'data-webhook-id': w.id },
      h('td', { class: 'mono' }, w.url),
      h('td', null, w.events.join(', ')),
      h('td', null, w.enabled ? t('webhooks.enabled') : `${t('webhooks.disabled')}${w.disabledReason ? `: ${w.disabledReason}` : ''}`),
      h('td', null,
        h('button', { type: 'button', class: 'btn btn--small', 'data-action': 'test', onclick: () => void this.test(w) }, t('webhooks.test')),
        ' ',
        h('button', { type: 'button', class: 'btn btn--small', 'data-action': 'deliveries', onclick: () => void this.showDeliveries(w) }, t('webhooks.deliveries')),
        ' ',
        h('button', { type: 'button', class: 'btn btn--small', 'data-action': 'rotate', onclick: () => void this.rotate(w) }, t('webhooks.rotate')),
        ' ',
        w.enabled
          ? h('button', { type: 'button', class: 'btn btn--small', 'data-action': 'disable', onclick: () => void this.setEnabled(w, false) }, t('webhooks.disable'))
          : h('button', { type: 'button', class: 'btn btn--small', 'data-action': 'enable', onclick: () => void this.setEnabled(w, true) }, t('webhooks.enable')),
        ' ',
        h('button', { type: 'button', class: 'btn btn--small btn--danger', 'data-action': 'delete', onclick: () => void this.remove(w) }, t('common.delete'))));
  }

  private async test(w: Webhook): Promise<void> {
    try {
      await this.ctx.api.testWebhook(w.id);
      this.notice.textContent = t('webhooks.testSent', { url: w.url });
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  private async showDeliveries(w: Webhook): Promise<void> {
    try {
      const page = await this.ctx.api.webhookDeliveries(w.id);
      const titleId = uid('wh-deliveries');
      const rows = page.items.map((d) => this.deliveryRow(w, d));
      this.deliveries.replaceChildren(
        h('h3', { id: titleId }, t('webhooks.deliveriesOf', { url: w.url })),
        h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': titleId },
          h('table', { class: 'table' },
            h('thead', null, h('tr', null, ...(['webhooks.d.event', 'webhooks.d.status', 'webhooks.d.attempts', 'webhooks.d.last', 'webhooks.actions'] as const).map((k) => h('th', { scope: 'col' }, t(k))))),
            h('tbody', null, ...(rows.length ? rows : [h('tr', null, h('td', { colspan: 5, class: 'empty' }, t('webhooks.d.empty')))])))));
      this.deliveries.hidden = false;
    } catch (err) {
      showProblem(this.problem, err);
    }
  }

  private deliveryRow(w: Webhook, d: WebhookDelivery): HTMLTableRowElement {
    const last = d.attempts.at(-1);
    return h('tr', { 'data-delivery-id': d.id, 'data-status': d.status },
      h('td', null, d.eventType),
      h('td', null, d.status),
      h('td', null, String(d.attempts.length)),
      h('td', null, last ? h('time', { datetime: last.at }, `${localTime(last.at)} ${last.httpStatus ?? last.error ?? ''}`) : ''),
      h('td', null, d.status === 'pending' ? '' : h('button', {
        type: 'button', class: 'btn btn--small', 'data-action': 'retry',
        onclick: () => void this.ctx.api.retryWebhookDelivery(w.id, d.id).then(() => this.showDeliveries(w), (err) => showProblem(this.problem, err)),
      }, t('webhooks.retry'))));
  }
}
