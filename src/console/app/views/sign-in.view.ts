import { field, h } from '../dom.ts';
import { t } from '../i18n/index.ts';
import { langSwitch } from './lang-switch.ts';

// Paste a JWT (or open the console with #token=…). Nothing is checked here but shape: the server
// answers 401 on the first call if the token is wrong, and the app comes back here with that error.
export const signInView = (onToken: (token: string) => void, problem?: string): HTMLElement => {
  const token = field(t('signin.token'), h('input', {
    type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true,
  }), t('signin.hint'));
  if (problem) token.setError(problem);
  const form = h('form', { class: 'panel signin', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title' }, t('signin.title')),
    token.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('signin.title'))),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = token.input.value.trim();
    // Three base64url parts separated by dots: a JWS compact serialisation.
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(value)) {
      token.setError(t('signin.notJwt'));
      token.input.focus();
      return;
    }
    onToken(value);
  });
  queueMicrotask(() => token.input.focus());
  return h('div', { class: 'app' },
    h('header', { class: 'topbar' }, h('h1', null, t('app.title')), langSwitch()),
    h('main', { class: 'layout layout--narrow' }, form));
};
