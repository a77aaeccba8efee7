import { ApiClient } from '../api-client.ts';
import { h } from '../dom.ts';
import { type Actor, describeError } from '../error-text.ts';
import { refreshTimes } from '../format.ts';
import { eventsProtocols, eventsUrl, LiveEvents, type LiveState } from '../live-events.ts';
import { tokenIsAdmin, tokenSubject } from '../token.ts';
import type { Chat, Connection, LiveFrame, Message } from '../types.ts';
import { confirmDialog } from './confirm-dialog.ts';
import { connectForms } from './connect-forms.view.ts';
import { ConnectionDetail } from './connection-detail.view.ts';
import { ConnectionList } from './connection-list.view.ts';
import { type Ctx, connectionName, errorLine } from './context.ts';
import { StatsView } from './stats.view.ts';
import { ActorsView } from './actors.view.ts';
import { ClusterView } from './cluster.view.ts';
import { AuditView } from './audit.view.ts';
import { WebhooksView } from './webhooks.view.ts';
import { HistoryView } from './history.view.ts';
import { PrivacyView } from './privacy.view.ts';

type View = 'connections' | 'messages' | 'audit' | 'webhooks' | 'privacy' | 'actors' | 'cluster';
import { createToasts } from './toasts.view.ts';
import { t } from '../i18n/index.ts';
import { langSwitch } from './lang-switch.ts';

// The hour window of the stats moves on this tick; relative times ("12 s ago") on their own 1 s one.
const tickMs = 30_000;
const clockMs = 1_000;
// A connection still `connecting` is polled (it should move on within seconds); one waiting for its QR
// scan only while the socket is down, since the scan is announced by a connection.status frame.
const pollMs = 2_000;

// The signed-in console: one place that owns the connection map and routes live frames to views.
export class ConsoleView {
  readonly root: HTMLElement;
  private readonly connections = new Map<string, Connection>();
  // Deleted here: the status frame of the logout that the delete ran (`stopped`) can arrive after the
  // DELETE's answer and would put the row back. Ids are never reused, so the set only grows by deletes.
  private readonly removed = new Set<string>();
  private selectedId: string | null = null;
  private readonly list: ConnectionList;
  private readonly detail: ConnectionDetail;
  private readonly stats: StatsView;
  private readonly toasts = createToasts();
  private readonly live: LiveEvents;
  private readonly liveBadge = h('span', { class: 'live live--connecting', role: 'status' }, t('live.connecting'));
  private readonly sentHere = new Set<string>();
  private readonly chatTitles = new Map<string, string>();
  private readonly chatsRead = new Map<string, Promise<void>>();
  private api!: ApiClient;
  private liveIsOpen = false;
  private readonly admin: boolean;
  private readonly ctx: Ctx;
  private readonly onErased: () => void;
  private readonly home: HTMLElement;
  private readonly nav: HTMLElement;
  private readonly pageArea = h('div', { class: 'page-area' });
  private readonly views: { messages?: HistoryView; audit?: AuditView; webhooks?: WebhooksView; privacy?: PrivacyView; actors?: ActorsView; cluster?: ClusterView } = {};
  private readonly onHash = (): void => this.showView();
  private timers: number[] = [];

  constructor(private readonly token: string, onSignOut: (problem?: string) => void) {
    let signedOut = false;
    const signOut = (problem?: string) => {
      if (signedOut) return;
      signedOut = true;
      this.stop();
      onSignOut(problem);
    };
    const api = new ApiClient(() => this.token, () => signOut(t('signin.refused')));
    const ctx: Ctx = {
      api,
      toast: (kind, text) => this.toasts.show(kind, text),
      confirm: confirmDialog,
      select: (id) => this.select(id),
      upsert: (c) => this.upsert(c),
      remove: (id) => this.removeConnection(id),
      trackSent: (id) => this.sentHere.add(id),
      // A message names its chat as it was sent or as the server resolved it: any of these.
      rememberChats: (chats) => this.rememberChats(chats),
      chatLabel: (ref) => this.chatTitles.get(ref) ?? ref,
      actorOf: (id) => this.actorOf(id),
    };
    this.api = api;
    this.stats = new StatsView(api);
    this.list = new ConnectionList((id) => this.select(id, true), () => void this.reload(ctx));
    this.detail = new ConnectionDetail(ctx);
    this.live = new LiveEvents({
      url: () => eventsUrl(location),
      protocols: () => eventsProtocols(this.token),
      onFrame: (f) => this.onFrame(f),
      onState: (s, ms) => this.setLive(s, ms),
      // Frames sent while the socket was down are gone: re-read the list on every (re)open.
      onOpen: () => void this.reload(ctx),
    });
    const who = tokenSubject(token);
    this.admin = tokenIsAdmin(token);
    this.ctx = ctx;
    this.onErased = () => signOut(t('privacy.erased'));
    this.home = h('div', { class: 'home' },
      this.stats.root,
      h('div', { class: 'columns' },
        h('div', { class: 'sidebar' }, this.list.root, connectForms(ctx)),
        this.detail.root));
    const pages: [View, 'nav.connections' | 'nav.messages' | 'nav.audit' | 'nav.webhooks' | 'nav.privacy' | 'nav.actors' | 'nav.cluster'][] = [
      ['connections', 'nav.connections'], ['messages', 'nav.messages'], ['audit', 'nav.audit'], ['webhooks', 'nav.webhooks'], ['privacy', 'nav.privacy'],
      ...(this.admin ? [['actors', 'nav.actors'] as [View, 'nav.actors'], ['cluster', 'nav.cluster'] as [View, 'nav.cluster']] : []),
    ];
    this.nav = h('nav', { class: 'nav', 'aria-label': t('nav.label') },
      h('ul', null, pages.map(([v, key]) => h('li', null, h('a', { href: `#view=${v}`, 'data-view': v }, t(key))))));
    this.root = h('div', { class: 'app' },
      h('header', { class: 'topbar' },
        h('h1', null, t('app.title')),
        h('div', { class: 'topbar-side' },
          langSwitch(),
          this.liveBadge,
          who ? h('span', { class: 'who', title: t('who.title') }, who) : null,
          h('button', { type: 'button', class: 'btn btn--small', onclick: () => signOut() }, t('signout')))),
      this.nav,
      h('main', { class: 'layout', id: 'main' },
        this.toasts.root,
        this.pageArea));
    this.showView();
    window.addEventListener('hashchange', this.onHash);
    const back = this.takeAuthorizationReturn();
    void this.reload(ctx).then(() => back?.()).then(() => this.stats.load().catch((err) => this.toasts.show('error', t('stats.problem', { error: errorLine(err) }))));
    this.live.start();
    this.timers.push(
      window.setInterval(() => this.tick(), tickMs),
      window.setInterval(() => void this.poll(ctx), pollMs),
      window.setInterval(() => refreshTimes(this.root), clockMs),
    );
  }

