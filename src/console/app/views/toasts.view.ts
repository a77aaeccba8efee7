import { h } from '../dom.ts';
import type { ToastKind } from './context.ts';
import { t } from '../i18n/index.ts';

// Toasts stay 6 s (errors 12 s: they carry a code someone may want to copy); at most 4 at once so a
// burst of status events cannot bury the page. The region is aria-live so screen readers hear them.
const lifetimeMs: Record<ToastKind, number> = { info: 6_000, success: 6_000, error: 12_000 };
const maxToasts = 4;

export const createToasts = () => {
  const root = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite', 'aria-relevant': 'additions' });
  const show = (kind: ToastKind, text: string): void => {
    const item = h('div', { class: `toast toast--${kind}` });
    const close = () => item.remove();
    item.append(h('p', null, text), h('button', { type: 'button', class: 'toast-close', 'aria-label': t('common.dismiss'), onclick: close }, '×'));
    root.append(item);
    while (root.childElementCount > maxToasts) root.firstElementChild?.remove();
    window.setTimeout(close, lifetimeMs[kind]);
  };
  return { root, show };
};
