import { busy, field, h, rebuild } from '../dom.ts';
import { describeError } from '../error-text.ts';
import { agoElement, localTime } from '../format.ts';
import type { Connection, Message, PlatformQuota } from '../types.ts';
import { statusBadge } from './badges.ts';
import { ChatsView } from './chats.view.ts';
import { type Ctx, connectionName, errorLine, kindLabel } from './context.ts';
import { goAuthorize } from './platform-forms.view.ts';
import { type LoginStep, loginStep } from './login-step.view.ts';
import { MessagesView } from './messages.view.ts';
import { SendMessageView } from './send-message.view.ts';
import { t, tMaybe } from '../i18n/index.ts';
import { checkBotToken } from '../validate.ts';

// Statuses in which the account exists at Telegram, so chats and messages make sense.
const settled = new Set(['active', 'error', 'stopped']);
// Errors that only the owner's consent at the platform mends (a reconnect would meet them again).
const authGone = new Set(['PLATFORM_AUTH_REVOKED', 'PLATFORM_AUTH_DENIED', 'OAUTH_STATE_INVALID']);

// Platform quotas (Instagram 50 posts and Threads 250 posts in 24 h, YouTube's daily units): used of
// limit and when the window resets, so an operator sees a 429 PLATFORM_QUOTA_EXCEEDED coming.
const quotaTable = (quotas: PlatformQuota[]): HTMLElement =>
  h('table', { class: 'quotas', 'data-quotas': '' },
    h('caption', null, t('conn.quotas')),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('conn.quota.name')), h('th', { scope: 'col' }, t('conn.quota.used')), h('th', { scope: 'col' }, t('conn.quota.resets')))),
    h('tbody', null, quotas.map((q) =>
      h('tr', { 'data-quota': q.name, class: q.used >= q.limit ? 'quota--spent' : '' },
        h('th', { scope: 'row' }, quotaName(q.name)),
        h('td', null, t('conn.quota.usedOf', { used: q.used, limit: q.limit })),
        h('td', null, localTime(q.resetsAt))))));

