import { fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import { botMachine } from '../../../machines/bot.machine.ts';
import type { ConnectOutput, StepInput } from '../../../machines/connection.ts';
import { AppError } from '../../errors.ts';
import type { Driver, DriverContext, OutboundMessage, ReceivedMessage } from '../adapter.ts';
import { isGraphApiError, type GraphClient } from '../meta/graph.ts';
import { whatsappError } from './codes.ts';

// The I/O of one business number: Graph calls with its system-user token, decrypted into this closure
// only (the Authorization header, never a URL or a log line). Nothing to watch: WhatsApp pushes
// statuses and incoming messages by webhook to the service, not to a connection.

export interface NumberInfo { id: string; display_phone_number?: string; verified_name?: string; quality_rating?: string }

interface Slots {
  connect(): Promise<ConnectOutput>;
  watch(sendBack: (e: { type: string }) => void): () => void;
  logOut(): Promise<void>;
}

// The failures the lifecycle notices itself, in WhatsApp's words.
export const whatsappLifecycleErrors = {
  dropped: { code: 'PLATFORM_UNAVAILABLE', message: 'the Graph API did not answer', category: 'retry' },
  revoked: { code: 'PLATFORM_AUTH_REVOKED', message: 'the access token was revoked or expired', category: 'reauthorize' },
} as const;

export function providedWhatsAppMachine(slotsOf: (connectionId: string) => Driver['slots']): AnyStateMachine {
  const of = (id: string) => slotsOf(id) as unknown as Slots;
  return botMachine(whatsappLifecycleErrors).provide({
    actors: {
      connect: fromPromise<ConnectOutput, StepInput>(({ input }) => of(input.connectionId).connect()),
      logOut: fromPromise<void, StepInput>(({ input }) => of(input.connectionId).logOut()),
      watch: fromCallback<any, StepInput>(({ sendBack, input }) => of(input.connectionId).watch(sendBack as (e: { type: string }) => void)),
    },
  });
}

/** `+1 555-010-0042`, `15550100042` → the digits WhatsApp takes as `to`, or undefined. */
export function recipientOf(chat: string): string | undefined {
  const digits = chat.trim().replace(/[\s()+\-.]/g, '');
  return /^\d{7,15}$/.test(digits) ? digits : undefined;
}

// Our media types → the Cloud API's message types.
const mediaType = { photo: 'image', video: 'video', audio: 'audio', voice: 'audio', document: 'document', animation: 'video' } as const;

/** The body of POST /{phone-number-id}/messages for one outbound message (Cloud API "Messages"). */
export function messageBody(msg: OutboundMessage, mediaLink?: string): Record<string, unknown> {
  const to = recipientOf(msg.chat);
  if (!to) throw new AppError('PLATFORM_REJECTED', 'a WhatsApp recipient is a phone number in international format (+ and country code) or a wa_id');
  const base = { messaging_product: 'whatsapp', recipient_type: 'individual', to, ...(msg.replyTo ? { context: { message_id: msg.replyTo } } : {}) };
  if (msg.template) {
    return { ...base, type: 'template', template: { name: msg.template.name, language: { code: msg.template.language }, ...(msg.template.components ? { components: msg.template.components } : {}) } };
  }
  if (msg.media) {
    if (!mediaLink) throw new AppError('PLATFORM_UNSUPPORTED', 'WhatsApp media needs PUBLIC_URL: the Cloud API fetches the file by link');
    const type = mediaType[msg.media.type];
    const caption = msg.text && type !== 'audio' ? { caption: msg.text } : {};
    const filename = type === 'document' ? { filename: msg.media.filename } : {};
    return { ...base, type, [type]: { link: mediaLink, ...caption, ...filename } };
  }
  return { ...base, type: 'text', text: { body: msg.text, preview_url: false } };
}

export function whatsappDriver(ctx: DriverContext, graph: GraphClient, mediaLink?: (msg: OutboundMessage) => Promise<string | undefined> | string | undefined): Driver {
  let creds: { token: string; numberId: string } | undefined;
  const load = async () => {
    if (creds) return creds;
    const s = await ctx.secrets.load();
    if (!s.access_token || !s.phone_number_id) throw new AppError('PLATFORM_AUTH_INVALID', 'this connection has no access token stored');
    creds = { token: s.access_token, numberId: s.phone_number_id };
    return creds;
  };

  const slots: Slots = {
    connect: () => ctx.guard(async () => {
      const c = await load();
      try {
        const n = await graph.call<NumberInfo>('GET', `/${c.numberId}`, c.token, undefined, { fields: 'id,display_phone_number,verified_name' });
        return { authorized: true, profile: { platformUserId: n.id, displayName: n.verified_name ?? 'WhatsApp Business' } };
      } catch (err) {
        throw isGraphApiError(err) ? whatsappError(err, 'connect') : err;
      }
    }),
    // Nothing to poll: statuses and incoming messages come by webhook (POST /v1/platform-webhooks/whatsapp).
    watch: () => () => undefined,
    // A system-user token belongs to the business, not to this service: forgetting it is the logout.
    logOut: async () => undefined,
  };

  return {
    slots: slots as unknown as Driver['slots'],
    async send(msg) {
      const c = await load();
      const body = messageBody(msg, msg.media ? await mediaLink?.(msg) : undefined);
      try {
        const r = await graph.call<{ messages?: Array<{ id: string }> }>('POST', `/${c.numberId}/messages`, c.token, body);
        const id = r.messages?.[0]?.id;
        if (!id) throw new AppError('OUTCOME_UNKNOWN', 'WhatsApp accepted the message without naming it');
        return { platformMessageId: id };
      } catch (err) {
        throw isGraphApiError(err) ? whatsappError(err, 'send') : err;
      }
    },
    received(update): ReceivedMessage | null {
      const u = update as { from?: string; id?: string; timestamp?: string; text?: { body?: string }; type?: string };
      if (!u || u.type !== 'text' || typeof u.text?.body !== 'string' || !u.from || !u.id) return null;
      return { chat: u.from, from: u.from, text: u.text.body, platformMessageId: u.id, date: new Date(Number(u.timestamp ?? 0) * 1000).toISOString() };
    },
    bytes: () => 2048,
    trim: () => undefined,
    logOut: slots.logOut,
    async dispose() { creds = undefined; },
  };
}
