import { AppError } from '../../errors.ts';
import type { PlatformStatus, PlatformWebhooks, WebhookBatch } from '../adapter.ts';
import { metaWebhooks, type MetaAppSecrets } from '../meta/app-webhooks.ts';
import { GraphApiError } from '../meta/graph.ts';
import { whatsappError } from './codes.ts';

// Meta webhooks for WhatsApp (Cloud API "Webhooks" payload reference); the handshake and signature are
// every Meta app's (../meta/app-webhooks.ts). Body: {object: 'whatsapp_business_account', entry: [{id (WABA),
// changes: [{field: 'messages', value: {metadata: {phone_number_id}, statuses?, messages?}}]}]}.

const invalid = (message: string) => new AppError('VALIDATION_ERROR', `not a WhatsApp webhook payload: ${message}`);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A `failed` status's first error as the core's error (the Cloud API code kept in the message). */
function statusError(errors: unknown): AppError {
  const e = isObj(arr(errors)[0]) ? (arr(errors)[0] as Record<string, unknown>) : {};
  const code = typeof e.code === 'number' ? e.code : 0;
  const details = isObj(e.error_data) && typeof e.error_data.details === 'string' ? e.error_data.details : '';
  const message = [typeof e.title === 'string' ? e.title : 'Message failed', details].filter(Boolean).join(': ').slice(0, 300);
  // Reported after the send, so never "unknown outcome" and never a retry: the message failed.
  const err = whatsappError(new GraphApiError({ status: 400, code, message }), 'read');
  return err.category === 'rejected' ? err : new AppError(err.code === 'OUTSIDE_SERVICE_WINDOW' ? err.code : 'PLATFORM_REJECTED', err.message, { category: 'rejected' });
}

export function parseWhatsAppWebhook(raw: Buffer): WebhookBatch {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalid('the body is not JSON');
  }
  if (!isObj(body) || !Array.isArray(body.entry)) throw invalid('no entry list');
  if (body.object !== 'whatsapp_business_account') throw invalid(`object is ${JSON.stringify(body.object)?.slice(0, 40)}`);
  const out: WebhookBatch = { statuses: [], received: [] };
  for (const entry of body.entry) {
    for (const change of arr(isObj(entry) ? entry.changes : undefined)) {
      if (!isObj(change) || change.field !== 'messages' || !isObj(change.value)) continue;
      const v = change.value;
      const accountId = isObj(v.metadata) && typeof v.metadata.phone_number_id === 'string' ? v.metadata.phone_number_id : undefined;
      if (!accountId) throw invalid('a change without metadata.phone_number_id');
      for (const s of arr(v.statuses)) {
        if (!isObj(s) || typeof s.id !== 'string' || typeof s.status !== 'string') throw invalid('a status without id or status');
        if (!['sent', 'delivered', 'read', 'failed'].includes(s.status)) continue; // e.g. `deleted`, `warning`
        const status: PlatformStatus = {
          accountId, platformMessageId: s.id, status: s.status as PlatformStatus['status'],
          at: new Date(Number(s.timestamp ?? 0) * 1000 || Date.now()),
        };
        if (s.status === 'failed') status.error = statusError(s.errors);
        out.statuses.push(status);
      }
      for (const m of arr(v.messages)) {
        if (!isObj(m) || typeof m.id !== 'string' || typeof m.from !== 'string') throw invalid('a message without id or from');
        const text = isObj(m.text) && typeof m.text.body === 'string' ? m.text.body : '';
        out.received.push({
          accountId,
          // chat in the API's form (+E.164) so a reply can use it as is; from as WhatsApp names the sender (wa_id).
          message: { chat: `+${m.from}`, from: m.from, text, platformMessageId: m.id, date: new Date(Number(m.timestamp ?? 0) * 1000 || Date.now()).toISOString() },
        });
      }
    }
  }
  return out;
}

export const whatsappWebhooks = (secrets: MetaAppSecrets): PlatformWebhooks => metaWebhooks(secrets, parseWhatsAppWebhook);
