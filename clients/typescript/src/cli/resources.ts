import type { Command } from 'commander';
import type { ClusterView, Connection } from '../client.ts';
import { table } from './output.ts';
import type { Context } from './context.ts';

const connectionRow = (c: Connection) => ({
  id: c.id, platform: c.platform, kind: c.kind, status: c.status, name: c.username ? `${c.displayName ?? ''} @${c.username}`.trim() : c.displayName,
  error: c.error?.code, since: c.statusSince,
});

export function connectionCommands(program: Command, ctx: () => Context): void {
  const cmd = program.command('connections').alias('conn').description('connections (accounts and bots)');
  cmd.command('ls').description('list your connections')
    .option('--status <status>').option('--platform <platform>').option('--kind <kind>')
    .action(async (o: { status?: string; platform?: string; kind?: string }) => {
      const c = ctx();
      const items = await c.client().connections.all(o);
      c.out.result({ items }, () => table(items.map(connectionRow), ['id', 'platform', 'kind', 'status', 'name', 'error']));
    });
  cmd.command('get').argument('<id>').description('one connection')
    .action(async (id: string) => {
      const c = ctx();
      const conn = await c.client().connections.get(id);
      c.out.result(conn, () => JSON.stringify(conn, null, 2));
    });
  cmd.command('rm').argument('<id>').description('log out at the platform and delete the connection with its data')
    .action(async (id: string) => {
      const c = ctx();
      await c.client().connections.remove(id);
      c.out.result({ id, deleted: true }, () => `deleted ${id}`);
    });
  cmd.command('reconnect').argument('<id>').description('leave `error` and reset the breaker')
    .action(async (id: string) => {
      const c = ctx();
      const conn = await c.client().connections.reconnect(id);
      c.out.result(conn, () => `${conn.id} ${conn.status}`);
    });
}

export function chatCommands(program: Command, ctx: () => Context): void {
  const cmd = program.command('chats').description('channels and groups of a connection');
  cmd.command('add').argument('<connection>').argument('<chat>', '@name, -100… id or an invite link')
    .option('--require-admin', 'refuse (TG_NOT_ADMIN) unless the connection is an admin there')
    .description('check membership and rights, then remember the chat')
    .action(async (connection: string, chat: string, o: { requireAdmin?: boolean }) => {
      const c = ctx();
      const added = await c.client().chats.add(connection, { chat, ...(o.requireAdmin && { requireAdmin: true }) });
      c.out.result(added, () => `${added.id} ${added.type} "${added.title}" admin=${added.isAdmin} canSend=${added.canSend}`);
    });
  cmd.command('ls').argument('<connection>').description('the chats of a connection')
    .action(async (connection: string) => {
      const c = ctx();
      const { items } = await c.client().chats.list(connection);
      c.out.result({ items }, () => table(items.map((x) => ({ ...x, username: x.username ? `@${x.username}` : '' })), ['id', 'type', 'title', 'username', 'isAdmin', 'canSend']));
    });
}

// The webhook routes come with issue 16: these commands follow API.md and answer 404 until then.
export function webhookCommands(program: Command, ctx: () => Context): void {
  const cmd = program.command('webhooks').description('your endpoints that receive signed events (Standard Webhooks)');
  const show = (c: Context, w: unknown) => c.out.result(w, () => JSON.stringify(w, null, 2));
  cmd.command('ls').description('list endpoints').action(async () => {
    const c = ctx();
    const { items } = await c.client().webhooks.list();
    c.out.result({ items }, () => table(items.map((w) => ({ ...w, events: w.events.join(',') })), ['id', 'url', 'events', 'enabled', 'disabledReason']));
  });
  cmd.command('create').argument('<url>').requiredOption('--events <types>', 'comma-separated event types, or *')
    .option('--description <text>').description('add an endpoint; prints its secret once')
    .action(async (url: string, o: { events: string; description?: string }) => {
      const c = ctx();
      show(c, await c.client().webhooks.create({ url, events: o.events.split(',').map((s) => s.trim()).filter(Boolean), ...(o.description && { description: o.description }) }));
    });
  cmd.command('get').argument('<id>').action(async (id: string) => { const c = ctx(); show(c, await c.client().webhooks.get(id)); });
  cmd.command('update').argument('<id>').option('--url <url>').option('--events <types>').option('--enable').option('--disable')
    .action(async (id: string, o: { url?: string; events?: string; enable?: boolean; disable?: boolean }) => {
      const c = ctx();
      show(c, await c.client().webhooks.update(id, {
        ...(o.url && { url: o.url }), ...(o.events && { events: o.events.split(',') }),
        ...(o.enable && { enabled: true }), ...(o.disable && { enabled: false }),
      }));
    });
  cmd.command('rm').argument('<id>').action(async (id: string) => {
    const c = ctx();
    await c.client().webhooks.remove(id);
    c.out.result({ id, deleted: true }, () => `deleted ${id}`);
  });
  cmd.command('rotate-secret').argument('<id>').description('new secret; the old one keeps signing for 24 h')
    .action(async (id: string) => { const c = ctx(); show(c, await c.client().webhooks.rotateSecret(id)); });
  cmd.command('test').argument('<id>').description('send a webhook.test event')
    .action(async (id: string) => { const c = ctx(); show(c, (await c.client().webhooks.test(id)) ?? { id, queued: true }); });
  cmd.command('deliveries').argument('<id>').option('--status <status>')
    .action(async (id: string, o: { status?: string }) => {
      const c = ctx();
      const { items } = await c.client().webhooks.deliveries(id, o);
      c.out.result({ items }, () => table(items.map((d) => ({ ...d, attempts: d.attempts.length })), ['id', 'eventType', 'status', 'attempts', 'nextAttemptAt']));
    });
  cmd.command('retry').argument('<id>').argument('<delivery>')
    .action(async (id: string, delivery: string) => { const c = ctx(); show(c, (await c.client().webhooks.retry(id, delivery)) ?? { id: delivery, queued: true }); });
}

