import { randomUUID } from 'node:crypto';
import type { Plugin } from '@hapi/hapi';
import Joi from 'joi';
import type postgres from 'postgres';
import type { Keyring } from '../crypto/keyring.ts';
import { AppError } from '../errors.ts';
import type { Egress } from '../net/egress.ts';
import { recordAudit } from '../store/audit.ts';
import { eventTypes } from '../store/events.ts';
import { transaction } from '../store/transaction.ts';
import {
  deleteEndpoint, getDelivery, getEndpoint, insertEndpoint, listDeliveries, listEndpoints, retryDelivery, rotateEndpointSecret, updateEndpoint,
  type DeliveryRow, type EndpointPatch, type EndpointRow,
} from '../store/webhooks.ts';
import { enqueueWebhookEvent, wakeDispatchers } from '../webhooks/enqueue.ts';
import { rotationOverlapMs, sealSecret } from '../webhooks/secrets.ts';
import { newSecret } from '../webhooks/signing.ts';
import { callerIn, cursorString, documented, keysetCursor, noBody, notFoundOnBadParams, uuid } from './schemas.ts';
import { authStrategy } from './server.ts';

export interface WebhooksPluginOptions {
  sql: postgres.Sql;
  keyring: Keyring;
  /** The SSRF guard's scheme and literal-address check, applied to a URL when it is set. */
  egress: Egress;
}

/** Event types a webhook can subscribe to (API.md "Events that are not lost"), and '*'. */
const webhookEventTypes = [...eventTypes, 'webhook.test'];

const exampleId = '3c2a1d0e-9f8b-4a7c-8d6e-5f4a3b2c1d0e';
const iso = Joi.string().isoDate();

const urlField = Joi.string().trim().max(2048).uri({ scheme: ['https', 'http'] }).example('https://example.com/hooks/integration')
  .description('https only; http and private addresses only for hosts named in EGRESS_ALLOW_HOSTS');
const eventsField = Joi.array().items(Joi.string().valid('*', ...webhookEventTypes)).min(1).max(20).unique().example(['message.status'])
  .description('event types, or ["*"] for all');
const descriptionField = Joi.string().trim().max(256).allow('').example('orders backend');
const connectionIdsField = Joi.array().items(uuid).max(100).unique().description('only events of these connections (absent: all)');

const webhookSchema = Joi.object({
  id: Joi.string().required().example(exampleId),
  url: Joi.string().required(),
  events: Joi.array().items(Joi.string()).required(),
  description: Joi.string().allow(''),
  connectionIds: Joi.array().items(Joi.string()),
  enabled: Joi.boolean().required(),
  disabledReason: Joi.string(),
  createdAt: iso.required(),
  secret: Joi.string().pattern(/^whsec_/).description('only in the answer that creates or rotates it'),
}).label('Webhook');
const webhookList = Joi.object({ items: Joi.array().items(webhookSchema).required() }).label('WebhookList');

const attemptSchema = Joi.object({
  at: iso.required(), httpStatus: Joi.number().integer(), error: Joi.string(), durationMs: Joi.number().integer().required(),
}).label('WebhookAttempt');
const deliverySchema = Joi.object({
  id: Joi.string().required(), webhookId: Joi.string().required(), eventId: Joi.string().required(), eventType: Joi.string().required(),
  status: Joi.string().valid('pending', 'succeeded', 'failed').required(), attempts: Joi.array().items(attemptSchema).required(),
  nextAttemptAt: iso,
}).label('WebhookDelivery');
const deliveryPage = Joi.object({ items: Joi.array().items(deliverySchema).required(), nextCursor: Joi.string() }).label('WebhookDeliveryPage');
const accepted = Joi.object({ accepted: Joi.boolean().valid(true).required(), deliveryId: Joi.string() }).label('WebhookAccepted');

const idParams = Joi.object({ id: uuid.required().example(exampleId).description('webhook id') }).label('WebhookIdParams');
const deliveryParams = Joi.object({
  id: uuid.required().example(exampleId).description('webhook id'),
  deliveryId: uuid.required().example('5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a').description('delivery id'),
}).label('WebhookDeliveryParams');

