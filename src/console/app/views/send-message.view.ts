import { busy, field, h, rebuild } from '../dom.ts';
import { randomKey } from '../format.ts';
import type { Chat, MediaType, Message, Priority } from '../types.ts';
import { checkChatRef, checkMessageText, maxMessageLength } from '../validate.ts';
import { type Ctx, showProblem } from './context.ts';
import { t } from '../i18n/index.ts';

const otherChat = '__other__';

// Send one message through this connection, optionally with a file: the file is uploaded first
// (POST /v1/uploads), then sent as the message's media with the text as its caption. The answer is 202
// `queued`; the messages list then follows it to `sent` (or `failed` with a code) from message.status events.

/** How a file is sent, from its type: photos, videos and audio as such, anything else as a document. */
const mediaTypeOf = (f: File): MediaType =>
  f.type === 'image/gif' ? 'animation' : f.type.startsWith('image/') ? 'photo' : f.type.startsWith('video/') ? 'video'
    : f.type === 'audio/ogg' ? 'voice' : f.type.startsWith('audio/') ? 'audio' : 'document';
// Telegram's limit for a photo; larger images go as documents.
const photoMax = 10 * 1024 * 1024;
export class SendMessageView {
  readonly root: HTMLElement;
  private readonly chatSelect: HTMLSelectElement;
  private readonly other: ReturnType<typeof field<HTMLInputElement>>;
  private pickedOther = false;

  constructor(ctx: Ctx, connectionId: string, onQueued: (m: Message) => void) {
    const chat = field(t('send.chat'), h('select', { name: 'chat' }));
    this.chatSelect = chat.input;
    this.other = field(t('send.other'), h('input', { type: 'text', name: 'chat-ref', autocomplete: 'off', spellcheck: 'false', placeholder: t('send.other.placeholder') }));
    // No maxlength: the browser would cut a pasted text at 4096 silently. The counter and the check below
    // refuse an over-long text visibly instead, and nothing typed is lost.
    const text = field(t('send.text'), h('textarea', { name: 'text', rows: 3 }));
    const file = field(t('send.file'), h('input', { type: 'file', name: 'file' }));
    const count = h('span', { class: 'hint counter', 'data-counter': '' }, `0 / ${maxMessageLength}`);
    const setCount = (n: number): void => {
      const over = n - maxMessageLength;
      count.textContent = t(over > 0 ? 'send.counter.over' : 'send.counter', { n, max: maxMessageLength, over });
      count.classList.toggle('counter--over', over > 0);
    };
    const priority = field(t('send.priority'), h('select', { name: 'priority' },
      h('option', { value: 'high' }, 'high'), h('option', { value: 'normal', selected: true }, 'normal'), h('option', { value: 'low' }, 'low')));
    priority.input.value = 'normal';
    const problem = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'send-form', novalidate: true, 'data-form': 'send' },
      h('div', { class: 'row' }, chat.wrap, priority.wrap), this.other.wrap, text.wrap, count, file.wrap, problem,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn--primary' }, t('send.submit'))));
    this.chatSelect.addEventListener('change', () => {
      this.pickedOther = this.chatSelect.value === otherChat;
      this.syncOther();
    });
    text.input.addEventListener('input', () => {
      setCount(text.input.value.length);
      const check = checkMessageText(text.input.value);
      // Said while typing only when too long; an empty text is said on submit.
      text.setError(!check.ok && text.input.value.length > maxMessageLength ? check.message : null);
    });
    // The key belongs to the text being sent: a retry of the same submission reuses it, a new
    // submission (after success) gets a fresh one.
    let key = randomKey();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      showProblem(problem, null);
      const target = this.chatSelect.value === otherChat ? checkChatRef(this.other.input.value) : { ok: true as const, value: this.chatSelect.value };
      const attached = file.input.files?.[0];
      // With a file the text is its caption and may be empty.
      const body = attached && text.input.value.trim() === '' ? { ok: true as const, value: '' } : checkMessageText(text.input.value);
      if (!target.ok) this.other.setError(target.message);
      if (!body.ok) {
        text.setError(body.message);
        text.input.focus();
      }
      if (!target.ok || !body.ok) return;
      if (!target.value) return void (problem.textContent = t('send.chooseChat'));
      try {
        const msg = await busy(form, async () => {
          let media: { type: MediaType; uploadId: string } | undefined;
          if (attached) {
            const type = mediaTypeOf(attached);
            const upload = await ctx.api.uploadFile(attached);
            media = { type: type === 'photo' && upload.size > photoMax ? 'document' : type, uploadId: upload.id };
          }
          return ctx.api.sendMessage({
            connectionId, chat: target.value, priority: priority.input.value as Priority, ...(body.value ? { text: body.value } : {}), ...(media ? { media } : {}),
          }, key);
        });
        ctx.trackSent(msg.id);
        onQueued(msg);
        key = randomKey();
        text.input.value = '';
        file.input.value = '';
        setCount(0);
        text.input.focus();
      } catch (err) {
        showProblem(problem, err, ctx.actorOf(connectionId));
      }
    });
    this.root = h('section', { class: 'subpanel', 'aria-labelledby': `send-${connectionId}` },
      h('h3', { id: `send-${connectionId}` }, t('send.title')), form);
    this.setChats([]);
  }

  setChats(chats: Chat[]): void {
    const before = this.chatSelect.value;
    rebuild(this.chatSelect,
      chats.map((c) => h('option', { value: c.id }, c.username ? `${c.title} (@${c.username})` : c.title)),
      h('option', { value: otherChat }, t('send.other.option')));
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