  // Back from a platform's consent page: the service's OAuth callback redirected here with
  // ?connection=<id>&status=active (or status=error&code=PLATFORM_AUTH_DENIED). The connection is
  // selected and the outcome said once; the query is wiped so a reload does not say it again.
  private takeAuthorizationReturn(): (() => void) | undefined {
    const q = new URLSearchParams(location.search);
    const id = q.get('connection');
    if (!id) return undefined;
    const status = q.get('status') ?? '';
    const code = /^[A-Z][A-Z0-9_]{1,63}$/.test(q.get('code') ?? '') ? q.get('code')! : 'PLATFORM_AUTH_DENIED';
    history.replaceState(null, '', location.pathname + location.hash);
    this.selectedId = id;
    return () => {
      const c = this.connections.get(id);
      if (!c) return;
      const name = connectionName(c);
      if (status === 'error') this.toasts.show('error', `${name}: ${describeError({ code, message: '' }, Date.now())}`);
      else this.toasts.show(c.status === 'active' ? 'success' : 'info', t('conn.authorized', { name, status: c.status }));
    };
  }

  stop(): void {
    window.removeEventListener('hashchange', this.onHash);
    this.views.actors?.stop();
    this.views.cluster?.stop();
    this.live.stop();
    this.timers.forEach((t) => clearInterval(t));
    this.timers = [];
    this.detail.show(null);
  }

