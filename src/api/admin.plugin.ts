import type { Plugin } from '@hapi/hapi';
import { Readable } from 'node:stream';
import type postgres from 'postgres';
import { callPeer, isForwarded } from '../cluster/forward.ts';
import { AppError } from '../errors.ts';
import { recordAudit } from '../store/audit.ts';
import type { ConnectionService } from '../connections/types.ts';
import type { ActorSummary } from '../supervisor/types.ts';
import { listLeases, liveNodes } from '../store/leases.ts';
import { actorDetail, actorList, actorParams, clusterView, callerIn, documented, noBody, notFoundOnBadParams, restartAnswer } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface AdminPluginOptions {
  sql: postgres.Sql;
  connections: ConnectionService;
  /** This node's name and the lease TTL (a node is live while its heartbeat is younger). */
  cluster?: { node: string; ttlMs: number };
  /** The forwarding key (src/cluster/forward.ts): GET /admin/actors adds the other live nodes' actors. */
  forwardKey?: Buffer;
}

// A peer that has not answered its actor list in 10 s is named in unreachableNodes instead.
const peerListTimeoutMs = 10_000;
interface PeerActors { items: ActorSummary[]; unreachable: string[] }

/**
 * /admin/actors: the live supervisor tree for operators. The admin scope is enforced by the auth
 * plugin for every /admin path (403 FORBIDDEN); these routes are not owner-scoped.
 */
