import { setTimeout as sleep } from 'node:timers/promises';
import { PlatformControlError, type ControlAnswer, type PlatformEmulator, type PlatformEmulatorOptions } from '../platforms/types.ts';
import { PlatformFaults } from '../meta/faults.ts';
import { GraphError, accessTokenOf, invalidParam, objectParam, selectFields, str, truthy, unknownObject } from '../meta/graph.ts';
import { fetchMedia } from '../meta/media.ts';
import { MetaHttpServer, type RequestContext, type Route } from '../meta/server.ts';
import { TokenStore, revokeReasons, type RevokeReason } from '../meta/tokens.ts';
import { WebhookSender } from '../meta/webhooks.ts';
import { WhatsAppWorld, defaultPacing, newWamid, waIdOf, type BusinessNumber, type PacingLimits, type SentMessage } from './world.ts';

// The WhatsApp Cloud API as Meta's OpenAPI description (facebook/openapi, business-messaging-api_v23.0)
// and the Cloud API guides describe it, on one Graph host (graph.facebook.com, optional /vNN.N):
// GET /{phone-number-id} (the number's details: how a system-user token is checked against a number),
// POST /{phone-number-id}/messages (text, image, document, video, audio, sticker, location, contacts,
// interactive, reaction and template; `status: read` marks an incoming message read),
// GET /{waba-id}, GET /{waba-id}/phone_numbers, GET /{waba-id}/message_templates,
// POST|GET|DELETE /{waba-id}/subscribed_apps. Token errors answer 401 (code 190). Webhooks (field
// `messages`): incoming messages and the statuses sent → delivered → read (or failed) of each sent
// message, signed with the app secret.

export interface WhatsAppOptions extends PlatformEmulatorOptions {
  pacing?: Partial<PacingLimits>;
  /** Pause between the automatic statuses of one message (ms of real time). */
  statusDelayMs?: number;
  /** Which statuses follow a sent message on their own (default sent, delivered, read). */
  autoStatuses?: Array<'sent' | 'delivered' | 'read'>;
  webhookRetries?: number;
  webhookRetryDelayMs?: number;
}

const FREE_FORM = ['text', 'image', 'document', 'video', 'audio', 'sticker', 'location', 'contacts', 'interactive', 'reaction'];
const MEDIA = ['image', 'document', 'video', 'audio', 'sticker'];
const ID = '(\\d+)';

