import { ApiError } from '../api-client.ts';
import { busy, field, h } from '../dom.ts';
import { localTime } from '../format.ts';
import type { Connection } from '../types.ts';
import { checkCode, checkPassword } from '../validate.ts';
import { type Ctx, errorLine, platformName } from './context.ts';
import { goAuthorize } from './platform-forms.view.ts';
import { t } from '../i18n/index.ts';

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
    case 'awaiting-authorization': return authorizeStep(ctx, conn);
    default: return null;
  }
};

const still = (root: HTMLElement): LoginStep => ({ root, update: () => {}, dispose: () => {} });

// OAuth platforms: consent happens at the platform. The link works once for 10 minutes; "New link"
// asks the service for another (older ones stop working).
const authorizeStep = (ctx: Ctx, conn: Connection): LoginStep => {
  const platform = platformName(conn.platform);
  const problem = h('p', { class: 'form-error', role: 'alert' });
  const open = h('button', { type: 'button', class: 'btn btn--primary', 'data-authorize': '' }, t('login.authorize.open', { platform }));
  const again = h('button', { type: 'button', class: 'btn', 'data-reauthorize': '' }, t('login.authorize.newLink'));
  open.addEventListener('click', () => {
    if (!goAuthorize(conn)) again.click();
  });
  again.addEventListener('click', async () => {
    problem.textContent = '';
    try {
      const next = await busy(again, () => ctx.api.reauthorize(conn.id));
      ctx.upsert(next);
      goAuthorize(next);
    } catch (err) {
      problem.textContent = errorLine(err);
    }
  });
  return still(h('div', { class: 'login-step', 'data-step': 'authorize' },
    h('p', { class: 'hint' }, t('login.authorize.hint', { platform })), problem, h('div', { class: 'actions' }, open, again)));
};

const stepper = (conn: Connection, at: 'code' | 'password' | 'qr' | 'wait'): HTMLElement => {
  const steps = conn.login?.method === 'qr' || at === 'qr'
    ? [t('login.step.qr'), t('login.step.password')] : [t('login.step.phone'), t('login.step.code'), t('login.step.password')];
  const current = at === 'password' ? steps.length - 1 : at === 'code' ? 1 : 0;
  return h('ol', { class: 'stepper', 'aria-label': t('login.steps') },
    steps.map((s, i) => h('li', { class: i < current ? 'done' : i === current ? 'current' : '', 'aria-current': i === current ? 'step' : undefined }, s)));
};

const waiting = (conn: Connection): LoginStep =>
  still(h('div', { class: 'login-step', 'data-step': 'connecting' },
    stepper(conn, 'wait'),
    h('p', { class: 'pending' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), t('login.contacting'))));

type CodeType = NonNullable<NonNullable<Connection['login']>['codeType']>;
const codeTypes: readonly CodeType[] = ['app', 'sms', 'call', 'flash-call', 'missed-call', 'email', 'fragment'];
const knownType = (v: string | undefined): CodeType | undefined => codeTypes.find((c) => c === v);

// Where the code went, in words ("Telegram sent a code by SMS to +44…"); a type this console does
// not know yet reads as the app's.
const codeHint = (conn: Connection): string => {
  const to = conn.phone ? t('login.code.to', { phone: conn.phone }) : '';
  const type = knownType(conn.login?.codeType) ?? 'app';
  const len = conn.login?.codeLength ? ` ${t('login.code.length', { n: conn.login.codeLength })}` : '';
  return t(`login.code.${type}`, { to }) + len;
};

const secondsUntil = (iso: string | undefined, now: number): number => {
  const at = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(at) ? 0 : Math.max(0, Math.ceil((at - now) / 1000));
};

