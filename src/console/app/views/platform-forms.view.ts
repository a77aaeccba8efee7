import { ApiError, type OAuthPlatform, oauthPlatforms } from '../api-client.ts';
import { busy, field, h } from '../dom.ts';
import { t } from '../i18n/index.ts';
import type { Connection } from '../types.ts';
import { checkDigitsId, checkAccessToken } from '../validate.ts';
import { type Ctx, connectionName, errorLine, platformName } from './context.ts';

// Connections made outside Telegram: the OAuth platforms (a button per platform that creates the
// connection and sends the browser to the platform's consent page; the platform redirects to the
// service's callback, which redirects back here with ?connection=…, see console.view.ts) and a
// WhatsApp business number (ids and a system-user token, checked by the service against the number).

/** Sends this tab to the platform's consent page; the answer comes back through the callback. */
export const goAuthorize = (conn: Connection): boolean => {
  const url = conn.login?.authorizeUrl;
  if (!url || !/^https?:\/\//i.test(url)) return false;
  window.location.assign(url);
  return true;
};

// A platform the service was started without (no app credentials) is not in the create schema: the
// service answers VALIDATION_ERROR on `platform`.
const notConfigured = (err: unknown): boolean =>
  err instanceof ApiError && err.code === 'VALIDATION_ERROR' && err.details.some((d) => d.path === 'platform');

export const oauthForm = (ctx: Ctx): HTMLFormElement => {
  const problem = h('p', { class: 'form-error', role: 'alert' });
  const connect = async (platform: OAuthPlatform, button: HTMLButtonElement): Promise<void> => {
    problem.textContent = '';
    try {
      // No redirectUri: the service sends the browser back to its own console (PUBLIC_URL/).
      const conn = await busy(button, () => ctx.api.createConnection({ platform, kind: 'account' }));
      ctx.upsert(conn);
      ctx.select(conn.id);
      if (!goAuthorize(conn)) ctx.toast('info', t('conn.created.toast', { name: connectionName(conn), status: conn.status }));
    } catch (err) {
      problem.textContent = notConfigured(err) ? t('add.oauth.notConfigured', { platform: platformName(platform) }) : errorLine(err);
    }
  };
  const buttons = oauthPlatforms.map((p) => {
    const b = h('button', { type: 'button', class: 'btn btn--primary', 'data-connect': p }, t('add.oauth.connect', { platform: platformName(p) }));
    b.addEventListener('click', () => void connect(p, b));
    return b;
  });
  return h('form', { class: 'connect-form', 'data-form': 'oauth', novalidate: true },
    h('p', { class: 'hint' }, t('add.oauth.hint')), problem, h('div', { class: 'actions' }, buttons));
};

export const whatsappForm = (ctx: Ctx): HTMLFormElement => {
  const numberId = field(t('add.wa.numberId'), h('input', { type: 'text', name: 'phone-number-id', inputmode: 'numeric', autocomplete: 'off', placeholder: '106540352242922' }),
    t('add.wa.numberId.hint'));
  const waba = field(t('add.wa.waba'), h('input', { type: 'text', name: 'waba-id', inputmode: 'numeric', autocomplete: 'off' }), t('add.wa.waba.hint'));
  // A system-user token is a password: masked, never autofilled, sent nowhere but the API.
  const token = field(t('add.wa.token'), h('input', { type: 'password', name: 'access-token', autocomplete: 'off', spellcheck: 'false' }), t('add.wa.token.hint'));
  const problem = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'connect-form', novalidate: true, 'data-form': 'whatsapp' },
    numberId.wrap, token.wrap, waba.wrap, problem,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('add.wa.submit'))));
  for (const f of [numberId, waba, token]) f.input.addEventListener('input', () => f.setError(null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.textContent = '';
    const id = checkDigitsId(numberId.input.value, true);
    const w = checkDigitsId(waba.input.value, false);
    const tok = checkAccessToken(token.input.value);
    numberId.setError(id.ok ? null : id.message);
    waba.setError(w.ok ? null : w.message);
    token.setError(tok.ok ? null : tok.message);
    const first = [[id, numberId], [tok, token], [w, waba]] as const;
    const bad = first.find(([c]) => !c.ok);
    if (bad || !id.ok || !tok.ok || !w.ok) {
      bad?.[1].input.focus();
      return;
    }
    try {
      const conn = await busy(form, () => ctx.api.createConnection({
        platform: 'whatsapp', kind: 'business-number', phoneNumberId: id.value, accessToken: tok.value, ...(w.value ? { wabaId: w.value } : {}),
      }));
      form.reset();
      ctx.upsert(conn);
      ctx.select(conn.id);
      ctx.toast('info', t('conn.created.toast', { name: connectionName(conn), status: conn.status }));
    } catch (err) {
      if (notConfigured(err)) problem.textContent = t('add.oauth.notConfigured', { platform: platformName('whatsapp') });
      else if (err instanceof ApiError && (err.code === 'PLATFORM_AUTH_INVALID' || err.code === 'VALIDATION_ERROR')) {
        const on = err.details.find((d) => d.path === 'wabaId') ? waba : err.details.find((d) => d.path === 'phoneNumberId') ? numberId : token;
        on.setError(errorLine(err));
        on.input.focus();
      } else problem.textContent = errorLine(err);
    }
  });
  return form;
};