export async function startWhatsAppEmulator(opts: WhatsAppOptions): Promise<PlatformEmulator> {
  const clock = opts.clock;
  const world = new WhatsAppWorld(clock, { ...defaultPacing, ...opts.pacing });
  const meta = () => opts.apps.meta;
  const tokens = new TokenStore(clock, 'EAAG', () => meta().appId, 401);
  const faults = new PlatformFaults();
  const webhooks = new WebhookSender({ app: meta, retries: opts.webhookRetries, retryDelayMs: opts.webhookRetryDelayMs });
  const autoStatuses = opts.autoStatuses ?? ['sent', 'delivered', 'read'];
  const statusDelayMs = opts.statusDelayMs ?? 20;
  const stopping = new AbortController();

  /** The number a path names, readable with this token (another business's number is unknown to it). */
  const numberFor = (ctx: RequestContext, id: string): BusinessNumber => {
    const token = tokens.check(accessTokenOf(ctx.req, ctx.params));
    const n = world.numbers.get(id);
    if (!n || n.wabaId !== token.subject) throw unknownObject(id, ctx.method);
    return n;
  };
  const wabaFor = (ctx: RequestContext, id: string) => {
    const token = tokens.check(accessTokenOf(ctx.req, ctx.params));
    const w = world.wabas.get(id);
    if (!w || w.id !== token.subject) throw unknownObject(id, ctx.method);
    return w;
  };

  const envelope = (n: BusinessNumber, value: Record<string, unknown>) => ({
    object: 'whatsapp_business_account',
    entry: [{ id: n.wabaId, changes: [{ value: { messaging_product: 'whatsapp', metadata: { display_phone_number: n.digits, phone_number_id: n.id }, ...value }, field: 'messages' }] }],
  });

  const deliver = async (n: BusinessNumber, value: Record<string, unknown>, badSignature = false) => {
    if (!world.wabas.get(n.wabaId)?.subscribed) return undefined;
    return webhooks.deliver(envelope(n, value), { badSignature });
  };

  const statusValue = (m: SentMessage, status: SentMessage['status'], errors?: unknown[]) => {
    const category = m.template ? (world.templates.get(`${m.template.name}|${m.template.language}`)?.category ?? 'UTILITY').toLowerCase() : 'service';
    return {
      statuses: [{
        id: m.id,
        status,
        timestamp: String(Math.floor(clock.now() / 1000)),
        recipient_id: m.to,
        ...(status === 'failed' ? { errors } : { pricing: { billable: category !== 'service', pricing_model: 'PMP', category } }),
      }],
    };
  };

  /** The statuses a sent message goes through, in order, each after the previous one was delivered. */
  const followUp = async (n: BusinessNumber, m: SentMessage, failure?: unknown[], mediaUrl?: string) => {
    if (mediaUrl !== undefined) {
      const r = await fetchMedia(mediaUrl, { maxBytes: 100 * 1024 * 1024, timeoutMs: 30_000 });
      if (r.ok) m.mediaSha256 = r.sha256;
      else failure = [{ code: 131053, title: 'Media upload error', message: 'Media upload error', error_data: { details: `Unable to download the media from the link (${r.detail}).` } }];
    }
    if (failure) {
      m.status = 'failed';
      await deliver(n, statusValue(m, 'failed', failure));
      return;
    }
    for (const s of autoStatuses) {
      if (stopping.signal.aborted) return;
      if (statusDelayMs > 0) await sleep(statusDelayMs, undefined, { signal: stopping.signal }).catch(() => undefined);
      m.status = s;
      await deliver(n, statusValue(m, s));
    }
  };

  const send = (ctx: RequestContext, match: RegExpExecArray) => {
    const n = numberFor(ctx, match[1]!);
    const p = ctx.params;
    if (p.status === 'read') {
      const id = str(p.message_id);
      if (!id || world.incomingIds.get(id) !== n.id) throw invalidParam('(#100) Invalid parameter', { data: { messaging_product: 'whatsapp', details: 'message_id is not a message received by this number' } });
      return { body: { success: true } };
    }
    if (p.messaging_product !== 'whatsapp') throw invalidParam('(#100) The parameter messaging_product is required.');
    const input = str(p.to) ?? str(p.recipient);
    const waId = str(p.to) ? waIdOf(String(p.to)) : input;
    if (!input || !waId) throw invalidParam('(#100) Invalid parameter', { data: { messaging_product: 'whatsapp', details: 'to must be a phone number (+E.164) or recipient a business-scoped user id' } });
    const type = str(p.type) ?? 'text';
    const msg: SentMessage = { id: newWamid(waId), phoneNumberId: n.id, to: waId, type, at: clock.now(), status: 'accepted' };
    let mediaUrl: string | undefined;
    if (type === 'template') {
      const t = objectParam(p.template);
      const name = str(t?.name);
      const language = str(objectParam(t?.language)?.code);
      if (!t || !name || !language) throw invalidParam('(#100) Param template[\'name\'] and template[\'language\'][\'code\'] are required.');
      const tpl = world.templates.get(`${name}|${language}`);
      if (!tpl) throw new GraphError(404, 132001, '(#132001) Template name does not exist in the translation', { data: { messaging_product: 'whatsapp', details: `template name (${name}) does not exist in ${language}` } });
      const components = Array.isArray(t.components) ? (t.components as Array<Record<string, unknown>>) : [];
      const bodyParams = (components.find((c) => String(c.type).toLowerCase() === 'body')?.parameters ?? []) as Array<Record<string, unknown>>;
      if (bodyParams.length !== tpl.params) {
        throw new GraphError(400, 132000, '(#132000) Number of parameters does not match the expected number of params', { data: { messaging_product: 'whatsapp', details: `body: number of localizable_params (${bodyParams.length}) does not match the expected number of params (${tpl.params})` } });
      }
      const values = bodyParams.map((bp) => String(bp.text ?? ''));
      msg.template = { name, language, params: values, body: tpl.body.replace(/\{\{(\d+)\}\}/g, (_m, i: string) => values[Number(i) - 1] ?? '') };
    } else if (FREE_FORM.includes(type)) {
      const obj = objectParam(p[type]);
      if (type === 'text') {
        const body = str(obj?.body);
        if (!body) throw invalidParam('(#100) The parameter text[\'body\'] is required.');
        if (body.length > 4096) throw invalidParam('(#100) Param text[\'body\'] must be at most 4096 characters long.');
        msg.text = body;
      } else if (MEDIA.includes(type)) {
        if (!obj || (!str(obj.link) && !str(obj.id))) throw invalidParam(`(#100) The parameter ${type}['link'] or ${type}['id'] is required.`);
        if (!str(obj.link)) throw invalidParam(`(#100) Invalid parameter: ${type}['id'] is unknown (media uploads are not emulated; send by link)`);
        mediaUrl = str(obj.link);
        msg.mediaSha256 = null;
        if (str(obj.caption)) msg.text = str(obj.caption);
      } else if (!obj) {
        throw invalidParam(`(#100) The parameter ${type} is required.`);
      }
    } else {
      throw invalidParam(`(#100) Param type must be one of {${[...FREE_FORM, 'template'].join(', ')}} - got "${type}".`);
    }
    const outside = type !== 'template' && !world.insideWindow(n, waId);
    if (outside && n.windowErrors === 'sync') throw world.windowError();
    world.pace(n, waId);
    world.record(msg);
    const failure = outside ? [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message', error_data: { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' } }] : undefined;
    void followUp(n, msg, failure, failure ? undefined : mediaUrl);
    return { body: { messaging_product: 'whatsapp', contacts: [{ input, wa_id: waId }], messages: [{ id: msg.id, ...(type === 'template' ? { message_status: 'accepted' } : {}) }] } };
  };

  const numberView = (n: BusinessNumber) => ({
    id: n.id, display_phone_number: n.display, verified_name: n.verifiedName, quality_rating: 'GREEN', code_verification_status: 'VERIFIED',
    name_status: 'APPROVED', platform_type: 'CLOUD_API', throughput: { level: 'STANDARD' }, status: 'CONNECTED',
  });

  const api: Route[] = [
    { method: 'POST', pattern: new RegExp(`^/${ID}/messages$`), handler: send },
    { method: 'GET', pattern: new RegExp(`^/${ID}/message_templates$`), handler: (ctx, m) => {
      wabaFor(ctx, m[1]!);
      const data = [...world.templates.values()].map((t) => ({ id: t.id, name: t.name, language: t.language, status: 'APPROVED', category: t.category, components: [{ type: 'BODY', text: t.body }] }));
      return { body: { data } };
    } },
    { method: 'GET', pattern: new RegExp(`^/${ID}/phone_numbers$`), handler: (ctx, m) => {
      const w = wabaFor(ctx, m[1]!);
      return { body: { data: [...world.numbers.values()].filter((n) => n.wabaId === w.id).map((n) => selectFields(numberView(n), ctx.params.fields, ['id', 'display_phone_number', 'verified_name', 'quality_rating'])) } };
    } },
    ...(['POST', 'GET', 'DELETE'] as const).map((method): Route => ({ method, pattern: new RegExp(`^/${ID}/subscribed_apps$`), handler: (ctx, m) => {
      const w = wabaFor(ctx, m[1]!);
      if (method === 'GET') return { body: { data: w.subscribed ? [{ whatsapp_business_api_data: { id: meta().appId, name: 'Integration Service (emulator)' } }] : [] } };
      w.subscribed = method === 'POST';
      return { body: { success: true } };
    } })),
    { method: 'GET', pattern: new RegExp(`^/${ID}$`), handler: (ctx, m) => {
      const id = m[1]!;
      if (world.wabas.has(id)) {
        const w = wabaFor(ctx, id);
        return { body: selectFields({ id: w.id, name: 'Emulator Business', currency: 'USD', timezone_id: '1', message_template_namespace: `emulator_${w.id.slice(-6)}` }, ctx.params.fields, ['id', 'name']) };
      }
      return { body: selectFields(numberView(numberFor(ctx, id)), ctx.params.fields, ['id', 'display_phone_number', 'verified_name', 'quality_rating']) };
    } },
  ];

  const rateLimit = () => new GraphError(429, 130429, '(#130429) Rate limit hit', { data: { messaging_product: 'whatsapp', details: 'Cloud API message throughput has been reached.' } });
  const server = new MetaHttpServer('whatsapp-api', api, { faults, rateLimit });
  const urls = { api: await server.listen(opts.host ?? '127.0.0.1') };

  const numberByRef = (ref: unknown): BusinessNumber => {
    const n = world.numbers.get(String(ref ?? ''));
    if (!n) throw new PlatformControlError(404, `no business number ${String(ref)}`);
    return n;
  };

  const events = async (body: Record<string, unknown>): Promise<ControlAnswer> => {
    const type = body.type ?? 'message';
    if (type === 'status') {
      const m = world.message(String(body.messageId ?? ''));
      if (!m) throw new PlatformControlError(404, `no sent message ${String(body.messageId)}`);
      const status = body.status as SentMessage['status'];
      if (!['sent', 'delivered', 'read', 'failed'].includes(status)) throw new PlatformControlError(400, 'status must be sent, delivered, read or failed');
      const code = Number(body.errorCode ?? 131026);
      const errors = status === 'failed' ? [{ code, title: String(body.errorTitle ?? 'Message undeliverable'), message: String(body.errorTitle ?? 'Message undeliverable'), error_data: { details: String(body.errorDetails ?? 'Unable to deliver message.') } }] : undefined;
      m.status = status;
      const n = world.numbers.get(m.phoneNumberId)!;
      const d = await deliver(n, statusValue(m, status, errors), truthy(body.badSignature));
      return { status: 200, body: { messageId: m.id, delivered: d?.ok ?? false, ...(d ? { status: d.status } : { reason: 'no webhook URL registered or the business is not subscribed' }) } };
    }
    if (type !== 'message') throw new PlatformControlError(400, 'type must be message or status');
    const n = numberByRef(body.phoneNumberId);
    const from = typeof body.from === 'string' ? waIdOf(body.from) : undefined;
    if (!from) throw new PlatformControlError(400, 'from must be a phone number (+E.164)');
    const text = str(body.text);
    if (!text) throw new PlatformControlError(400, 'text is required');
    const id = newWamid(from);
    world.incoming(n, from);
    world.incomingIds.set(id, n.id);
    const value = {
      contacts: [{ profile: { name: str(body.name) ?? 'WhatsApp User' }, wa_id: from }],
      messages: [{ from, id, timestamp: String(Math.floor(clock.now() / 1000)), type: 'text', text: { body: text } }],
    };
    const d = await deliver(n, value, truthy(body.badSignature));
    return { status: 200, body: { messageId: id, delivered: d?.ok ?? false, ...(d ? { status: d.status } : { reason: 'no webhook URL registered or the business is not subscribed' }) } };
  };

  const messageView = (m: SentMessage) => ({
    id: m.id, phoneNumberId: m.phoneNumberId, to: m.to, type: m.type,
    ...(m.text !== undefined ? { text: m.text } : {}), ...(m.template ? { template: m.template } : {}), ...(m.mediaSha256 !== undefined ? { mediaSha256: m.mediaSha256 } : {}),
    status: m.status, at: new Date(m.at).toISOString(),
  });

  const control = async (method: string, path: string, query: URLSearchParams, body: Record<string, unknown>): Promise<ControlAnswer | undefined> => {
    switch (`${method} ${path}`) {
      case 'POST /numbers': {
        const expires = body.tokenExpiresInS === undefined ? undefined : Number(body.tokenExpiresInS);
        if (expires !== undefined && !(expires > 0)) throw new PlatformControlError(400, 'tokenExpiresInS must be a positive number');
        const n = world.addNumber(body);
        const token = tokens.issue('system', n.wabaId, ['whatsapp_business_messaging', 'whatsapp_business_management'], expires);
        return { status: 200, body: { phoneNumberId: n.id, wabaId: n.wabaId, accessToken: token.token, displayPhoneNumber: n.display } };
      }
      case 'POST /templates': {
        const t = world.addTemplate(body);
        return { status: 200, body: { id: t.id, name: t.name, language: t.language, category: t.category, params: t.params } };
      }
      case 'POST /revoke': {
        const ref = String(body.account ?? '');
        const wabaId = world.wabas.has(ref) ? ref : world.numbers.get(ref)?.wabaId;
        if (!wabaId) throw new PlatformControlError(404, `no business number or WABA ${ref}`);
        const reason = (body.reason ?? 'deauthorized') as RevokeReason;
        if (!revokeReasons.includes(reason)) throw new PlatformControlError(400, `reason must be one of ${revokeReasons.join(', ')}`);
        return { status: 200, body: { wabaId, tokens: tokens.revoke(wabaId, reason) } };
      }
      case 'POST /webhook-url':
        return { status: 200, body: await webhooks.register(body) };
      case 'POST /events':
        return events(body);
      case 'GET /messages':
        return { status: 200, body: world.messages({ phoneNumberId: query.get('phoneNumberId') ?? undefined, to: query.get('to') ? (waIdOf(query.get('to')!) ?? query.get('to')!) : undefined }).map(messageView) };
      case 'GET /webhooks':
        return { status: 200, body: webhooks.deliveries() };
      default:
        return undefined;
    }
  };

  return {
    name: 'whatsapp',
    urls,
    control: async (method, path, query, body) => {
      try {
        return await control(method, path, query, (body ?? {}) as Record<string, unknown>);
      } catch (err) {
        if (err instanceof PlatformControlError) return { status: err.status, body: { error: err.message } };
        throw err;
      }
    },
    fault: (f) => faults.arm(f),
    reset: () => {
      world.reset();
      tokens.reset();
      faults.reset();
      webhooks.reset();
    },
    stop: async () => {
      stopping.abort();
      webhooks.close();
      await server.close();
    },
  };
}