const createSchema = Joi.object({
  url: urlField.required(), events: eventsField.required(), description: descriptionField, connectionIds: connectionIdsField,
}).label('WebhookCreate');
const patchSchema = Joi.object({
  url: urlField, events: eventsField, description: descriptionField.allow(null), connectionIds: connectionIdsField.allow(null), enabled: Joi.boolean(),
}).min(1).label('WebhookPatch');
const deliveriesQuery = Joi.object({
  status: Joi.string().valid('pending', 'succeeded', 'failed'),
  cursor: cursorString,
  limit: Joi.number().integer().min(1).max(100).default(50),
}).label('WebhookDeliveriesQuery');

const notFound = () => new AppError('NOT_FOUND', 'not found');

const internals = {
  view(r: EndpointRow, secret?: string) {
    return {
      id: r.id, url: r.url, events: r.events,
      ...(r.description ? { description: r.description } : {}),
      ...(r.connection_ids ? { connectionIds: r.connection_ids } : {}),
      enabled: r.enabled,
      ...(r.disabled_reason ? { disabledReason: r.disabled_reason } : {}),
      createdAt: r.created_at.toISOString(),
      ...(secret ? { secret } : {}),
    };
  },
  delivery(r: DeliveryRow) {
    return {
      id: r.id, webhookId: r.endpoint_id, eventId: r.event_id, eventType: r.event_type, status: r.status,
      attempts: r.attempts.map((a) => ({ at: a.at, durationMs: a.durationMs, ...(a.httpStatus !== undefined ? { httpStatus: a.httpStatus } : {}), ...(a.error ? { error: a.error } : {}) })),
      ...(r.status === 'pending' && r.next_attempt_at ? { nextAttemptAt: r.next_attempt_at.toISOString() } : {}),
    };
  },
};

/**
 * The caller's webhook endpoints and their delivery log (API.md "Webhooks to the caller's endpoints").
 * A secret is shown once, in the answer that creates or rotates it, and is stored only as a keyring
 * ciphertext. Every id is owner-scoped: another caller's webhook or delivery is a 404.
 */
