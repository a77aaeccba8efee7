import { type Catalogue, en, type MessageKey } from './en.ts';
import { ru } from './ru.ts';

// The console's language: the one picked with the switch (kept in localStorage, a preference and no
// secret), else the browser's first language we have, else English. One catalogue per language.
export type Lang = 'en' | 'ru';
export const catalogues: Record<Lang, Catalogue> = { en, ru };
export const langs = Object.keys(catalogues) as Lang[];
const storageKey = 'integration-console.lang';

const isLang = (x: unknown): x is Lang => typeof x === 'string' && x in catalogues;

// Reached through globalThis: Node tests import this module too, type-checked without the DOM library.
const web = globalThis as unknown as {
  localStorage?: { getItem(k: string): string | null; setItem(k: string, v: string): void };
  navigator?: { languages?: readonly string[]; language?: string };
  document?: { documentElement: { lang: string } };
};

export const detectLang = (): Lang => {
  try {
    const saved = web.localStorage?.getItem(storageKey);
    if (isLang(saved)) return saved;
  } catch {
    // storage disabled: go by the browser
  }
  for (const tag of web.navigator?.languages ?? [web.navigator?.language ?? 'en']) {
    const base = tag.toLowerCase().split('-')[0];
    if (isLang(base)) return base;
  }
  return 'en';
};

let current: Lang = web.navigator ? detectLang() : 'en';

export const lang = (): Lang => current;

export const setLang = (next: Lang, remember = true): void => {
  current = next;
  if (web.document) web.document.documentElement.lang = next;
  if (!remember) return;
  try {
    web.localStorage?.setItem(storageKey, next);
  } catch {
    // not kept across reloads then
  }
};

export type Params = Record<string, string | number>;

/** The sentence for `key` in the current language, `{name}` filled from params. */
export const t = (key: MessageKey, params: Params = {}, language: Lang = current): string =>
  fill(catalogues[language][key] ?? en[key], params);

/** Like t() for keys built at run time (error codes): undefined when the catalogue has no such key. */
export const tMaybe = (key: string, params: Params = {}, language: Lang = current): string | undefined => {
  const s = (catalogues[language] as Record<string, string>)[key];
  return s === undefined ? undefined : fill(s, params);
};

const fill = (s: string, params: Params): string => s.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));

/** `.one` / `.other` by the language's plural rules. */
export const tPlural = (key: 'msgs.attempts', n: number): string =>
  t(`${key}.${new Intl.PluralRules(current).select(n) === 'one' ? 'one' : 'other'}` as MessageKey, { n });
