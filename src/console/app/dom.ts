// The only way views make DOM: elements and text nodes, never HTML strings, so a chat title such as
// `<img src=x onerror=…>` can only ever become text. Inline `on…` attributes and `style` are refused
// here too: the CSP blocks them anyway (script-src/style-src 'self'), this makes the mistake loud.

export type Child = Node | string | number | false | null | undefined;
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K, props?: Props | null, ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') {
      if (!key.startsWith('on')) throw new Error(`h(): function for non-event prop ${key}`);
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key.startsWith('on') || key === 'style' || key === 'innerHTML' || key === 'outerHTML') {
      throw new Error(`h(): refusing prop ${key}`);
    } else if (key === 'class') {
      el.className = String(value);
    } else if (key === 'value' || key === 'checked') {
      (el as unknown as Record<string, unknown>)[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, ...children);
  return el;
}

export const append = (parent: Node, ...children: (Child | Child[])[]): void => {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
};

export const replaceChildren = (parent: Element, ...children: (Child | Child[])[]): void => {
  parent.replaceChildren();
  append(parent, ...children);
};

let idCounter = 0;
export const uid = (prefix: string): string => `${prefix}-${++idCounter}`;

// A labelled input with an inline error line wired through aria-describedby/aria-invalid.
export interface Field<E extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement> {
  wrap: HTMLDivElement;
  input: E;
  setError(message: string | null): void;
}

export function field<E extends HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>(
  label: string, input: E, hint?: string,
): Field<E> {
  const id = input.id || uid('f');
  input.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  input.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : '', `${id}-error`].filter(Boolean).join(' '));
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl, errorEl);
  return {
    wrap,
    input,
    setError(message) {
      errorEl.textContent = message ?? '';
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
}

// Disables a form's controls while a request runs, so a double click cannot send twice.
export const busy = async <T>(form: HTMLFormElement | HTMLElement, work: () => Promise<T>): Promise<T> => {
  const selector = 'button, input, select, textarea';
  const controls = [
    ...(form.matches(selector) ? [form as HTMLButtonElement] : []),
    ...Array.from(form.querySelectorAll<HTMLButtonElement | HTMLInputElement>(selector)),
  ];
  const before = controls.map((c) => c.disabled);
  controls.forEach((c) => (c.disabled = true));
  form.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    controls.forEach((c, i) => (c.disabled = before[i]!));
    form.removeAttribute('aria-busy');
  }
};

// Rebuilds a container's content while keeping keyboard focus on the "same" control (matched by
// data-focus-key), so a live status update does not throw a keyboard user back to the page start.
export const rebuild = (container: Element, ...children: (Child | Child[])[]): void => {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.dataset.focusKey : undefined;
  replaceChildren(container, ...children);
  if (key) container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
};
