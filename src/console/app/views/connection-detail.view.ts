import { busy, h, rebuild } from '../dom.ts';
import { describeError } from '../error-text.ts';
import { localTime, timeAgo } from '../format.ts';
import type { Connection, Message } from '../types.ts';
import { statusBadge } from './badges.ts';
import { ChatsView } from './chats.view.ts';
import { type Ctx, connectionName, errorLine } from './context.ts';
import { type LoginStep, loginStep } from './login-step.view.ts';
import { MessagesView } from './messages.view.ts';
import { SendMessageView } from './send-message.view.ts';

// Statuses in which the account exists at Telegram, so chats and messages make sense.
const settled = new Set(['active', 'error', 'stopped']);

// The selected connection: its facts and actions, then either its login step or its work area
// (chats, send, recent messages). Each part is rebuilt only when what it shows changed, so typing in
// a form is never wiped by an unrelated live event.
export class ConnectionDetail {
  readonly root: HTMLElement;
  private readonly head = h('div', { class: 'detail-head' });
  private readonly loginArea = h('div', { class: 'login-area' });
  private readonly workArea = h('div', { class: 'work-area' });
  private conn: Connection | null = null;
  private headKey = '';
  private login: { status: string; step: LoginStep } | null = null;
  private work: { id: string; messages: MessagesView } | null = null;

  constructor(private readonly ctx: Ctx) {
    this.root = h('section', { class: 'panel detail', 'aria-labelledby': 'detail-title', tabindex: -1 });
    this.show(null);
  }

  show(conn: Connection | null): void {
    if (conn?.id !== this.conn?.id) {
      this.clearLogin();
      this.work = null;
      this.workArea.replaceChildren();
      this.headKey = '';
    }
    this.conn = conn;
    if (!conn) {
      rebuild(this.root, h('h2', { id: 'detail-title' }, 'Connection'), h('p', { class: 'empty' }, 'Select a connection, or add one.'));
      return;
    }
    if (this.root.childElementCount !== 3 || this.root.firstElementChild !== this.head) this.root.replaceChildren(this.head, this.loginArea, this.workArea);
    this.renderHead(conn);
    this.renderLogin(conn);
    this.renderWork(conn);
  }

  message(msg: Message): void {
    if (this.work && msg.connectionId === this.work.id) this.work.messages.put(msg);
  }

  private renderHead(c: Connection): void {
    // Relative times are not in the key: they are refreshed by the app's 30 s tick through show().
    const key = JSON.stringify([c.status, c.displayName, c.username, c.phone, c.error, c.kind, c.statusSince, Math.floor(Date.now() / 30_000)]);
    if (key === this.headKey) return;
    this.headKey = key;
    const facts: [string, string][] = [
      ['Kind', c.kind === 'bot' ? 'Bot' : 'User account'],
      ['Phone', c.phone ?? ''],
      ['Username', c.username ? `@${c.username}` : ''],
      ['Status since', `${localTime(c.statusSince)} (${timeAgo(c.statusSince)})`],
      ['Last active', c.lastActiveAt ? localTime(c.lastActiveAt) : ''],
      ['Created', localTime(c.createdAt)],
    ];
    const canReconnect = c.status === 'error' || c.status === 'stopped';
    rebuild(this.head,
      h('div', { class: 'panel-head' },
        h('h2', { id: 'detail-title' }, connectionName(c)),
        statusBadge(c.status)),
      h('dl', { class: 'facts' }, facts.filter(([, v]) => v).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      c.error ? h('p', { class: 'conn-error', role: 'alert', 'data-error-code': c.error.code }, describeError(c.error)) : null,
      h('div', { class: 'actions' },
        canReconnect ? h('button', { type: 'button', class: 'btn', 'data-focus-key': 'reconnect', onclick: (e) => this.reconnect(c, e) }, 'Reconnect') : null,
        h('button', { type: 'button', class: 'btn btn--danger', 'data-focus-key': 'delete', onclick: () => this.remove(c) }, 'Delete connection')));
  }

  private renderLogin(c: Connection): void {
    if (this.login && this.login.status === c.status) {
      this.login.step.update(c);
      return;
    }
    this.clearLogin();
    const step = loginStep(this.ctx, c);
    if (!step) return;
    this.login = { status: c.status, step };
    this.loginArea.replaceChildren(step.root);
  }

  private clearLogin(): void {
    this.login?.step.dispose();
    this.login = null;
    this.loginArea.replaceChildren();
  }

  private renderWork(c: Connection): void {
    if (!settled.has(c.status) || this.work?.id === c.id) return;
    const messages = new MessagesView(this.ctx, c.id);
    const send = new SendMessageView(this.ctx, c.id, (m) => messages.put(m));
    const chats = new ChatsView(this.ctx, c.id, (list) => {
      send.setChats(list);
      messages.relabel();
    });
    this.work = { id: c.id, messages };
    this.workArea.replaceChildren(chats.root, send.root, messages.root);
    void chats.load();
    void messages.load();
  }

  private async reconnect(c: Connection, e: Event): Promise<void> {
    try {
      this.ctx.upsert(await busy(e.currentTarget as HTMLElement, () => this.ctx.api.reconnect(c.id)));
    } catch (err) {
      this.ctx.toast('error', `${connectionName(c)}: ${errorLine(err)}`);
    }
  }

  private async remove(c: Connection): Promise<void> {
    const what = c.kind === 'bot' ? 'This removes the bot and its chats here.' : 'This logs the account out at Telegram and deletes its chats and messages here.';
    if (!(await this.ctx.confirm(`Delete “${connectionName(c)}”? ${what}`, 'Delete'))) return;
    try {
      await this.ctx.api.deleteConnection(c.id);
      this.ctx.remove(c.id);
      this.ctx.toast('info', `${connectionName(c)} deleted`);
    } catch (err) {
      this.ctx.toast('error', `${connectionName(c)}: ${errorLine(err)}`);
    }
  }
}
