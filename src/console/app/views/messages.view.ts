import { h } from '../dom.ts';
import { type Actor, describeError } from '../error-text.ts';
import { agoElement } from '../format.ts';
import type { Message } from '../types.ts';
import { messageBadge } from './badges.ts';
import { type Ctx, errorLine } from './context.ts';
import { t, tPlural } from '../i18n/index.ts';

// The 20 most recent messages of this connection, kept current from message.status events.
const shown = 20;

export class MessagesView {
  readonly root: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly problem: HTMLElement;
  private readonly messages = new Map<string, Message>();

  constructor(private readonly ctx: Ctx, private readonly connectionId: string) {
    this.list = h('ol', { class: 'msg-list', 'aria-label': t('msgs.recent') });
    this.problem = h('p', { class: 'form-error', role: 'alert' });
    this.root = h('section', { class: 'subpanel', 'aria-labelledby': `msgs-${connectionId}` },
      h('div', { class: 'panel-head' },
        h('h3', { id: `msgs-${connectionId}` }, t('msgs.recent')),
        h('button', { type: 'button', class: 'btn btn--small', onclick: () => void this.load() }, t('common.refresh'))),
      this.problem, this.list);
  }

  async load(): Promise<void> {
    try {
      const page = await this.ctx.api.listMessages({ connectionId: this.connectionId, limit: shown });
      for (const m of page.items) this.merge(m);
      this.problem.textContent = '';
    } catch (err) {
      this.problem.textContent = errorLine(err, this.ctx.actorOf(this.connectionId));
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
    this.list.replaceChildren(...(items.length ? items.map((m) => row(m, this.ctx.chatLabel(m.chat), this.ctx.actorOf(m.connectionId))) : [h('li', { class: 'empty' }, t('msgs.empty'))]));
  }
}

const rank: Record<string, number> = { queued: 0, sending: 1, sent: 2, failed: 2, cancelled: 2 };

const size = (n: number | undefined) => (n === undefined ? '' : n >= 1024 * 1024 ? ` · ${(n / 1024 / 1024).toFixed(1)} MB` : ` · ${Math.ceil(n / 1024)} KB`);

// The file, and what happened to the message after it was sent: edited, deleted, or a change pending.
const mediaLine = (m: Message) => m.media
  ? h('p', { class: 'msg-media', 'data-media': m.media.type }, `📎 ${m.media.type}${m.media.filename ? ` · ${m.media.filename}` : ''}${size(m.media.size)}`)
  : null;

const changeLine = (m: Message) => {
  const parts: (string | Node)[] = [];
  if (m.deletedAt) parts.push(agoElement(m.deletedAt, t('msgs.deleted')));
  else if (m.editedAt) parts.push(agoElement(m.editedAt, t('msgs.edited')));
  const p = m.pendingOperation;
  if (p) parts.push(p.status === 'failed' ? t('msgs.opFailed', { type: p.type }) : `${t('msgs.opPending', { type: p.type })}${p.type === 'edit' && p.text !== undefined ? `: “${p.text}”` : ''}`);
  return parts.length ? h('p', { class: 'msg-change', 'data-change': m.deletedAt ? 'deleted' : m.editedAt ? 'edited' : 'pending' }, parts.flatMap((x, i) => (i ? [' · ', x] : [x]))) : null;
};

const row = (m: Message, chat: string, who: Actor): HTMLLIElement =>
  h('li', { class: 'msg', 'data-message-id': m.id, 'data-status': m.status },
    h('div', { class: 'msg-head' },
      messageBadge(m.status),
      h('span', { class: 'msg-chat' }, chat),
      h('span', { class: 'msg-meta' }, `${m.priority} · ${tPlural('msgs.attempts', m.attempts)} · `, agoElement(m.sentAt ?? m.createdAt))),
    mediaLine(m),
    m.text ? h('p', { class: `msg-text${m.deletedAt ? ' msg-text--deleted' : ''}` }, m.text) : null,
    changeLine(m),
    m.error ? h('p', { class: 'msg-error' }, describeError(m.error, Date.now(), who)) : null,
    m.pendingOperation?.error ? h('p', { class: 'msg-error' }, describeError(m.pendingOperation.error, Date.now(), who)) : null);
