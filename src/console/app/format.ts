import { lang, t } from './i18n/index.ts';
// Short relative times for lists ("12 s ago", "3 h ago"); the full ISO time goes in a title.
export const timeAgo = (iso: string | undefined, now: number = Date.now()): string => {
  if (!iso) return '';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return t('time.s', { n: s });
  if (s < 3600) return t('time.min', { n: Math.floor(s / 60) });
  if (s < 86_400) return t('time.h', { n: Math.floor(s / 3600) });
  return t('time.d', { n: Math.floor(s / 86_400) });
};

export const localTime = (iso: string | undefined): string => {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString(lang());
};

// crypto.randomUUID needs a secure context; getRandomValues works on plain http too (a console
// reached over a LAN address), and an idempotency key only needs to be unique.
export const randomKey = (): string => {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

// A relative time that stays true: a <time data-ago> element whose text the app's 1 s ticker
// (refreshTimes) rewrites, so "12 s ago" never sits still for the 30 s between list refreshes.
export const agoElement = (iso: string | undefined, prefix = ''): HTMLTimeElement => {
  const el = document.createElement('time');
  if (iso) {
    el.dateTime = iso;
    el.dataset.ago = iso;
    el.dataset.prefix = prefix;
    el.title = localTime(iso);
  }
  el.textContent = iso ? `${prefix}${timeAgo(iso)}` : '';
  return el;
};

export const refreshTimes = (root: ParentNode, now: number = Date.now()): void => {
  for (const el of root.querySelectorAll<HTMLTimeElement>('time[data-ago]')) {
    const text = `${el.dataset.prefix ?? ''}${timeAgo(el.dataset.ago, now)}`;
    if (el.textContent !== text) el.textContent = text;
  }
};