export const adminPlugin: Plugin<AdminPluginOptions> = {
  name: 'integration-admin',
  dependencies: ['integration-auth'],
  register(server, { sql, connections, cluster, forwardKey }) {
    const tags = ['api', 'admin'];
    const forbidden = { 403: 'FORBIDDEN: needs the admin scope' };
    const listDoc = documented({ 200: { schema: actorList, description: 'The actor tree' } }, forbidden);

    server.route({
      method: 'GET', path: '/admin/actors',
      options: {
        tags, auth: authStrategy, description: 'Every actor of the supervisor, with totals per state',
        ...listDoc,
        // The schema documents the answer; validating it per call is off (the answer is a stream,
        // and at 10,000 actors Joi took ~140 ms of the loop per call). The admin tests check real
        // answers against actorList instead.
        response: { ...listDoc.response, sample: 0 },
      },
      handler: async (request, h) => {
        // Several daemons: every other live node's actors too, asked over the signed internal route
        // (the caller's token goes along; each peer answers with its own actors only).
        const peers = forwardKey && cluster && !isForwarded(request.headers)
          ? await peerActors(sql, cluster, forwardKey, typeof request.headers.authorization === 'string' ? request.headers.authorization : undefined)
          : { items: [], unreachable: [] };
        return h.response(actorListStream(connections, peers)).type('application/json; charset=utf-8');
      },
    });

    server.route({
      method: 'GET', path: '/admin/cluster',
      options: {
        tags, auth: authStrategy, description: 'The nodes of the cluster and who holds each shard',
        notes: 'Live nodes only (heartbeat younger than the lease TTL); every shard, `owner` null while free.',
        ...documented({ 200: { schema: clusterView, description: 'The cluster' } }, forbidden),
      },
      handler: async () => {
        const ttlMs = cluster?.ttlMs ?? 20_000;
        const [nodes, leases] = await Promise.all([liveNodes(sql, ttlMs), listLeases(sql)]);
        return {
          node: cluster?.node ?? 'local',
          nodes: nodes.map((n) => ({
            id: n.id, startedAt: n.started_at.toISOString(), lastSeenAt: n.last_seen_at.toISOString(),
            shards: leases.filter((l) => l.owner === n.id).map((l) => l.shard),
          })),
          shards: leases.map((l) => ({ shard: l.shard, owner: l.owner, epoch: l.epoch, expiresAt: l.expires_at?.toISOString() ?? null })),
        };
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'GET', path: '/admin/actors/{id}',
      options: {
        tags, auth: authStrategy, description: 'One actor: snapshot, context without secrets, last 50 transitions',
        validate: { params: actorParams, ...notFoundOnBadParams },
        ...documented({ 200: { schema: actorDetail, description: 'The actor' } }, { ...forbidden, 404: 'NOT_FOUND' }),
      },
      handler: async (request) => {
        // Not running here: actor() throws NotOwnerError when another node holds its shard, and the
        // call goes to that node (src/api/forward.plugin.ts); otherwise there is no such actor.
        const actor = await connections.actor(request.params.id);
        if (!actor) throw new AppError('NOT_FOUND', 'no such actor');
        return actor;
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'POST', path: '/admin/actors/{id}/restart',
      options: {
        tags, auth: authStrategy, description: 'Restart one actor',
        notes: 'Stops the actor and starts it again from its persisted state (202); audited in the owner\'s trail.',
        validate: { params: actorParams, payload: noBody, ...notFoundOnBadParams },
        ...documented({ 202: { schema: restartAnswer, description: 'Restarting' } }, { ...forbidden, 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND' },
          { rateLimit: { group: 'manage' } }),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const id = request.params.id;
        // Not running here: actor() and restart() throw NotOwnerError when another node holds its
        // shard, and the call goes to that node (src/api/forward.plugin.ts); otherwise there is no such actor.
        const owner = (await connections.actor(id))?.owner;
        if (!owner) await connections.restart(id);
        if (!owner || !(await connections.restart(id))) throw new AppError('NOT_FOUND', 'no such actor');
        // The owner sees in their own trail that an operator restarted their connection.
        await recordAudit(sql, { owner, actor: sub, action: 'actor.restarted', target: id, details: { by: 'admin' } });
        return h.response({ id, restarting: true }).code(202);
      },
    });
  },
};

// `{ items, totals }` written a page of 500 actors per turn of the event loop (~1.2 ms a page). Built
// in one turn, the summaries and their JSON (2.3 MB at 10,000 actors) held the loop 26–75 ms per
// call, delaying every connection's timers and sockets while an operator's console polled.
function actorListStream(connections: ConnectionService, peers: PeerActors): Readable {
  function* peerPages(): Iterable<ActorSummary[]> {
    for (let i = 0; i < peers.items.length; i += 500) yield peers.items.slice(i, i + 500);
  }
  async function* chunks() {
    const totals: Record<string, number> = {};
    let sep = '';
    yield '{"items":[';
    for (const page of [...connections.actorPages(500), ...peerPages()]) {
      if (page.length === 0) continue;
      for (const a of page) totals[a.state] = (totals[a.state] ?? 0) + 1;
      yield sep + page.map((a) => JSON.stringify(a)).join(',');
      sep = ',';
      await new Promise((r) => setImmediate(r));
    }
    const unreachable = peers.unreachable.length > 0 ? `,"unreachableNodes":${JSON.stringify(peers.unreachable)}` : '';
    yield `],"totals":${JSON.stringify(totals)}${unreachable}}`;
  }
  // Byte chunks: Hapi refuses object-mode streams.
  return Readable.from(chunks(), { objectMode: false });
}

async function peerActors(sql: postgres.Sql, cluster: { node: string; ttlMs: number }, key: Buffer, authorization: string | undefined): Promise<PeerActors> {
  const peers = (await liveNodes(sql, cluster.ttlMs)).filter((n) => n.id !== cluster.node);
  const out: PeerActors = { items: [], unreachable: [] };
  await Promise.all(peers.map(async (p) => {
    const answer = p.url
      ? await callPeer(key, { node: p.id, url: p.url }, { method: 'GET', url: '/admin/actors', headers: authorization ? { authorization } : {} }, peerListTimeoutMs).catch(() => undefined)
      : undefined;
    if (answer?.status !== 200) {
      out.unreachable.push(p.id);
      return;
    }
    out.items.push(...(JSON.parse(answer.body) as { items: ActorSummary[] }).items);
  }));
  out.unreachable.sort();
  return out;
}
