import Joi from 'joi';
import { MACHINE_VERSION as BOT_VERSION } from '../../../machines/bot.machine.ts';
import { AppError } from '../../errors.ts';
import { maskPhone } from '../../observability/redact.ts';
import type { ConnectionKind, NewConnectionPlan, OutboundMessage, PlatformAdapter, SendCapabilities } from '../adapter.ts';
import { GraphClient, isGraphApiError } from '../meta/graph.ts';
import { whatsappError } from './codes.ts';
import type { MetaAppSecrets } from '../meta/app-webhooks.ts';
import { whatsappWebhooks } from './webhooks.ts';
import { providedWhatsAppMachine, recipientOf, whatsappDriver, type NumberInfo } from './driver.ts';

// WhatsApp Cloud API as an adapter of the platform interface: a `business-number` connection is one
// phone number of a WhatsApp Business Account, used with a system-user access token. Connecting checks
// the token against the number (GET /{phone-number-id}); sending is POST /{phone-number-id}/messages;
// delivery statuses and incoming messages arrive by signed webhook (src/platforms/whatsapp/webhooks.ts).

export interface WhatsAppOptions {
  /** Graph host, e.g. https://graph.facebook.com (WHATSAPP_GRAPH_URL). */
  graphUrl: string;
  graphVersion?: string;
  timeoutMs?: number;
  pacing?: Partial<WhatsAppPacing>;
  /** META_APP_SECRET (webhook signatures) and META_VERIFY_TOKEN (the GET handshake). */
  app?: MetaAppSecrets;
  /** The signed PUBLIC_URL/v1/media link of a message's stored file: WhatsApp downloads media by link. */
  mediaLink?: (msg: OutboundMessage) => Promise<string | undefined> | string | undefined;
}

export interface WhatsAppPacing {
  /** Cloud API "Throughput": 80 messages per second per business number (the default tier). */
  numberPerSecond: number;
  /**
   * Cloud API pair rate limit: about 1 message every 6 s to one customer, with bursts of up to 45
   * borrowed ahead (131056 past it). 45 per 270 s never exceeds that, whatever the timing.
   */
  pairBurst: number;
  pairIntervalS: number;
}

export const defaultWhatsAppPacing: WhatsAppPacing = { numberPerSecond: 80, pairBurst: 45, pairIntervalS: 6 };

const MB = 1024 * 1024;

/** The media WhatsApp takes (Cloud API "Supported media types"): images 5 MB, video/audio 16 MB, documents 100 MB, captions 1024 characters. */
export const whatsappMedia: NonNullable<SendCapabilities['media']> = {
  types: { photo: { maxBytes: 5 * MB }, video: { maxBytes: 16 * MB }, audio: { maxBytes: 16 * MB }, voice: { maxBytes: 16 * MB }, document: { maxBytes: 100 * MB } },
  captionMaxLength: 1024,
};

const createSchema = Joi.object({
  platform: Joi.string().valid('whatsapp').required(),
  kind: Joi.string().valid('business-number').default('business-number'),
  phoneNumberId: Joi.string().pattern(/^\d{1,20}$/).required().example('106540352242922').description('the number\'s id in WhatsApp Manager (not the phone number)'),
  accessToken: Joi.string().min(10).max(1024).pattern(/^[\w.|-]+$/).required().description('a system-user access token with whatsapp_business_messaging'),
  wabaId: Joi.string().pattern(/^\d{1,20}$/).example('102290129340398').description('the WhatsApp Business Account; when given, the number must belong to it'),
}).label('CreateWhatsAppConnection').example({ platform: 'whatsapp', kind: 'business-number', phoneNumberId: '106540352242922', accessToken: 'EAAG…' });

interface CreateBody { phoneNumberId: string; accessToken: string; wabaId?: string }

/** Number info with the token, or PLATFORM_AUTH_INVALID when Graph refuses the token or the number. */
export async function checkNumber(graph: GraphClient, token: string, phoneNumberId: string): Promise<NumberInfo> {
  try {
    return await graph.call<NumberInfo>('GET', `/${phoneNumberId}`, token, undefined, { fields: 'id,display_phone_number,verified_name,quality_rating' });
  } catch (err) {
    if (!isGraphApiError(err)) throw err;
    const f = err.failure;
    // 190: the token; 100/33: a number this token may not see (another business's, or none).
    if (f.code === 190 || f.code === 10 || (f.code >= 200 && f.code <= 299) || (f.code === 100 && f.subcode === 33)) {
      throw new AppError('PLATFORM_AUTH_INVALID', 'WhatsApp refused this access token for this phone number id', { cause: err, details: [{ path: 'accessToken', message: `refused by the Graph API (code ${f.code})` }] });
    }
    throw whatsappError(err, 'connect');
  }
}

