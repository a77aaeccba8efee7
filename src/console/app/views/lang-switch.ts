import { h, uid } from '../dom.ts';
import { catalogues, lang, langs, setLang, t } from '../i18n/index.ts';

// English / Русский: the choice is remembered, and the page is read again in the new language (the
// token stays in this tab's sessionStorage, so the user stays signed in).
export const langSwitch = (): HTMLElement => {
  const id = uid('lang');
  const select = h('select', { id, class: 'lang-select', name: 'lang', 'data-lang-switch': '' },
    langs.map((l) => h('option', { value: l, lang: l, selected: l === lang() }, catalogues[l]['lang.name'])));
  select.value = lang();
  select.addEventListener('change', () => {
    setLang(select.value as typeof langs[number]);
    location.reload();
  });
  return h('span', { class: 'lang' }, h('label', { for: id, class: 'lang-label' }, t('lang.label')), select);
};