export const webhooksPlugin: Plugin<WebhooksPluginOptions> = {
  name: 'integration-webhooks',
  dependencies: ['integration-auth'],
  register(server, { sql, keyring, egress }) {
    const tags = ['api', 'webhooks'];
    const manage = { rateLimit: { group: 'manage' as const } };
    const owned = async (owner: string, id: string) => {
      const r = await getEndpoint(sql, owner, id);
      if (!r) throw notFound();
      return r;
    };

    server.route<{ Payload: { url: string; events: string[]; description?: string; connectionIds?: string[] } }>({
      method: 'POST', path: '/v1/webhooks',
      options: {
        tags, auth: authStrategy, description: 'Add a webhook endpoint',
        notes: 'Answers the endpoint with its signing `secret` (whsec_…): the only time it is shown. At most 20 endpoints per caller '
          + '(403 QUOTA_EXCEEDED). The URL must be https and not name a loopback, private, link-local or metadata address '
          + '(422 EGRESS_FORBIDDEN); the resolved address is checked again at every delivery.',
        validate: { payload: createSchema },
        ...documented({ 201: { schema: webhookSchema, description: 'The endpoint, with its secret' } },
          { 400: 'VALIDATION_ERROR', 403: 'QUOTA_EXCEEDED (20 endpoints)', 422: 'EGRESS_FORBIDDEN' }, manage),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const p = request.payload;
        const url = egress.check(p.url).toString();
        const id = randomUUID();
        const secret = newSecret();
        const sealed = await sealSecret(keyring, id, secret);
        const row = await transaction(sql, async (tx) => {
          const r = await insertEndpoint(tx, {
            id, owner: sub, url, events: p.events, secret: sealed,
            ...(p.description ? { description: p.description } : {}), ...(p.connectionIds ? { connectionIds: p.connectionIds } : {}),
          });
          await recordAudit(tx, { owner: sub, actor: sub, action: 'webhook.created', target: id, details: { events: p.events } });
          return r;
        });
        return h.response(internals.view(row, secret)).code(201);
      },
    });

    server.route({
      method: 'GET', path: '/v1/webhooks',
      options: {
        tags, auth: authStrategy, description: 'List own webhook endpoints',
        ...documented({ 200: { schema: webhookList, description: 'Every endpoint of the caller (at most 20), oldest first' } }, {}),
      },
      handler: async (request) => ({ items: (await listEndpoints(sql, callerIn(request).sub)).map((r) => internals.view(r)) }),
    });

    server.route<{ Params: { id: string } }>({
      method: 'GET', path: '/v1/webhooks/{id}',
      options: {
        tags, auth: authStrategy, description: 'Read a webhook endpoint',
        validate: { ...notFoundOnBadParams, params: idParams },
        ...documented({ 200: { schema: webhookSchema, description: 'The endpoint (never its secret)' } }, { 404: 'NOT_FOUND' }),
      },
      handler: async (request) => internals.view(await owned(callerIn(request).sub, request.params.id)),
    });

    server.route<{ Params: { id: string }; Payload: EndpointPatch }>({
      method: 'PATCH', path: '/v1/webhooks/{id}',
      options: {
        tags, auth: authStrategy, description: 'Change a webhook endpoint',
        notes: 'Changes `url`, `events`, `description`, `connectionIds` or `enabled`. Enabling a disabled endpoint clears its '
          + '`disabledReason` and restarts the 5-day failure clock; its pending deliveries resume.',
        validate: { ...notFoundOnBadParams, params: idParams, payload: patchSchema },
        ...documented({ 200: { schema: webhookSchema, description: 'The endpoint as changed' } },
          { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND', 422: 'EGRESS_FORBIDDEN' }, manage),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const p = { ...request.payload };
        if (p.url !== undefined) p.url = egress.check(p.url).toString();
        const row = await transaction(sql, async (tx) => {
          const r = await updateEndpoint(tx, sub, request.params.id, p);
          if (!r) throw notFound();
          await recordAudit(tx, { owner: sub, actor: sub, action: 'webhook.updated', target: r.id, details: { fields: Object.keys(p).sort() } });
          return r;
        });
        if (p.enabled) wakeDispatchers();
        return internals.view(row);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'DELETE', path: '/v1/webhooks/{id}',
      options: {
        tags, auth: authStrategy, description: 'Delete a webhook endpoint',
        notes: 'Its pending deliveries are dropped with it.',
        validate: { ...notFoundOnBadParams, params: idParams },
        ...documented({ 204: { description: 'Deleted' } }, { 404: 'NOT_FOUND' }, manage),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        await transaction(sql, async (tx) => {
          if (!(await deleteEndpoint(tx, sub, request.params.id))) throw notFound();
          await recordAudit(tx, { owner: sub, actor: sub, action: 'webhook.deleted', target: request.params.id });
        });
        return h.response().code(204);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'POST', path: '/v1/webhooks/{id}/rotate-secret',
      options: {
        tags, auth: authStrategy, description: 'Rotate the signing secret',
        notes: 'Answers the endpoint with its new `secret` (shown once). For 24 h the old secret keeps signing beside the new one '
          + '(two signatures in `webhook-signature`), so the receiver can switch without missing a delivery.',
        validate: { ...notFoundOnBadParams, params: idParams, payload: noBody },
        ...documented({ 200: { schema: webhookSchema, description: 'The endpoint with its new secret' } }, { 404: 'NOT_FOUND' }, manage),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const current = await owned(sub, request.params.id);
        const secret = newSecret();
        const sealed = await sealSecret(keyring, current.id, secret);
        const row = await transaction(sql, async (tx) => {
          // The ciphertext of the current secret moves as it is: it stays bound to this endpoint.
          const r = await rotateEndpointSecret(tx, sub, current.id, sealed, current.secret, new Date(Date.now() + rotationOverlapMs));
          if (!r) throw notFound();
          await recordAudit(tx, { owner: sub, actor: sub, action: 'webhook.secret_rotated', target: r.id });
          return r;
        });
        return internals.view(row, secret);
      },
    });

    server.route<{ Params: { id: string } }>({
      method: 'POST', path: '/v1/webhooks/{id}/test',
      options: {
        tags, auth: authStrategy, description: 'Send a test event',
        notes: 'Queues a `webhook.test` event to this endpoint, whatever its event filter; follow it in the delivery log. '
          + 'A disabled endpoint answers 409 INVALID_STATE (enable it first).',
        validate: { ...notFoundOnBadParams, params: idParams, payload: noBody },
        ...documented({ 202: { schema: accepted, description: 'Queued' } }, { 404: 'NOT_FOUND', 409: 'INVALID_STATE (disabled)' }, manage),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const endpoint = await owned(sub, request.params.id);
        if (!endpoint.enabled) throw new AppError('INVALID_STATE', 'the webhook is disabled; enable it first (PATCH enabled: true)');
        const eventId = randomUUID();
        await enqueueWebhookEvent(sql, {
          id: eventId, customerId: sub, type: 'webhook.test', occurredAt: new Date(), data: { webhookId: endpoint.id },
        }, { onlyEndpoint: endpoint.id });
        const [d] = await sql<{ id: string }[]>`select id from webhook_deliveries where endpoint_id = ${endpoint.id} and event_id = ${eventId}`;
        return h.response({ accepted: true, ...(d ? { deliveryId: d.id } : {}) }).code(202);
      },
    });

    server.route<{ Params: { id: string }; Query: { status?: string; cursor?: string; limit: number } }>({
      method: 'GET', path: '/v1/webhooks/{id}/deliveries',
      options: {
        tags, auth: authStrategy, description: 'Delivery log of a webhook endpoint',
        notes: 'Newest first, with every attempt (time, HTTP status or error, duration) and, while pending, the next attempt\'s time.',
        validate: { ...notFoundOnBadParams, params: idParams, query: deliveriesQuery },
        ...documented({ 200: { schema: deliveryPage, description: 'One page of deliveries' } }, { 400: 'VALIDATION_ERROR', 404: 'NOT_FOUND' }),
      },
      handler: async (request) => {
        const { sub } = callerIn(request);
        const endpoint = await owned(sub, request.params.id);
        const { status, cursor, limit } = request.query;
        const rows = await listDeliveries(sql, sub, endpoint.id, {
          limit: limit + 1, ...(status ? { status } : {}), ...(cursor ? { before: keysetCursor.decode(cursor) } : {}),
        });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return { items: page.map(internals.delivery), ...(rows.length > limit && last ? { nextCursor: keysetCursor.encode({ createdAt: last.created_text, id: last.id }) } : {}) };
      },
    });

    server.route<{ Params: { id: string; deliveryId: string } }>({
      method: 'POST', path: '/v1/webhooks/{id}/deliveries/{deliveryId}/retry',
      options: {
        tags, auth: authStrategy, description: 'Retry a delivery now',
        notes: 'Makes the delivery pending and due now (a failed one too); the attempt joins its log. A disabled endpoint answers '
          + '409 INVALID_STATE.',
        validate: { ...notFoundOnBadParams, params: deliveryParams, payload: noBody },
        ...documented({ 202: { schema: accepted, description: 'Due now' } }, { 404: 'NOT_FOUND', 409: 'INVALID_STATE (disabled)' }, manage),
      },
      handler: async (request, h) => {
        const { sub } = callerIn(request);
        const endpoint = await owned(sub, request.params.id);
        if (!(await getDelivery(sql, sub, endpoint.id, request.params.deliveryId))) throw notFound();
        if (!endpoint.enabled) throw new AppError('INVALID_STATE', 'the webhook is disabled; enable it first (PATCH enabled: true)');
        await retryDelivery(sql, sub, endpoint.id, request.params.deliveryId);
        wakeDispatchers();
        return h.response({ accepted: true, deliveryId: request.params.deliveryId }).code(202);
      },
    });
  },
};
