import { ApiClient } from '../api-client.ts';
import { h } from '../dom.ts';
import { describeError } from '../error-text.ts';
import { eventsUrl, LiveEvents, type LiveState } from '../live-events.ts';
import { tokenSubject } from '../token.ts';
import type { Connection, LiveFrame, Message } from '../types.ts';
import { confirmDialog } from './confirm-dialog.ts';
import { connectForms } from './connect-forms.view.ts';
import { ConnectionDetail } from './connection-detail.view.ts';
import { ConnectionList } from './connection-list.view.ts';
import { type Ctx, connectionName, errorLine } from './context.ts';
import { StatsView } from './stats.view.ts';
import { createToasts } from './toasts.view.ts';

// Relative times ("12 s ago") and the hour window of the stats move on this tick.
const tickMs = 30_000;
// A connection still `connecting` is polled (it should move on within seconds); one waiting for its QR
// scan only while the socket is down, since the scan is announced by a connection.status frame.
const pollMs = 2_000;

// The signed-in console: one place that owns the connection map and routes live frames to views.
export class ConsoleView {
  readonly root: HTMLElement;
  private readonly connections = new Map<string, Connection>();
  private selectedId: string | null = null;
  private readonly list: ConnectionList;
  private readonly detail: ConnectionDetail;
  private readonly stats: StatsView;
  private readonly toasts = createToasts();
  private readonly live: LiveEvents;
  private readonly liveBadge = h('span', { class: 'live live--connecting', role: 'status' }, 'connecting…');
  private readonly sentHere = new Set<string>();
  private readonly chatTitles = new Map<string, string>();
  private liveIsOpen = false;
  private timers: number[] = [];

  constructor(private readonly token: string, onSignOut: (problem?: string) => void) {
    let signedOut = false;
    const signOut = (problem?: string) => {
      if (signedOut) return;
      signedOut = true;
      this.stop();
      onSignOut(problem);
    };
    const api = new ApiClient(() => this.token, () => signOut('UNAUTHORIZED — the token was refused or has expired; sign in again'));
    const ctx: Ctx = {
      api,
      toast: (kind, text) => this.toasts.show(kind, text),
      confirm: confirmDialog,
      select: (id) => this.select(id),
      upsert: (c) => this.upsert(c),
      remove: (id) => this.removeConnection(id),
      trackSent: (id) => this.sentHere.add(id),
      // A message names its chat as it was sent or as the server resolved it: any of these.
      rememberChats: (chats) => chats.forEach((c) => {
        for (const ref of [c.id, c.platformChatId, c.username ? `@${c.username}` : '']) if (ref) this.chatTitles.set(ref, c.title);
      }),
      chatLabel: (ref) => this.chatTitles.get(ref) ?? ref,
    };
    this.stats = new StatsView(api);
    this.list = new ConnectionList((id) => this.select(id, true), () => void this.reload(ctx));
    this.detail = new ConnectionDetail(ctx);
    this.live = new LiveEvents({
      url: () => eventsUrl(this.token, location),
      onFrame: (f) => this.onFrame(f),
      onState: (s, ms) => this.setLive(s, ms),
      // Frames sent while the socket was down are gone: re-read the list on every (re)open.
      onOpen: () => void this.reload(ctx),
    });
    const who = tokenSubject(token);
    this.root = h('div', { class: 'app' },
      h('header', { class: 'topbar' },
        h('h1', null, 'Integration console'),
        h('div', { class: 'topbar-side' },
          this.liveBadge,
          who ? h('span', { class: 'who', title: 'JWT sub' }, who) : null,
          h('button', { type: 'button', class: 'btn btn--small', onclick: () => signOut() }, 'Sign out'))),
      h('main', { class: 'layout' },
        this.stats.root,
        h('div', { class: 'columns' },
          h('div', { class: 'sidebar' }, this.list.root, connectForms(ctx)),
          this.detail.root)),
      this.toasts.root);
    void this.reload(ctx).then(() => this.stats.load().catch((err) => this.toasts.show('error', `Stats: ${errorLine(err)}`)));
    this.live.start();
    this.timers.push(
      window.setInterval(() => this.tick(), tickMs),
      window.setInterval(() => void this.poll(ctx), pollMs),
    );
  }

  stop(): void {
    this.live.stop();
    this.timers.forEach((t) => clearInterval(t));
    this.timers = [];
    this.detail.show(null);
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
      this.toasts.show('error', `Connections: ${errorLine(err)}`);
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
      this.toasts.show('info', `New message${conn ? ` for ${connectionName(conn)}` : ''} from ${m.from} in ${m.chat}: ${m.text.slice(0, 140)}`);
    }
  }

  private onMessage(msg: Message, at: number): void {
    this.stats.record(msg, at);
    this.detail.message(msg);
    if (msg.status === 'failed') {
      this.toasts.show('error', `Message to ${this.chatTitles.get(msg.chat) ?? msg.chat} failed: ${msg.error ? describeError(msg.error) : 'no reason given'}`);
    } else if (msg.status === 'sent' && this.sentHere.delete(msg.id)) {
      this.toasts.show('success', `Message to ${this.chatTitles.get(msg.chat) ?? msg.chat} sent`);
    }
  }

  // Frames and HTTP answers can cross; the newer `updatedAt` wins.
  private upsert(c: Connection, fromEvent = false): void {
    const prev = this.connections.get(c.id);
    if (prev && prev.updatedAt > c.updatedAt) return;
    this.connections.set(c.id, c);
    // Login steps of the connection on screen are visible in its panel; toasts would only repeat them.
    const onScreenStep = c.id === this.selectedId && c.status !== 'active' && c.status !== 'error' && c.status !== 'stopped';
    if (fromEvent && prev && prev.status !== c.status && !onScreenStep) {
      const name = connectionName(c);
      if (c.status === 'error') this.toasts.show('error', `${name}: ${c.error ? describeError(c.error) : 'error'}`);
      else this.toasts.show(c.status === 'active' ? 'success' : 'info', `${name} is now ${c.status}`);
    }
    this.render();
  }

  private removeConnection(id: string): void {
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
    this.liveBadge.textContent = state === 'open' ? 'live' : state === 'connecting' ? 'connecting…' : `offline, retry in ${Math.ceil((retryInMs ?? 0) / 1000)} s`;
  }
}
