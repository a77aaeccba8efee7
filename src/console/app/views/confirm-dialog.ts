import { h } from '../dom.ts';
import { t } from '../i18n/index.ts';

// A native <dialog>: modal, traps focus, Escape cancels, focus returns to the opener afterwards.
export const confirmDialog = (question: string, confirmLabel: string): Promise<boolean> =>
  new Promise((resolve) => {
    const opener = document.activeElement as HTMLElement | null;
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-q' });
    const finish = (ok: boolean) => {
      dialog.close();
      dialog.remove();
      opener?.focus();
      resolve(ok);
    };
    const cancel = h('button', { type: 'button', class: 'btn', onclick: () => finish(false) }, t('common.cancel'));
    dialog.append(
      h('p', { id: 'confirm-q' }, question),
      h('div', { class: 'actions' },
        cancel,
        h('button', { type: 'button', class: 'btn btn--danger', onclick: () => finish(true) }, confirmLabel)),
    );
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
