import { busy, field, h, rebuild } from '../dom.ts';
import { randomKey } from '../format.ts';
import type { Chat, Message, Priority } from '../types.ts';
import { checkChatRef, checkMessageText, maxMessageLength } from '../validate.ts';
import { type Ctx, errorLine } from './context.ts';

const otherChat = '__other__';

// Send one message through this connection. The answer is 202 `queued`; the messages list then
// follows it to `sent` (or `failed` with a code) from message.status events.
export class SendMessageView {
  readonly root: HTMLElement;
  private readonly chatSelect: HTMLSelectElement;
  private readonly other: ReturnType<typeof field<HTMLInputElement>>;
  private pickedOther = false;

  constructor(ctx: Ctx, connectionId: string, onQueued: (m: Message) => void) {
    const chat = field('Chat', h('select', { name: 'chat' }));
    this.chatSelect = chat.input;
    this.other = field('Other chat', h('input', { type: 'text', name: 'chat-ref', autocomplete: 'off', spellcheck: 'false', placeholder: '@name or chat id' }));
    const text = field('Text', h('textarea', { name: 'text', rows: 3, maxlength: maxMessageLength }));
    const count = h('span', { class: 'hint counter', 'aria-live': 'off' }, `0 / ${maxMessageLength}`);
    const priority = field('Priority', h('select', { name: 'priority' },
      h('option', { value: 'high' }, 'high'), h('option', { value: 'normal', selected: true }, 'normal'), h('option', { value: 'low' }, 'low')));
    priority.input.value = 'normal';
    const problem = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'send-form', novalidate: true, 'data-form': 'send' },
      h('div', { class: 'row' }, chat.wrap, priority.wrap), this.other.wrap, text.wrap, count, problem,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, 'Send')));
    this.chatSelect.addEventListener('change', () => {
      this.pickedOther = this.chatSelect.value === otherChat;
      this.syncOther();
    });
    text.input.addEventListener('input', () => {
      count.textContent = `${text.input.value.length} / ${maxMessageLength}`;
      text.setError(null);
    });
    // The key belongs to the text being sent: a retry of the same submission reuses it, a new
    // submission (after success) gets a fresh one.
    let key = randomKey();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      problem.textContent = '';
      const target = this.chatSelect.value === otherChat ? checkChatRef(this.other.input.value) : { ok: true as const, value: this.chatSelect.value };
      const body = checkMessageText(text.input.value);
      if (!target.ok) this.other.setError(target.message);
      if (!body.ok) text.setError(body.message);
      if (!target.ok || !body.ok) return;
      if (!target.value) return void (problem.textContent = 'Choose a chat');
      try {
        const msg = await busy(form, () => ctx.api.sendMessage(
          { connectionId, chat: target.value, text: body.value, priority: priority.input.value as Priority }, key));
        ctx.trackSent(msg.id);
        onQueued(msg);
        key = randomKey();
        text.input.value = '';
        count.textContent = `0 / ${maxMessageLength}`;
        text.input.focus();
      } catch (err) {
        problem.textContent = errorLine(err);
      }
    });
    this.root = h('section', { class: 'subpanel', 'aria-labelledby': `send-${connectionId}` },
      h('h3', { id: `send-${connectionId}` }, 'Send a message'), form);
    this.setChats([]);
  }

  setChats(chats: Chat[]): void {
    const before = this.chatSelect.value;
    rebuild(this.chatSelect,
      chats.map((c) => h('option', { value: c.id }, c.username ? `${c.title} (@${c.username})` : c.title)),
      h('option', { value: otherChat }, 'Other (type it)…'));
    const values = Array.from(this.chatSelect.options, (o) => o.value);
    // "Other" stays chosen only if the user picked it; otherwise the first chat is the default.
    this.chatSelect.value = values.includes(before) && (before !== otherChat || this.pickedOther) ? before : values[0]!;
    this.syncOther();
  }

  private syncOther(): void {
    this.other.wrap.hidden = this.chatSelect.value !== otherChat;
    this.other.setError(null);
  }
}