const quotaName = (name: string): string => tMaybe(`quota.${name}`) ?? name;

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
      rebuild(this.root, h('h2', { id: 'detail-title' }, t('conn.title')), h('p', { class: 'empty' }, t('conn.none')));
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
    // Relative times are not in the key: the app's 1 s ticker rewrites them in place (refreshTimes).
    const key = JSON.stringify([c.status, c.displayName, c.username, c.phone, c.error, c.kind, c.statusSince, c.quotas]);
    if (key === this.headKey) return;
    this.headKey = key;
    const facts: [string, string | Node][] = [
      [t('conn.kind'), kindLabel(c)],
      [t('conn.phone'), c.phone ?? ''],
      [t('conn.username'), c.username ? `@${c.username}` : ''],
      [t('conn.since'), h('span', null, `${localTime(c.statusSince)} (`, agoElement(c.statusSince), ')')],
      [t('conn.lastActive'), c.lastActiveAt ? localTime(c.lastActiveAt) : ''],
      [t('conn.created'), localTime(c.createdAt)],
    ];
    const canReconnect = (c.status === 'error' || c.status === 'stopped') && !authGone.has(c.error?.code ?? '');
    const canReauthorize = c.status === 'error' && c.login?.method !== 'phone' && authGone.has(c.error?.code ?? '');
    rebuild(this.head,
      h('div', { class: 'panel-head' },
        h('h2', { id: 'detail-title' }, connectionName(c)),
        statusBadge(c.status)),
      h('dl', { class: 'facts' }, facts.filter(([, v]) => v).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
      c.quotas?.length ? quotaTable(c.quotas) : null,
      c.error ? h('p', { class: 'conn-error', role: 'alert', 'data-error-code': c.error.code }, describeError(c.error, Date.now(), c.kind === 'bot' ? 'bot' : 'account')) : null,
      c.kind === 'bot' && c.error?.code === 'TG_BOT_IN_USE' ? this.botConflict(c) : null,
      h('div', { class: 'actions' },
        canReauthorize ? h('button', { type: 'button', class: 'btn btn--primary', 'data-focus-key': 'reauthorize', 'data-reauthorize': '', onclick: (e) => this.reauthorize(c, e) }, t('conn.reauthorize')) : null,
        canReconnect ? h('button', { type: 'button', class: 'btn', 'data-focus-key': 'reconnect', onclick: (e) => this.reconnect(c, e) }, t('conn.reconnect')) : null,
        h('button', { type: 'button', class: 'btn btn--danger', 'data-focus-key': 'delete', onclick: () => this.remove(c) }, t('conn.delete'))));
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

  // TG_BOT_IN_USE: the bot's updates go to a webhook or another poller. The two ways out both need a
  // new connection (the token is stored encrypted and never given back, so it is asked again): only
  // send (updates "none"), or take the updates over (takeOver deletes the webhook). The old
  // connection is deleted first: the same bot cannot be connected twice (409).
  private botConflict(c: Connection): HTMLElement {
    const token = field(t('bot.inUse.token'), h('input', { type: 'password', name: 'bot-token', autocomplete: 'off', spellcheck: 'false' }),
      t('bot.inUse.tokenHint'));
    const problem = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'bot-conflict', novalidate: true, 'data-bot-conflict': '' },
      h('p', null, t('bot.inUse.explain')),
      h('ul', null, h('li', null, t('bot.inUse.noneHow')), h('li', null, t('bot.inUse.takeOverHow'))),
      token.wrap, problem);
    const go = async (way: 'none' | 'takeOver') => {
      problem.textContent = '';
      const check = checkBotToken(token.input.value);
      if (!check.ok) {
        token.setError(check.message);
        token.input.focus();
        return;
      }
      try {
        const next = await busy(form, async () => {
          await this.ctx.api.deleteConnection(c.id);
          return this.ctx.api.createConnection(way === 'none'
            ? { platform: 'telegram', kind: 'bot', token: check.value, updates: 'none' }
            : { platform: 'telegram', kind: 'bot', token: check.value, updates: 'poll', takeOver: true });
        });
        this.ctx.remove(c.id);
        this.ctx.upsert(next);
        this.ctx.select(next.id);
        this.ctx.toast('info', t('bot.inUse.done', { name: connectionName(next) }));
      } catch (err) {
        // The old connection may be gone already (deleted, then the create failed): say it where it stays visible.
        problem.textContent = errorLine(err, 'bot');
        this.ctx.toast('error', `${connectionName(c)}: ${errorLine(err, 'bot')}`);
      }
    };
    token.input.addEventListener('input', () => token.setError(null));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void go('none');
    });
    form.append(h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'btn btn--primary', 'data-way': 'none' }, t('bot.inUse.none')),
      h('button', { type: 'button', class: 'btn', 'data-way': 'takeOver', onclick: () => void go('takeOver') }, t('bot.inUse.takeOver'))));
    return form;
  }

  // A grant that is gone (revoked at the platform, consent declined) needs the owner at the platform
  // again: a new authorize URL, opened in this tab; the callback brings the browser back here.
  private async reauthorize(c: Connection, e: Event): Promise<void> {
    try {
      const next = await busy(e.currentTarget as HTMLElement, () => this.ctx.api.reauthorize(c.id));
      this.ctx.upsert(next);
      goAuthorize(next);
    } catch (err) {
      this.ctx.toast('error', `${connectionName(c)}: ${errorLine(err)}`);
    }
  }

  private async reconnect(c: Connection, e: Event): Promise<void> {
    try {
      this.ctx.upsert(await busy(e.currentTarget as HTMLElement, () => this.ctx.api.reconnect(c.id)));
    } catch (err) {
      this.ctx.toast('error', `${connectionName(c)}: ${errorLine(err, c.kind === 'bot' ? 'bot' : 'account')}`);
    }
  }

  private async remove(c: Connection): Promise<void> {
    const ask = t(c.kind === 'bot' ? 'conn.deleteBot' : 'conn.deleteUser', { name: connectionName(c) });
    if (!(await this.ctx.confirm(ask, t('common.delete')))) return;
    try {
      await this.ctx.api.deleteConnection(c.id);
      this.ctx.remove(c.id);
      this.ctx.toast('info', t('conn.deleted', { name: connectionName(c) }));
    } catch (err) {
      this.ctx.toast('error', `${connectionName(c)}: ${errorLine(err, c.kind === 'bot' ? 'bot' : 'account')}`);
    }
  }
}