export function adminCommands(program: Command, ctx: () => Context): void {
  const cmd = program.command('admin').description('operators (token with scope admin)');
  cmd.command('actors').argument('[id]', 'one actor in detail').description('the live supervisor tree')
    .action(async (id?: string) => {
      const c = ctx();
      if (id) {
        const actor = await c.client().admin.actor(id);
        return c.out.result(actor, () => JSON.stringify(actor, null, 2));
      }
      const list = await c.client().admin.actors();
      c.out.result(list, () => {
        const rows = list.items.map((a) => ({ ...a, breaker: a.breaker.state, memory: `${Math.round(a.memory.bytes / 1024)} KiB`, lastError: a.lastError?.code }));
        const totals = Object.entries((list as { totals?: Record<string, number> }).totals ?? {}).map(([k, v]) => `${k} ${v}`).join(' · ');
        return `${table(rows, ['id', 'kind', 'owner', 'state', 'restarts', 'breaker', 'memory', 'lastError', 'shard'])}${totals ? `\n\n${totals}` : ''}`;
      });
    });
  cmd.command('restart').argument('<id>').description('restart one actor')
    .action(async (id: string) => { const c = ctx(); const r = await c.client().admin.restart(id); c.out.result(r, () => `restarted ${id}`); });
  cmd.command('cluster').description('the live nodes, which shards each holds, and every shard lease (owner, epoch, expiry)')
    .option('--free', 'list only the shards no node holds')
    .action(async (o: { free?: boolean }) => {
      const c = ctx();
      const view = await c.client().admin.cluster();
      const data = o.free ? { ...view, shards: view.shards.filter((s) => s.owner === null) } : view;
      c.out.result(data, () => clusterText(view, Boolean(o.free)));
    });
}

/** `[0, 1, 2, 3, 7, 9, 10]` → `0-3,7,9-10`: a node's 20-odd shards on one line. */
export function shardRanges(shards: readonly number[]): string {
  const sorted = [...shards].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i]!;
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i]! + 1) i++;
    parts.push(start === sorted[i] ? String(start) : `${start}-${sorted[i]}`);
  }
  return parts.join(',');
}

function clusterText(view: ClusterView, freeOnly: boolean, now = Date.now()): string {
  const live = new Set(view.nodes.map((n) => n.id));
  const free = view.shards.filter((s) => s.owner === null);
  // Seconds by this machine's clock; the leases are judged by the database's, so a skew shows here.
  const inSeconds = (iso: string | null) => (iso ? `${Math.round((Date.parse(iso) - now) / 1000)} s` : '');
  const leases = (freeOnly ? free : view.shards).map((s) => ({
    ...s, owner: s.owner === null ? '(free)' : live.has(s.owner) ? s.owner : `${s.owner} (not live)`, expiresIn: inSeconds(s.expiresAt),
  }));
  return [
    `answered by ${view.node} · ${view.nodes.length} live node${view.nodes.length === 1 ? '' : 's'} · ${view.shards.length - free.length} of ${view.shards.length} shards held, ${free.length} free`,
    table(view.nodes.map((n) => ({ ...n, id: n.id === view.node ? `${n.id} *` : n.id, held: n.shards.length, shards: shardRanges(n.shards) })), ['id', 'startedAt', 'lastSeenAt', 'held', 'shards']),
    table(leases, ['shard', 'owner', 'epoch', 'expiresAt', 'expiresIn']),
  ].join('\n\n');
}
