import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import type { Logger } from 'winston';
import { AppError } from '../errors.ts';
import { bus } from '../events/bus.ts';
import type { PlatformStatus, PlatformWebhooks, ReceivedMessage } from '../platforms/adapter.ts';
import type { Platforms } from '../platforms/registry.ts';
import type { MessageRow } from '../store/messages.ts';
import { connectionsOfAccount } from '../store/connections.ts';
import { storeIncoming } from '../store/incoming.ts';
import { applyStatus, findByPlatformId, recordInbound } from '../store/platform-messages.ts';

// GET/POST /v1/platform-webhooks/{platform} (API.md "OAuth platforms … and WhatsApp"): the platform's
// verification handshake, then signed events. No bearer token: the signature over the raw body (the
// app secret) is the proof, checked before anything is parsed; unsigned or badly signed → 401 and
// nothing processed. Statuses update the messages they name (only messages sent through a connection
// to the account the event names); incoming messages go to `onReceived`.

export interface PlatformWebhooksOptions {
  sql: postgres.Sql;
  platforms: Platforms;
  logger: Logger;
  /**
   * Incoming messages, by the connections to the account they were sent to. The hook for the stored
   * `message.received` events; the default stores them for every connection to the named account.
   */
  onReceived?: (received: Array<{ platform: string; accountId: string; message: ReceivedMessage }>) => Promise<void>;
  /**
   * A connection whose authorization the platform withdrew (TikTok's authorization.removed): moves it
   * to error with `error` (PLATFORM_AUTH_REVOKED). Without it the event is acknowledged and logged only.
   */
  onRevoked?: (connection: { owner: string; id: string }, error: AppError) => Promise<void> | void;
  /** Tries (250 ms apart) to find a status's message whose send answer is not stored yet (default 5). */
  statusLookups?: number;
}

// Meta sends at most a few hundred KB per delivery (batched statuses); 1 MiB is the service's body limit.
const maxBytes = 1024 * 1024;
const params = Joi.object({ platform: Joi.string().pattern(/^[a-z]{2,20}$/).required() }).label('PlatformWebhookParams');

export const platformWebhooksPlugin: Plugin<PlatformWebhooksOptions> = {
  name: 'integration-platform-webhooks',
  register(server, o) {
    const log = o.logger.child({ component: 'platform-webhooks' });
    const tags = ['api', 'platform-webhooks'];
    const hooksOf = (platform: string): PlatformWebhooks => {
      const hooks = o.platforms.all.find((a) => a.name === platform)?.webhooks;
      if (!hooks) throw new AppError('NOT_FOUND', 'this platform sends no webhooks here');
      return hooks;
    };

    const apply = async (platform: string, s: PlatformStatus): Promise<MessageRow | undefined | 'unknown'> => {
      // The status may beat the send's own answer (the platform writes it ~ms after answering): look again.
      for (let i = 0; i < (o.statusLookups ?? 5); i++) {
        const m = await findByPlatformId(o.sql, platform, s.accountId, s.platformMessageId);
        if (m) {
          return applyStatus(o.sql, m.id, {
            platform, accountId: s.accountId, platformMessageId: s.platformMessageId, status: s.status, at: s.at,
            ...(s.error ? { error: { code: s.error.code, message: s.error.message } } : {}),
          });
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      return 'unknown';
    };

    server.route<{ Params: { platform: string }; Query: Record<string, string | undefined> }>({
      method: 'GET', path: '/v1/platform-webhooks/{platform}',
      options: {
        tags, auth: false, description: 'Webhook verification handshake (Meta)',
        notes: 'Meta calls it when the callback URL is registered: `hub.mode=subscribe`, `hub.verify_token` (META_VERIFY_TOKEN) and '
          + '`hub.challenge`, echoed as text/plain. A wrong or missing token answers 403.',
        validate: { params, query: Joi.object().pattern(/^hub\.(mode|verify_token|challenge)$/, Joi.string().max(200)).unknown(true) },
      },
      handler(request, h) {
        const challenge = hooksOf(request.params.platform).challenge(request.query);
        if (challenge === undefined) throw new AppError('FORBIDDEN', 'verify token does not match');
        return h.response(challenge).type('text/plain');
      },
    });

    server.route<{ Params: { platform: string } }>({
      method: 'POST', path: '/v1/platform-webhooks/{platform}',
      options: {
        tags, auth: false, description: 'Signed platform events (Meta X-Hub-Signature-256, TikTok TikTok-Signature)',
        notes: 'The raw body is verified with the app secret (META_APP_SECRET) before anything is read: unsigned or badly signed → 401, '
          + 'nothing processed. Delivery statuses update the messages they name (`platformStatus`; `failed` fails the message); '
          + 'a body that is not the platform\'s shape → 400. '
          + 'TikTok: `TikTok-Signature: t=…,s=…` (HMAC-SHA256 of "t.body" with TIKTOK_CLIENT_SECRET, at most 5 minutes old); '
          + '`authorization.removed` moves every connection to that creator to error PLATFORM_AUTH_REVOKED.',
        validate: { params },
        payload: { parse: false, output: 'data', maxBytes, allow: ['application/json'] },
      },
      async handler(request, h) {
        const { platform } = request.params;
        const hooks = hooksOf(platform);
        const raw = Buffer.isBuffer(request.payload) ? request.payload : Buffer.alloc(0);
        if (!hooks.authentic(raw, request.headers as Record<string, string | string[] | undefined>)) throw new AppError('UNAUTHORIZED', 'webhook signature missing or invalid');
        const batch = hooks.parse(raw);
        let unknown = 0;
        for (const s of batch.statuses) {
          const r = await apply(platform, s);
          if (r === 'unknown') unknown++; // a change is stored with its event (applyStatus)
        }
        if (batch.received.length > 0) {
          // The customer wrote: the service window of every connection to that account opens.
          for (const r of batch.received) await recordInbound(o.sql, platform, r.accountId, r.message.from, new Date(r.message.date));
          const received = batch.received.map((x) => ({ platform, ...x }));
          if (o.onReceived) await o.onReceived(received);
          else await storeReceived(o.sql, received);
        }
        for (const r of batch.revoked ?? []) {
          const error = new AppError('PLATFORM_AUTH_REVOKED', `the authorization was removed at ${platform} (reason ${r.reason}): authorize again`, { scope: 'connection' });
          const conns = await connectionsOfAccount(o.sql, platform, r.accountId);
          for (const c of conns) await o.onRevoked?.(c, error);
          log.info('authorization removed at the platform', { platform, connections: conns.length, reason: r.reason });
        }
        if (unknown > 0) log.debug('statuses for messages this service did not send', { platform, count: unknown });
        return h.response({ received: true }).code(200);
      },
    });
  },
};

/**
 * Default for incoming messages: stored with their message.received event for every connection to the
 * account the webhook names (src/store/incoming.ts; a repeated delivery is stored once), then announced
 * on the live bus like the messages Telegram's drivers receive.
 */
async function storeReceived(sql: postgres.Sql, received: Array<{ platform: string; accountId: string; message: ReceivedMessage }>): Promise<void> {
  for (const r of received) {
    for (const c of await connectionsOfAccount(sql, r.platform, r.accountId)) {
      const stored = await storeIncoming(sql, { owner: c.owner, connectionId: c.id, message: r.message });
      if (stored.stored) bus.publish({ type: 'message.received', owner: c.owner, at: stored.event!.occurredAt, data: stored.event!.data });
    }
  }
}
