import type { Plugin, Request, ResponseToolkit } from '@hapi/hapi';
import type winston from 'winston';
import {
  NotOwnerError, callPeer, forwardedHeader, forwardedMarker, isForwarded, passOn, signatureHeader, timestampHeader, verify, type ForwardedAnswer, type ForwardedRequest,
} from '../cluster/forward.ts';
import { AppError } from '../errors.ts';

// Several daemons (src/cluster/forward.ts): a call that needs a connection's live actor and reached
// a node that does not hold its shard goes to the owner over POST /internal/forward, signed; the
// owner re-runs it locally and the caller gets its answer as if this node had given it. While the
// shard changes hands (no live owner with an address) or the owner does not answer, the caller gets
// 503 DEPENDENCY_UNAVAILABLE with Retry-After 1 as before.

export interface ForwardPluginOptions {
  /** the shared forwarding key (forwardingKey) */
  key: Buffer;
  /** this node's id */
  node: string;
  /** the live owner of a shard and where it listens */
  owner(shard: number): Promise<{ node: string; url: string | null } | undefined>;
  logger: winston.Logger;
  /** how long the owner may take: a login step waits up to the platform's 15 s call timeout */
  timeoutMs?: number;
}

// What goes back: everything but what describes the hop itself.
const hopOnly = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date']);
// A forward body holds the caller's request (at most the 1 MiB API limit) plus its envelope.
const maxForwardBytes = 1024 * 1024 + 64 * 1024;

export const forwardPlugin: Plugin<ForwardPluginOptions> = {
  name: 'integration-forward',
  dependencies: ['integration-errors'],
  register(server, o) {
    const log = o.logger.child({ component: 'forward', node: o.node });
    const timeoutMs = o.timeoutMs ?? 25_000;

    server.route({
      method: 'POST', path: '/internal/forward',
      options: {
        // Counted where the call came in (per address and per caller); a peer's forwards all come
        // from one address, and the signature is the proof.
        auth: false, tags: ['internal'], plugins: { rateLimit: false },
        description: 'A peer node passes on a call that needs the connection\'s owner (signed; not for clients)',
        payload: { parse: false, output: 'data', maxBytes: maxForwardBytes },
      },
      handler: async (request, h) => {
        const raw = Buffer.isBuffer(request.payload) ? request.payload.toString('utf8') : '';
        const header = (name: string) => { const v: unknown = request.headers[name]; return typeof v === 'string' ? v : undefined; };
        const ts = header(timestampHeader);
        const sig = header(signatureHeader);
        if (!verify(o.key, ts, sig, raw)) {
          log.warn('a forwarded call with a bad or stale signature was refused', { remote: request.info.remoteAddress });
          throw new AppError('UNAUTHORIZED', 'not a signed call from a node of this cluster');
        }
        let fwd: ForwardedRequest;
        try {
          fwd = JSON.parse(raw) as ForwardedRequest;
        } catch {
          throw new AppError('VALIDATION_ERROR', 'the forwarded call is not JSON');
        }
        if (fwd.node !== o.node || typeof fwd.url !== 'string' || !fwd.url.startsWith('/') || fwd.url.startsWith('/internal/')
          || typeof fwd.method !== 'string' || typeof fwd.headers !== 'object' || fwd.headers === null) {
          throw new AppError('VALIDATION_ERROR', 'the forwarded call is not meant for this node or is malformed');
        }
        const headers: Record<string, string> = {};
        for (const k of passOn) if (typeof fwd.headers[k] === 'string') headers[k] = fwd.headers[k];
        headers[forwardedHeader] = forwardedMarker;
        const res = await server.inject({
          method: fwd.method, url: fwd.url, headers, ...(fwd.payload !== undefined && fwd.payload !== null ? { payload: fwd.payload as object } : {}),
        });
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !hopOnly.has(k.toLowerCase())) out[k.toLowerCase()] = String(v);
        const answer: ForwardedAnswer = { status: res.statusCode, headers: out, body: res.payload };
        return h.response(answer).code(200);
      },
    });

    server.ext('onPreResponse', async (request: Request, h: ResponseToolkit) => {
      const res = request.response;
      if (!(res instanceof NotOwnerError) || isForwarded(request.headers)) return h.continue;
      const answer = await forward(request, res.shard).catch((err: Error) => {
        log.warn('the owning node did not answer a forwarded call; answering 503', { shard: res.shard, error: err.message });
        return undefined;
      });
      if (!answer) return h.continue;
      const out = h.response(answer.body).code(answer.status);
      for (const [k, v] of Object.entries(answer.headers)) out.header(k, v);
      return out;
    }, { before: ['integration-errors'] });

    async function forward(request: Request, shard: number): Promise<ForwardedAnswer | undefined> {
      const owner = await o.owner(shard);
      // No live owner (the shard changes hands) or one that gave no address: the caller retries.
      if (!owner?.url || owner.node === o.node) return undefined;
      const headers: Record<string, string> = {};
      for (const k of passOn) {
        const v = request.headers[k];
        if (typeof v === 'string') headers[k] = v;
      }
      const answer = await callPeer(o.key, { node: owner.node, url: owner.url }, {
        method: request.method.toUpperCase(), url: `${request.url.pathname}${request.url.search}`, headers,
        ...(request.payload !== undefined && request.payload !== null ? { payload: request.payload } : {}),
      }, timeoutMs);
      if (!answer) log.warn('the owning node refused a forwarded call; answering 503', { shard, owner: owner.node });
      return answer;
    }
  },
};