const codeStep = (ctx: Ctx, conn: Connection): LoginStep => {
  let current = conn;
  const code = field(t('login.code'), h('input', { type: 'text', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 }),
    codeHint(conn));
  const hint = code.wrap.querySelector<HTMLElement>('.hint')!;
  hint.dataset.codeType = conn.login?.codeType ?? '';
  // Resend: disabled with a countdown until login.resendAfter (or a 429's retryAfter), then names
  // the next way Telegram offers (login.nextCodeType).
  const resend = h('button', { type: 'button', class: 'btn', 'data-resend': '', 'data-focus-key': 'resend' });
  const resendNote = h('p', { class: 'hint', 'data-resend-note': '', 'aria-live': 'polite' });
  let waitUntil = current.login?.resendAfter;
  const paint = () => {
    const s = secondsUntil(waitUntil, Date.now());
    const next = knownType(current.login?.nextCodeType);
    resend.disabled = s > 0;
    resend.textContent = s > 0 ? t('login.resend.wait', { s })
      : next ? t('login.resend.by', { type: t(`login.type.${next}`) }) : t('login.resend');
    resendNote.textContent = next ? t('login.code.next', { type: t(`login.type.${next}`) }) : '';
  };
  paint();
  const ticker = window.setInterval(paint, 1000);
  const form = h('form', { class: 'login-step', novalidate: true, 'data-step': 'code' },
    stepper(conn, 'code'), code.wrap, resendNote,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('login.code.submit')), resend));
  code.input.addEventListener('input', () => code.setError(null));
  resend.addEventListener('click', async () => {
    code.setError(null);
    try {
      ctx.upsert(await busy(resend, () => ctx.api.resendCode(current.id)));
    } catch (err) {
      if (err instanceof ApiError && err.retryAfter) waitUntil = new Date(Date.now() + err.retryAfter * 1000).toISOString();
      code.setError(errorLine(err));
    }
    paint();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const check = checkCode(code.input.value);
    if (!check.ok) return fail(code, check.message);
    try {
      ctx.upsert(await busy(form, () => ctx.api.submitCode(conn.id, check.value)));
    } catch (err) {
      fail(code, errorLine(err) + (err instanceof ApiError && err.code === 'TG_CODE_EXPIRED' ? t('login.code.expired') : ''));
    }
  });
  queueMicrotask(() => code.input.focus());
  return {
    root: form,
    update(next) {
      // Still awaiting-code: a resend brings a new code type, next type and resend time.
      const changed = next.login?.codeType !== current.login?.codeType || next.login?.resendAfter !== current.login?.resendAfter
        || next.login?.nextCodeType !== current.login?.nextCodeType;
      current = next;
      if (!changed) return;
      waitUntil = next.login?.resendAfter;
      hint.textContent = codeHint(next);
      hint.dataset.codeType = next.login?.codeType ?? '';
      paint();
    },
    dispose: () => clearInterval(ticker),
  };
};

const passwordStep = (ctx: Ctx, conn: Connection): LoginStep => {
  const root = h('div', { class: 'login-area-step' });
  const hint = conn.login?.passwordHint;
  const password = field(t('login.password'),
    h('input', { type: 'password', name: 'password', autocomplete: 'current-password' }),
    hint ? t('login.password.hint', { hint }) : t('login.password.nohint'));
  const forgot = h('button', { type: 'button', class: 'btn', 'data-recovery': '' }, t('login.recovery.forgot'));
  const form = h('form', { class: 'login-step', novalidate: true, 'data-step': 'password' },
    stepper(conn, 'password'), password.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('login.password.submit')), forgot));
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
  // Forgotten password: Telegram e-mails a recovery code (auth.requestPasswordRecovery); the code
  // and an optional new password sign in (auth.recoverPassword). Neither is kept by the page.
  forgot.addEventListener('click', async () => {
    password.setError(null);
    try {
      const { emailPattern } = await busy(form, () => ctx.api.requestRecovery(conn.id));
      root.replaceChildren(recoveryForm(ctx, conn, emailPattern, () => {
        root.replaceChildren(form);
        password.input.focus();
      }));
    } catch (err) {
      fail(password, errorLine(err));
    }
  });
  root.append(form);
  queueMicrotask(() => password.input.focus());
  return still(root);
};

const recoveryForm = (ctx: Ctx, conn: Connection, emailPattern: string, back: () => void): HTMLFormElement => {
  const code = field(t('login.recovery.code'),
    h('input', { type: 'text', name: 'recovery-code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8 }),
    t('login.recovery.sent', { email: emailPattern }));
  const newPassword = field(t('login.recovery.newPassword'),
    h('input', { type: 'password', name: 'new-password', autocomplete: 'new-password' }), t('login.recovery.newPassword.hint'));
  const form = h('form', { class: 'login-step', novalidate: true, 'data-step': 'recovery' },
    stepper(conn, 'password'), code.wrap, newPassword.wrap,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'btn btn--primary' }, t('login.recovery.submit')),
      h('button', { type: 'button', class: 'btn', onclick: back }, t('login.recovery.back'))));
  code.input.addEventListener('input', () => code.setError(null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const check = checkCode(code.input.value);
    if (!check.ok) return fail(code, check.message);
    try {
      ctx.upsert(await busy(form, () => ctx.api.recoverPassword(conn.id, check.value, newPassword.input.value || undefined)));
    } catch (err) {
      fail(code, errorLine(err));
    }
  });
  queueMicrotask(() => code.input.focus());
  return form;
};

// QR tokens live ~30 s at Telegram. The image is fetched a few seconds before `expiresAt` (or as
// soon as an event brings a new token); the step is replaced when the status turns active.
const refreshLeadMs = 3_000;
const retryMs = 2_000;

const qrStep = (ctx: Ctx, conn: Connection): LoginStep => {
  const img = h('img', { class: 'qr', alt: t('login.qr.alt'), width: 240, height: 240 });
  const expires = h('p', { class: 'hint', 'aria-live': 'off' });
  const problem = h('p', { class: 'form-error', role: 'alert' });
  const root = h('div', { class: 'login-step', 'data-step': 'qr' },
    stepper(conn, 'qr'),
    h('p', null, t('login.qr.how')),
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
      expires.textContent = t('login.qr.expires', { time: localTime(qr.expiresAt) });
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
