import { busy, field, h, rebuild } from '../dom.ts';
import { agoElement } from '../format.ts';
import type { Chat } from '../types.ts';
import { checkChatRef } from '../validate.ts';
import { type Ctx, errorLine } from './context.ts';
import { t } from '../i18n/index.ts';

// Chats of one connection: add by @username / id / t.me link, re-check rights, remove. Titles and
// usernames come from Telegram and are shown as text only.
export class ChatsView {
  readonly root: HTMLElement;
  private readonly list: HTMLElement;
  private readonly problem: HTMLElement;
  private chats: Chat[] = [];

  constructor(private readonly ctx: Ctx, private readonly connectionId: string, private readonly onChange: (chats: Chat[]) => void) {
    const ref = field(t('chats.chat'), h('input', { type: 'text', name: 'chat', autocomplete: 'off', spellcheck: 'false', placeholder: t('chats.placeholder') }));
    const requireAdmin = h('input', { type: 'checkbox', name: 'requireAdmin', id: `req-admin-${connectionId}` });
    const form = h('form', { class: 'inline-form', novalidate: true, 'data-form': 'add-chat' },
      ref.wrap,
      h('label', { class: 'check', for: requireAdmin.id }, requireAdmin, t('chats.requireAdmin')),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('chats.add'))));
    ref.input.addEventListener('input', () => ref.setError(null));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const check = checkChatRef(ref.input.value);
      if (!check.ok) {
        ref.setError(check.message);
        ref.input.focus();
        return;
      }
      try {
        const chat = await busy(form, () => ctx.api.addChat(connectionId, check.value, requireAdmin.checked));
        this.put(chat);
        form.reset();
        ctx.toast('success', t('chats.added', { title: chat.title }));
      } catch (err) {
        ref.setError(errorLine(err, ctx.actorOf(connectionId)));
        ref.input.focus();
      }
    });
    this.list = h('ul', { class: 'chat-list', 'aria-label': t('chats.list') });
    this.problem = h('p', { class: 'form-error', role: 'alert' });
    this.root = h('section', { class: 'subpanel', 'aria-labelledby': `chats-${connectionId}` },
      h('h3', { id: `chats-${connectionId}` }, t('chats.title')), form, this.problem, this.list);
  }

  async load(): Promise<void> {
    try {
      this.chats = await this.ctx.api.listChats(this.connectionId);
      this.problem.textContent = '';
    } catch (err) {
      this.problem.textContent = errorLine(err, this.ctx.actorOf(this.connectionId));
    }
    this.render();
  }

  private put(chat: Chat): void {
    const i = this.chats.findIndex((c) => c.id === chat.id);
    if (i >= 0) this.chats[i] = chat;
    else this.chats.push(chat);
    this.render();
  }

  private render(): void {
    this.ctx.rememberChats(this.chats);
    this.onChange(this.chats);
    if (this.chats.length === 0) {
      rebuild(this.list, h('li', { class: 'empty' }, t('chats.empty')));
      return;
    }
    rebuild(this.list, this.chats.map((c) => this.row(c)));
  }

  private row(c: Chat): HTMLLIElement {
    const rights = Object.entries(c.rights ?? {}).filter(([, v]) => v === true).map(([k]) => k);
    return h('li', { class: 'chat', 'data-chat-id': c.id },
      h('div', { class: 'chat-main' },
        h('span', { class: 'chat-title' }, c.title),
        h('span', { class: 'chat-meta' }, [c.type, c.username ? `@${c.username}` : '', c.platformChatId].filter(Boolean).join(' · '))),
      h('div', { class: 'chat-flags' },
        flag(t('chats.admin'), c.isAdmin), flag(t('chats.canSend'), c.canSend),
        h('span', { class: 'chat-rights' }, rights.length ? t('chats.rights', { rights: rights.join(', ') }) : t('chats.noRights')),
        h('span', { class: 'chat-checked' }, agoElement(c.checkedAt, t('chats.checked')))),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn--small', 'data-focus-key': `refresh-${c.id}`, 'aria-label': t('chats.recheck.label', { title: c.title }), onclick: (e) => this.refresh(c, e) }, t('chats.recheck')),
        h('button', { type: 'button', class: 'btn btn--small btn--danger', 'aria-label': t('chats.remove.label', { title: c.title }), onclick: () => this.removeChat(c) }, t('chats.remove'))));
  }

  private async refresh(c: Chat, e: Event): Promise<void> {
    const button = e.currentTarget as HTMLButtonElement;
    try {
      this.put(await busy(button.parentElement!, () => this.ctx.api.refreshChat(this.connectionId, c.id)));
      this.ctx.toast('info', t('chats.rechecked', { title: c.title }));
    } catch (err) {
      this.ctx.toast('error', `${c.title}: ${errorLine(err, this.ctx.actorOf(this.connectionId))}`);
    }
  }

  private async removeChat(c: Chat): Promise<void> {
    if (!(await this.ctx.confirm(t('chats.remove.ask', { title: c.title }), t('chats.remove.confirm')))) return;
    try {
      await this.ctx.api.removeChat(this.connectionId, c.id);
      this.chats = this.chats.filter((x) => x.id !== c.id);
      this.render();
    } catch (err) {
      this.ctx.toast('error', `${c.title}: ${errorLine(err, this.ctx.actorOf(this.connectionId))}`);
    }
  }
}

const flag = (label: string, on: boolean): HTMLElement =>
  h('span', { class: `flag ${on ? 'flag--on' : 'flag--off'}` }, `${on ? '✓' : '✗'} ${label}`);