  // The page named by #view=… (connections when none or unknown); admin pages only for an admin token.
  private showView(): void {
    const asked = new URLSearchParams(location.hash.slice(1)).get('view') ?? 'connections';
    const view: View = asked === 'messages' || asked === 'audit' || asked === 'webhooks' || asked === 'privacy' || ((asked === 'actors' || asked === 'cluster') && this.admin) ? asked : 'connections';
    for (const a of this.nav.querySelectorAll('a')) {
      if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (view !== 'actors') this.views.actors?.stop();
    if (view !== 'cluster') this.views.cluster?.stop();
    let page: HTMLElement;
    if (view === 'connections') page = this.home;
    else if (view === 'messages') {
      const v = (this.views.messages ??= new HistoryView(this.ctx, () => [...this.connections.values()]));
      void v.load();
      page = v.root;
    } else if (view === 'audit') {
      const v = (this.views.audit ??= new AuditView(this.ctx, this.admin));
      void v.load();
      page = v.root;
    } else if (view === 'webhooks') {
      const v = (this.views.webhooks ??= new WebhooksView(this.ctx));
      void v.load();
      page = v.root;
    } else if (view === 'privacy') {
      const v = (this.views.privacy ??= new PrivacyView(this.ctx, this.onErased));
      void v.load();
      page = v.root;
    } else if (view === 'actors') {
      const v = (this.views.actors ??= new ActorsView(this.ctx));
      v.start();
      page = v.root;
    } else {
      const v = (this.views.cluster ??= new ClusterView(this.ctx));
      v.start();
      page = v.root;
    }
    if (this.pageArea.firstElementChild !== page) this.pageArea.replaceChildren(page);
  }

  private async reload(ctx: Ctx): Promise<void> {
    try {
      const all = await ctx.api.listConnections();
      const seen = new Set(all.map((c) => c.id));
      for (const id of [...this.connections.keys()]) if (!seen.has(id)) this.connections.delete(id);
      for (const c of all) this.connections.set(c.id, c);
      if (this.selectedId && !seen.has(this.selectedId)) this.selectedId = null;
      this.render();
    } catch (err) {
      this.toasts.show('error', t('conns.problem', { error: errorLine(err) }));
    }
  }

  private async poll(ctx: Ctx): Promise<void> {
    const c = this.selectedId ? this.connections.get(this.selectedId) : undefined;
    if (!c || !(c.status === 'connecting' || (c.status === 'awaiting-qr' && !this.liveIsOpen))) return;
    try {
      this.upsert(await ctx.api.getConnection(c.id));
    } catch {
      // the next tick tries again; errors while offline are already shown by the live badge
    }
  }

  private onFrame(frame: LiveFrame): void {
    if (frame.type === 'connection.status') this.upsert(frame.data, true);
    else if (frame.type === 'message.status') this.onMessage(frame.data, Date.parse(frame.at) || Date.now());
    else if (frame.type === 'message.received') {
      const m = frame.data;
      const conn = this.connections.get(m.connectionId);
      void this.chatTitle(m.connectionId, m.chat).then((chat) =>
        this.toasts.show('info', t('toast.received', { for: conn ? t('toast.receivedFor', { name: connectionName(conn) }) : '', from: m.from, chat, text: m.text.slice(0, 140) })));
    }
  }

  private rememberChats(chats: Chat[]): void {
    for (const c of chats) {
      for (const ref of [c.id, c.platformChatId, c.username ? `@${c.username}` : '']) if (ref) this.chatTitles.set(ref, c.title);
    }
  }

  // A toast names a chat by its title: the chats of a connection not on screen are read once, on the
  // first toast that needs them (a message names its chat by our id, @name or the platform's id).
  private async chatTitle(connectionId: string, ref: string): Promise<string> {
    if (!this.chatTitles.has(ref) && !this.chatsRead.has(connectionId)) {
      this.chatsRead.set(connectionId, this.api.listChats(connectionId).then((chats) => this.rememberChats(chats), () => undefined));
    }
    await this.chatsRead.get(connectionId);
    return this.chatTitles.get(ref) ?? ref;
  }

  private actorOf(connectionId: string): Actor {
    return this.connections.get(connectionId)?.kind === 'bot' ? 'bot' : 'account';
  }

  private onMessage(msg: Message, at: number): void {
    this.stats.record(msg, at);
    this.detail.message(msg);
    const who = this.actorOf(msg.connectionId);
    if (msg.status === 'failed') {
      void this.chatTitle(msg.connectionId, msg.chat).then((chat) =>
        this.toasts.show('error', t('toast.msgFailed', { chat, error: msg.error ? describeError(msg.error, Date.now(), who) : t('toast.msgNoReason') })));
    } else if (msg.status === 'sent' && this.sentHere.delete(msg.id)) {
      void this.chatTitle(msg.connectionId, msg.chat).then((chat) => this.toasts.show('success', t('toast.msgSent', { chat })));
    }
  }

  // Frames and HTTP answers can cross; the newer `updatedAt` wins.
  private upsert(c: Connection, fromEvent = false): void {
    if (this.removed.has(c.id)) return;
    const prev = this.connections.get(c.id);
    if (prev && prev.updatedAt > c.updatedAt) return;
    this.connections.set(c.id, c);
    // Login steps of the connection on screen are visible in its panel; toasts would only repeat them.
    const onScreenStep = c.id === this.selectedId && c.status !== 'active' && c.status !== 'error' && c.status !== 'stopped';
    if (fromEvent && prev && prev.status !== c.status && !onScreenStep) {
      const name = connectionName(c);
      if (c.status === 'error') this.toasts.show('error', `${name}: ${c.error ? describeError(c.error, Date.now(), c.kind === 'bot' ? 'bot' : 'account') : 'error'}`);
      else this.toasts.show(c.status === 'active' ? 'success' : 'info', t('conn.nowStatus', { name, status: c.status }));
    }
    this.render();
  }

  private removeConnection(id: string): void {
    this.removed.add(id);
    this.connections.delete(id);
    if (this.selectedId === id) this.selectedId = null;
    this.render();
  }

  private select(id: string | null, fromList = false): void {
    this.selectedId = id;
    this.render();
    // On a narrow screen the detail sits below the list: bring it into view for the keyboard too.
    if (fromList && window.matchMedia('(max-width: 800px)').matches) this.detail.root.focus();
  }

  private render(): void {
    const all = [...this.connections.values()];
    this.list.render(all, this.selectedId);
    this.stats.setConnections(all);
    this.detail.show(this.selectedId ? this.connections.get(this.selectedId) ?? null : null);
  }

  private tick(): void {
    this.stats.renderMessages();
    this.render();
  }

  private setLive(state: LiveState, retryInMs?: number): void {
    this.liveIsOpen = state === 'open';
    this.liveBadge.className = `live live--${state}`;
    this.liveBadge.textContent = state === 'open' ? t('live.open') : state === 'connecting' ? t('live.connecting') : t('live.waiting', { s: Math.ceil((retryInMs ?? 0) / 1000) });
  }
}
