import { ApiError } from '../api-client.ts';
import { busy, field, h } from '../dom.ts';
import { localTime } from '../format.ts';
import type { Connection } from '../types.ts';
import { checkCode, checkPassword } from '../validate.ts';
import { type Ctx, errorLine } from './context.ts';

export interface LoginStep {
  root: HTMLElement;
  update(conn: Connection): void;
  dispose(): void;
}

// The step a connection is at while logging in, chosen by its status. The app creates a new step
// whenever the status changes; `update` only feeds it fresher data (e.g. a new QR token).
export const loginStep = (ctx: Ctx, conn: Connection): LoginStep | null => {
  switch (conn.status) {
    case 'connecting': return waiting(conn);
    case 'awaiting-code': return codeStep(ctx, conn);
    case 'awaiting-2fa': return passwordStep(ctx, conn);
    case 'awaiting-qr': return qrStep(ctx, conn);
    default: return null;
  }
};

const still = (root: HTMLElement): LoginStep => ({ root, update: () => {}, dispose: () => {} });

const stepper = (conn: Connection, at: 'code' | 'password' | 'qr' | 'wait'): HTMLElement => {
  const steps = conn.login?.method === 'qr' || at === 'qr' ? ['Scan QR', 'Password'] : ['Phone', 'Code', 'Password'];
  const current = at === 'password' ? steps.length - 1 : at === 'code' ? 1 : 0;
  return h('ol', { class: 'stepper', 'aria-label': 'Login steps' },
    steps.map((s, i) => h('li', { class: i < current ? 'done' : i === current ? 'current' : '', 'aria-current': i === current ? 'step' : undefined }, s)));
};

const waiting = (conn: Connection): LoginStep =>
  still(h('div', { class: 'login-step', 'data-step': 'connecting' },
    stepper(conn, 'wait'),
    h('p', { class: 'pending' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Contacting Telegram…')));

const codeStep = (ctx: Ctx, conn: Connection): LoginStep => {
  const via = conn.login?.codeType === 'sms' ? 'by SMS' : 'in the Telegram app';
  const code = field('Login code', h('input', { type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 }),
    `Telegram sent a code ${via}${conn.phone ? ` to ${conn.phone}` : ''}.`);
  const form = h('form', { class: 'login-step', novalidate: true, 'data-step': 'code' },
    stepper(conn, 'code'), code.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Verify code')));
  code.input.addEventListener('input', () => code.setError(null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const check = checkCode(code.input.value);
    if (!check.ok) return fail(code, check.message);
    try {
      ctx.upsert(await busy(form, () => ctx.api.submitCode(conn.id, check.value)));
    } catch (err) {
      fail(code, errorLine(err) + (err instanceof ApiError && err.code === 'TG_CODE_EXPIRED' ? '. Delete this connection and start again.' : ''));
    }
  });
  queueMicrotask(() => code.input.focus());
  return still(form);
};

const passwordStep = (ctx: Ctx, conn: Connection): LoginStep => {
  const hint = conn.login?.passwordHint;
  const password = field('Two-step verification password',
    h('input', { type: 'password', name: 'password', autocomplete: 'current-password' }),
    hint ? `Hint: ${hint}` : 'This account has a cloud password in Telegram.');
  const form = h('form', { class: 'login-step', novalidate: true, 'data-step': 'password' },
    stepper(conn, 'password'), password.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Unlock')));
  password.input.addEventListener('input', () => password.setError(null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const check = checkPassword(password.input.value);
    if (!check.ok) return fail(password, check.message);
    try {
      ctx.upsert(await busy(form, () => ctx.api.submitPassword(conn.id, check.value)));
    } catch (err) {
      password.input.value = '';
      fail(password, errorLine(err));
    }
  });
  queueMicrotask(() => password.input.focus());
  return still(form);
};

// QR tokens live ~30 s at Telegram. The image is fetched a few seconds before `expiresAt` (or as
// soon as an event brings a new token); the step is replaced when the status turns active.
const refreshLeadMs = 3_000;
const retryMs = 2_000;

const qrStep = (ctx: Ctx, conn: Connection): LoginStep => {
  const img = h('img', { class: 'qr', alt: 'QR code for the Telegram login', width: 240, height: 240 });
  const expires = h('p', { class: 'hint', 'aria-live': 'off' });
  const problem = h('p', { class: 'form-error', role: 'alert' });
  const root = h('div', { class: 'login-step', 'data-step': 'qr' },
    stepper(conn, 'qr'),
    h('p', null, 'Open Telegram on a phone that is logged in, go to Settings → Devices → Link Desktop Device, and scan this code.'),
    h('div', { class: 'qr-frame' }, img), expires, problem);
  let url = conn.login?.qr?.url;
  let objectUrl: string | null = null;
  let timer: number | undefined;
  let disposed = false;

  const schedule = (expiresAt: string | undefined) => {
    clearTimeout(timer);
    const at = expiresAt ? Date.parse(expiresAt) : NaN;
    const delay = Number.isNaN(at) ? retryMs : Math.max(retryMs, at - Date.now() - refreshLeadMs);
    timer = window.setTimeout(refresh, delay);
  };

  const refresh = async (): Promise<void> => {
    try {
      const qr = await ctx.api.getQr(conn.id);
      const blob = await ctx.api.getQrImage(conn.id);
      if (disposed) return;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      img.src = objectUrl;
      img.dataset.qrUrl = qr.url;
      url = qr.url;
      expires.textContent = `Refreshes by itself; this code expires at ${localTime(qr.expiresAt)}.`;
      problem.textContent = '';
      schedule(qr.expiresAt);
    } catch (err) {
      if (disposed) return;
      // INVALID_STATE: the login finished or moved on; the status event replaces this step.
      if (err instanceof ApiError && err.code === 'INVALID_STATE') return;
      problem.textContent = errorLine(err);
      schedule(undefined);
    }
  };
  void refresh();

  return {
    root,
    update(next) {
      if (next.login?.qr?.url && next.login.qr.url !== url) void refresh();
    },
    dispose() {
      disposed = true;
      clearTimeout(timer);
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    },
  };
};

const fail = (f: { input: HTMLInputElement; setError(m: string | null): void }, message: string): void => {
  f.setError(message);
  f.input.focus();
};
