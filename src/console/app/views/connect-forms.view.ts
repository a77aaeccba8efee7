import { ApiError, type NewConnection } from '../api-client.ts';
import { busy, field, h, uid } from '../dom.ts';
import { checkBotToken, checkPhone } from '../validate.ts';
import { type Ctx, connectionName, errorLine } from './context.ts';
import { t } from '../i18n/index.ts';
import { oauthForm, whatsappForm } from './platform-forms.view.ts';

type Method = 'phone' | 'qr' | 'bot' | 'oauth' | 'whatsapp';

// "Add a connection": a phone login, a QR login or a bot token (Telegram), a platform's consent page
// (Instagram, Threads, YouTube, TikTok) or a WhatsApp business number. Creating the connection is all
// this panel does; the next steps (code, password, QR image) live in the connection's own panel,
// driven by its status, so they survive a reload and follow live events.
export const connectForms = (ctx: Ctx): HTMLElement => {
  const group = uid('method');
  const forms = { phone: phoneForm(ctx), qr: qrForm(ctx), bot: botForm(ctx), oauth: oauthForm(ctx), whatsapp: whatsappForm(ctx) };
  const choose = (m: Method) => {
    for (const [k, f] of Object.entries(forms)) f.hidden = k !== m;
  };
  const radio = (m: Method, label: string) =>
    h('label', { class: 'choice' },
      h('input', { type: 'radio', name: group, value: m, checked: m === 'phone', onchange: () => choose(m) }), label);
  choose('phone');
  return h('section', { class: 'panel panel--add', 'aria-labelledby': 'add-title' },
    h('h2', { id: 'add-title' }, t('add.title')),
    h('fieldset', { class: 'choices' }, h('legend', null, t('add.how')),
      radio('phone', t('add.phone')), radio('qr', t('add.qr')), radio('bot', t('add.bot')),
      radio('oauth', t('add.oauth')), radio('whatsapp', t('add.wa'))),
    forms.phone, forms.qr, forms.bot, forms.oauth, forms.whatsapp);
};

const create = async (ctx: Ctx, body: NewConnection): Promise<void> => {
  const conn = await ctx.api.createConnection(body);
  ctx.upsert(conn);
  ctx.select(conn.id);
  ctx.toast('info', t('conn.created.toast', { name: connectionName(conn), status: conn.status }));
};

const formError = () => h('p', { class: 'form-error', role: 'alert' });

const phoneForm = (ctx: Ctx): HTMLFormElement => {
  const phone = field(t('add.phone.label'), h('input', { type: 'tel', name: 'phone', autocomplete: 'tel', inputmode: 'tel', placeholder: '+44 7700 900123' }),
    t('add.phone.hint'));
  const problem = formError();
  const form = h('form', { class: 'connect-form', novalidate: true, 'data-form': 'phone' },
    phone.wrap, problem, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('add.phone.submit'))));
  phone.input.addEventListener('input', () => phone.setError(null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.textContent = '';
    const check = checkPhone(phone.input.value);
    if (!check.ok) {
      phone.setError(check.message);
      phone.input.focus();
      return;
    }
    phone.setError(null);
    try {
      await busy(form, () => create(ctx, { platform: 'telegram', kind: 'user', phone: check.value }));
      form.reset();
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'TG_PHONE_INVALID' || err.code === 'TG_PHONE_BANNED' || err.code === 'VALIDATION_ERROR')) {
        phone.setError(errorLine(err));
        phone.input.focus();
      } else problem.textContent = errorLine(err);
    }
  });
  return form;
};

const qrForm = (ctx: Ctx): HTMLFormElement => {
  const problem = formError();
  const form = h('form', { class: 'connect-form', 'data-form': 'qr' },
    h('p', { class: 'hint' }, t('add.qr.hint')),
    problem, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('add.qr.submit'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.textContent = '';
    try {
      await busy(form, () => create(ctx, { platform: 'telegram', kind: 'user', method: 'qr' }));
    } catch (err) {
      problem.textContent = errorLine(err);
    }
  });
  return form;
};

const botForm = (ctx: Ctx): HTMLFormElement => {
  // A bot token is a password: masked on screen, never autofilled or spell-checked (sent nowhere else).
  const token = field(t('add.bot.label'), h('input', { type: 'password', name: 'bot-token', autocomplete: 'off', spellcheck: 'false', placeholder: '123456:ABC-def' }),
    t('add.bot.hint'));
  const problem = formError();
  const form = h('form', { class: 'connect-form', novalidate: true, 'data-form': 'bot' },
    token.wrap, problem, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('add.bot.submit'))));
  token.input.addEventListener('input', () => token.setError(null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.textContent = '';
    const check = checkBotToken(token.input.value);
    if (!check.ok) {
      token.setError(check.message);
      token.input.focus();
      return;
    }
    try {
      await busy(form, () => create(ctx, { platform: 'telegram', kind: 'bot', token: check.value }));
      form.reset();
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'TG_BOT_TOKEN_INVALID' || err.code === 'VALIDATION_ERROR')) {
        token.setError(errorLine(err));
        token.input.focus();
      } else problem.textContent = errorLine(err);
    }
  });
  return form;
};