export function whatsappAdapter(opts: WhatsAppOptions): PlatformAdapter {
  const graph = new GraphClient({ baseUrl: opts.graphUrl, ...(opts.graphVersion ? { version: opts.graphVersion } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  const p = { ...defaultWhatsAppPacing, ...opts.pacing };

  const send: SendCapabilities = {
    // text.body: at most 4096 characters (Cloud API "Text messages"); WhatsApp renders its own markup
    // (*bold*, _italic_), which needs no parse mode.
    text: { maxLength: 4096, parseModes: [] },
    // The Cloud API takes no idempotency key: a send whose answer was lost may have gone out.
    resendSafe: false,
    templates: true,
    // Cloud API "Customer service windows": 24 h after the customer's last message (131047 past it).
    ...(opts.app?.appSecret ? { serviceWindow: { hours: 24, peer: recipientOf } } : {}),
    pacing: () => ({
      chat: [{ n: p.pairBurst, ms: p.pairBurst * p.pairIntervalS * 1000 }],
      connection: [{ n: p.numberPerSecond, ms: 1000 }],
    }),
    // WhatsApp fetches a file by link (the signed PUBLIC_URL/v1/media route); without links, a media
    // message is refused at accept (PLATFORM_UNSUPPORTED).
    ...(opts.mediaLink ? { media: whatsappMedia } : {}),
  };

  const number: ConnectionKind = {
    kind: 'business-number',
    machineVersion: BOT_VERSION,
    machine: providedWhatsAppMachine,
    input: (row, backoff) => ({ connectionId: row.id, backoff }),
    driver: (ctx) => whatsappDriver(ctx, graph, opts.mediaLink),
    loginSteps: [],
    send,
  };

  return {
    name: 'whatsapp',
    kinds: [number],
    // Shared codes (src/errors.ts): WhatsApp registers none of its own.
    errorCodes: {},
    documentedErrors: { create: { 422: ['PLATFORM_AUTH_INVALID'], 503: ['PLATFORM_UNAVAILABLE'] } },
    createSchema,
    webhooks: whatsappWebhooks(opts.app ?? {}),
    async prepare(raw): Promise<NewConnectionPlan> {
      const body = raw as unknown as CreateBody;
      const info = await checkNumber(graph, body.accessToken, body.phoneNumberId);
      if (body.wabaId) {
        let listed: { data?: Array<{ id: string }> };
        try {
          listed = await graph.call('GET', `/${body.wabaId}/phone_numbers`, body.accessToken, undefined, { fields: 'id' });
        } catch (err) {
          if (isGraphApiError(err) && err.failure.code !== 0 && err.failure.status < 500) {
            throw new AppError('PLATFORM_AUTH_INVALID', 'this access token cannot read that WhatsApp Business Account', { cause: err, details: [{ path: 'wabaId', message: 'not readable with this token' }] });
          }
          throw isGraphApiError(err) ? whatsappError(err, 'connect') : err;
        }
        if (!listed.data?.some((n) => n.id === body.phoneNumberId)) {
          throw new AppError('PLATFORM_AUTH_INVALID', 'that phone number id is not a number of this WhatsApp Business Account', { details: [{ path: 'phoneNumberId', message: 'not in the WABA' }] });
        }
      }
      const digits = (info.display_phone_number ?? '').replace(/\D/g, '');
      const phoneMasked = digits ? maskPhone(`+${digits}`) : undefined;
      return {
        kind: 'business-number',
        secrets: { access_token: body.accessToken, phone_number_id: body.phoneNumberId },
        ...(phoneMasked ? { phoneMasked } : {}),
        profile: { platformUserId: info.id, displayName: info.verified_name ?? 'WhatsApp Business' },
        accountId: info.id,
        audit: { kind: 'business-number', phoneNumberId: info.id, ...(body.wabaId ? { wabaId: body.wabaId } : {}), ...(phoneMasked ? { phone: phoneMasked } : {}) },
      };
    },
    classify(err) {
      return isGraphApiError(err) ? whatsappError(err, 'read') : undefined;
    },
  };
}
