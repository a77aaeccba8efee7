import { h } from '../dom.ts';
import { describeError } from '../error-text.ts';
import { timeAgo } from '../format.ts';
import type { Message } from '../types.ts';
import { messageBadge } from './badges.ts';
import { type Ctx, errorLine } from './context.ts';

// The 20 most recent messages of this connection, kept current from message.status events.
const shown = 20;

export class MessagesView {
  readonly root: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly problem: HTMLElement;
  private readonly messages = new Map<string, Message>();

  constructor(private readonly ctx: Ctx, private readonly connectionId: string) {
    this.list = h('ol', { class: 'msg-list', 'aria-label': 'Recent messages' });
    this.problem = h('p', { class: 'form-error', role: 'alert' });
    this.root = h('section', { class: 'subpanel', 'aria-labelledby': `msgs-${connectionId}` },
      h('div', { class: 'panel-head' },
        h('h3', { id: `msgs-${connectionId}` }, 'Recent messages'),
        h('button', { type: 'button', class: 'btn btn--small', onclick: () => void this.load() }, 'Refresh')),
      this.problem, this.list);
  }

  async load(): Promise<void> {
    try {
      const page = await this.ctx.api.listMessages({ connectionId: this.connectionId, limit: shown });
      for (const m of page.items) this.merge(m);
      this.problem.textContent = '';
    } catch (err) {
      this.problem.textContent = errorLine(err);
    }
    this.render();
  }

  put(msg: Message): void {
    if (msg.connectionId !== this.connectionId) return;
    this.merge(msg);
    this.render();
  }

  // Chat titles arrive with the chats list, possibly after the messages.
  relabel(): void {
    this.render();
  }

  // A late "sending" frame must not overwrite a "sent" already shown: status only moves forward.
  private merge(msg: Message): void {
    const prev = this.messages.get(msg.id);
    if (prev && rank[prev.status] > rank[msg.status]) return;
    this.messages.set(msg.id, msg);
  }

  private render(): void {
    const items = [...this.messages.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt)).slice(0, shown);
    for (const id of this.messages.keys()) if (!items.some((m) => m.id === id)) this.messages.delete(id);
    this.list.replaceChildren(...(items.length ? items.map((m) => row(m, this.ctx.chatLabel(m.chat))) : [h('li', { class: 'empty' }, 'No messages yet.')]));
  }
}

const rank: Record<string, number> = { queued: 0, sending: 1, sent: 2, failed: 2 };

const row = (m: Message, chat: string): HTMLLIElement =>
  h('li', { class: 'msg', 'data-message-id': m.id, 'data-status': m.status },
    h('div', { class: 'msg-head' },
      messageBadge(m.status),
      h('span', { class: 'msg-chat' }, chat),
      h('span', { class: 'msg-meta' }, `${m.priority} · ${m.attempts} attempt${m.attempts === 1 ? '' : 's'} · ${timeAgo(m.sentAt ?? m.createdAt)}`)),
    h('p', { class: 'msg-text' }, m.text),
    m.error ? h('p', { class: 'msg-error' }, describeError(m.error)) : null);
