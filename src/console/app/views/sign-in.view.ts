import { field, h } from '../dom.ts';

// Paste a JWT (or open the console with #token=…). Nothing is checked here but shape: the server
// answers 401 on the first call if the token is wrong, and the app comes back here with that error.
export const signInView = (onToken: (token: string) => void, problem?: string): HTMLElement => {
  const token = field('Access token (JWT)', h('input', {
    type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true,
  }), 'Issued by your product for your user id (a link ending in #token=… works too). It stays in this tab only.');
  if (problem) token.setError(problem);
  const form = h('form', { class: 'panel signin', novalidate: true, 'aria-labelledby': 'signin-title' },
    h('h2', { id: 'signin-title' }, 'Sign in'),
    token.wrap,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Sign in')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = token.input.value.trim();
    // Three base64url parts separated by dots: a JWS compact serialisation.
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(value)) {
      token.setError('That is not a JWT (three dot-separated parts)');
      token.input.focus();
      return;
    }
    onToken(value);
  });
  queueMicrotask(() => token.input.focus());
  return h('div', { class: 'app' },
    h('header', { class: 'topbar' }, h('h1', null, 'Integration console')),
    h('main', { class: 'layout layout--narrow' }, form));
};
