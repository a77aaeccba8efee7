import { busy, field, h, rebuild } from '../dom.ts';
import { timeAgo } from '../format.ts';
import type { Chat } from '../types.ts';
import { checkChatRef } from '../validate.ts';
import { type Ctx, errorLine } from './context.ts';

// Chats of one connection: add by @username / id / t.me link, re-check rights, remove. Titles and
// usernames come from Telegram and are shown as text only.
export class ChatsView {
  readonly root: HTMLElement;
  private readonly list: HTMLElement;
  private readonly problem: HTMLElement;
  private chats: Chat[] = [];

  constructor(private readonly ctx: Ctx, private readonly connectionId: string, private readonly onChange: (chats: Chat[]) => void) {
    const ref = field('Chat', h('input', { type: 'text', name: 'chat', autocomplete: 'off', spellcheck: 'false', placeholder: '@channel, -1001234567890 or https://t.me/…' }));
    const requireAdmin = h('input', { type: 'checkbox', name: 'requireAdmin', id: `req-admin-${connectionId}` });
    const form = h('form', { class: 'inline-form', novalidate: true, 'data-form': 'add-chat' },
      ref.wrap,
      h('label', { class: 'check', for: requireAdmin.id }, requireAdmin, 'Require admin rights'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Add chat')));
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
        ctx.toast('success', `Chat added: ${chat.title}`);
      } catch (err) {
        ref.setError(errorLine(err));
        ref.input.focus();
      }
    });
    this.list = h('ul', { class: 'chat-list', 'aria-label': 'Chats' });
    this.problem = h('p', { class: 'form-error', role: 'alert' });
    this.root = h('section', { class: 'subpanel', 'aria-labelledby': `chats-${connectionId}` },
      h('h3', { id: `chats-${connectionId}` }, 'Chats'), form, this.problem, this.list);
  }

  async load(): Promise<void> {
    try {
      this.chats = await this.ctx.api.listChats(this.connectionId);
      this.problem.textContent = '';
    } catch (err) {
      this.problem.textContent = errorLine(err);
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
      rebuild(this.list, h('li', { class: 'empty' }, 'No chats yet.'));
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
        flag('admin', c.isAdmin), flag('can send', c.canSend),
        h('span', { class: 'chat-rights' }, rights.length ? `rights: ${rights.join(', ')}` : 'no admin rights'),
        h('span', { class: 'chat-checked', title: c.checkedAt }, `checked ${timeAgo(c.checkedAt)}`)),
      h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn--small', 'data-focus-key': `refresh-${c.id}`, 'aria-label': `Re-check rights in ${c.title}`, onclick: (e) => this.refresh(c, e) }, 'Re-check'),
        h('button', { type: 'button', class: 'btn btn--small btn--danger', 'aria-label': `Remove ${c.title}`, onclick: () => this.removeChat(c) }, 'Remove')));
  }

  private async refresh(c: Chat, e: Event): Promise<void> {
    const button = e.currentTarget as HTMLButtonElement;
    try {
      this.put(await busy(button.parentElement!, () => this.ctx.api.refreshChat(this.connectionId, c.id)));
      this.ctx.toast('info', `Rights re-checked: ${c.title}`);
    } catch (err) {
      this.ctx.toast('error', `${c.title}: ${errorLine(err)}`);
    }
  }

  private async removeChat(c: Chat): Promise<void> {
    if (!(await this.ctx.confirm(`Remove the chat “${c.title}” from this connection?`, 'Remove chat'))) return;
    try {
      await this.ctx.api.removeChat(this.connectionId, c.id);
      this.chats = this.chats.filter((x) => x.id !== c.id);
      this.render();
    } catch (err) {
      this.ctx.toast('error', `${c.title}: ${errorLine(err)}`);
    }
  }
}

const flag = (label: string, on: boolean): HTMLElement =>
  h('span', { class: `flag ${on ? 'flag--on' : 'flag--off'}` }, `${on ? '✓' : '✗'} ${label}`);
