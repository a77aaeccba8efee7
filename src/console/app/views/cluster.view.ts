import { h, uid } from '../dom.ts';
import { agoElement, localTime } from '../format.ts';
import { shardRanges } from '../shard-ranges.ts';
import { lang, t } from '../i18n/index.ts';
import type { ClusterView as Cluster } from '../types.ts';
import { type Ctx, showProblem } from './context.ts';

// Read every 2 s while the page is open: leases are renewed every few seconds and a takeover after a
// crash lands within TTL + grace (~30 s), so an operator watching a failover sees each step.
const refreshMs = 2_000;

// Admin only (the page exists only for a token with the admin scope; the server answers 403 anyway):
// the live nodes with their heartbeats and shards, and every shard's lease (owner, fencing epoch, expiry).
export class ClusterView {
  readonly root: HTMLElement;
  private readonly nodesBody = h('tbody');
  private readonly leasesBody = h('tbody');
  private readonly summary = h('p', { class: 'hint', 'data-cluster-summary': '' });
  private readonly problem = h('p', { class: 'form-error', role: 'alert' });
  private timer: number | undefined;

  constructor(private readonly ctx: Ctx) {
    const titleId = uid('cluster');
    const nodesId = uid('cluster-nodes');
    const leasesId = uid('cluster-leases');
    const head = (keys: readonly Parameters<typeof t>[0][]) => h('thead', null, h('tr', null, ...keys.map((k) => h('th', { scope: 'col' }, t(k)))));
    this.root = h('section', { class: 'panel page', 'aria-labelledby': titleId, 'data-page': 'cluster' },
      h('h2', { id: titleId }, t('cluster.title')), this.summary, this.problem,
      h('h3', { id: nodesId, class: 'cluster-section' }, t('cluster.nodes')),
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': nodesId },
        h('table', { class: 'table', 'data-cluster-nodes': '' },
          head(['cluster.node', 'cluster.started', 'cluster.lastSeen', 'cluster.shardCount', 'cluster.shardList']),
          this.nodesBody)),
      h('h3', { id: leasesId, class: 'cluster-section' }, t('cluster.leases')),
      h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': leasesId },
        h('table', { class: 'table', 'data-cluster-leases': '' },
          head(['cluster.shard', 'cluster.owner', 'cluster.epoch', 'cluster.expires']),
          this.leasesBody)));
  }

  start(): void {
    this.stop();
    void this.load();
    this.timer = window.setInterval(() => void this.load(), refreshMs);
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
  }

  async load(): Promise<void> {
    let view: Cluster;
    try {
      view = await this.ctx.api.cluster();
      showProblem(this.problem, null);
    } catch (err) {
      showProblem(this.problem, err);
      return;
    }
    const live = new Set(view.nodes.map((n) => n.id));
    const held = view.shards.filter((s) => s.owner !== null).length;
    this.summary.textContent = t('cluster.summary', { node: view.node, nodes: view.nodes.length, held, total: view.shards.length, free: view.shards.length - held });
    this.nodesBody.replaceChildren(...(view.nodes.length
      ? view.nodes.map((n) => this.nodeRow(n, view.node))
      : [h('tr', null, h('td', { colspan: 5, class: 'empty' }, t('cluster.noNodes')))]));
    this.leasesBody.replaceChildren(...view.shards.map((s) => this.leaseRow(s, live)));
  }

  private nodeRow(n: Cluster['nodes'][number], self: string): HTMLTableRowElement {
    return h('tr', { 'data-node-id': n.id, 'data-shard-count': String(n.shards.length) },
      h('td', { class: 'mono' }, n.id, ...(n.id === self ? [' ', h('span', { class: 'badge badge--ok', 'data-this-node': '' }, t('cluster.thisNode'))] : [])),
      h('td', null, h('time', { datetime: n.startedAt, title: localTime(n.startedAt) }, localTime(n.startedAt))),
      h('td', null, agoElement(n.lastSeenAt)),
      h('td', null, String(n.shards.length)),
      h('td', { class: 'mono shard-list' }, shardRanges(n.shards)));
  }

  private leaseRow(s: Cluster['shards'][number], live: Set<string>): HTMLTableRowElement {
    return h('tr', { 'data-shard': String(s.shard), 'data-owner': s.owner ?? '', 'data-epoch': String(s.epoch) },
      h('td', null, String(s.shard)),
      h('td', { class: 'mono' }, ...(s.owner === null
        ? [h('span', { class: 'badge badge--muted' }, t('cluster.free'))]
        // An owner that is no longer a live node: its lease runs until it expires, then another node takes it.
        : [s.owner, ...(live.has(s.owner) ? [] : [' ', h('span', { class: 'badge badge--wait', 'data-owner-gone': '' }, t('cluster.ownerGone'))])])),
      h('td', null, String(s.epoch)),
      h('td', null, s.expiresAt ? h('time', { datetime: s.expiresAt, title: localTime(s.expiresAt) }, new Date(s.expiresAt).toLocaleTimeString(lang())) : ''));
  }
}
