import { randomBytes } from 'node:crypto';
import { PlatformControlError, type EmulatorClock } from '../platforms/types.ts';
import { GraphError, newId } from '../meta/graph.ts';

// The WhatsApp Business side without HTTP: business accounts (WABA) and their numbers, templates, the
// 24-hour customer service window per (number, customer), the pacing rules of the Cloud API
// "Throughput" page (80 messages per second per number, inbound included → 130429) and of its pair rate
// limit (about 1 message every 6 seconds to one customer, bursts up to 45 borrowed against later time
// → 131056), and the log of sent messages.

export interface Waba { id: string; subscribed: boolean }

export interface BusinessNumber {
  id: string;
  wabaId: string;
  /** As the dashboard shows it, e.g. "+1 555-010-0042". */
  display: string;
  /** The same digits only, as webhooks carry it in metadata.display_phone_number. */
  digits: string;
  verifiedName: string;
  /** Where 131047 shows: the send call's answer (default) or a `failed` status webhook. */
  windowErrors: 'sync' | 'webhook';
}

export interface Template { id: string; name: string; language: string; category: string; body: string; params: number }

export interface SentMessage {
  id: string;
  phoneNumberId: string;
  to: string;
  type: string;
  text?: string;
  template?: { name: string; language: string; body: string; params: string[] };
  mediaSha256?: string | null;
  at: number;
  status: 'accepted' | 'sent' | 'delivered' | 'read' | 'failed';
}

export interface PacingLimits {
  throughputPerSecond: number;
  pairIntervalS: number;
  pairBurst: number;
  windowS: number;
}

export const defaultPacing: PacingLimits = { throughputPerSecond: 80, pairIntervalS: 6, pairBurst: 45, windowS: 86_400 };

const digitsOf = (v: string): string => v.replace(/[\s()+\-.]/g, '');

/** A `to` as the API takes it (+E.164 or digits, spaces and dashes allowed) → wa_id, or undefined. */
export const waIdOf = (to: string): string | undefined => {
  const d = digitsOf(to);
  return /^\d{7,15}$/.test(d) ? d : undefined;
};

export const newWamid = (waId: string): string => `wamid.${Buffer.from(`HBgL${waId}FQIAERgS${randomBytes(10).toString('hex').toUpperCase()}`).toString('base64')}`;

const messageError = (status: number, code: number, title: string, details: string): GraphError =>
  new GraphError(status, code, `(#${code}) ${title}`, { data: { messaging_product: 'whatsapp', details } });

export class WhatsAppWorld {
  readonly wabas = new Map<string, Waba>();
  readonly numbers = new Map<string, BusinessNumber>();
  readonly templates = new Map<string, Template>();
  private readonly lastIncoming = new Map<string, number>();
  private readonly pairTat = new Map<string, number>();
  private readonly traffic = new Map<string, number[]>();
  private sent: SentMessage[] = [];
  private readonly sentById = new Map<string, SentMessage>();
  readonly incomingIds = new Map<string, string>();

  constructor(private readonly clock: EmulatorClock, readonly pacing: PacingLimits) {
    this.presetTemplates();
  }

  private presetTemplates(): void {
    this.addTemplate({ name: 'hello_world', language: 'en_US', category: 'UTILITY', body: 'Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us.' });
  }

  addNumber(input: { displayPhoneNumber?: unknown; verifiedName?: unknown; wabaId?: unknown; windowErrors?: unknown }): BusinessNumber {
    let digits: string;
    if (input.displayPhoneNumber === undefined || input.displayPhoneNumber === null || input.displayPhoneNumber === '') {
      do digits = `1555${String(Math.floor(Math.random() * 10_000_000)).padStart(7, '0')}`;
      while ([...this.numbers.values()].some((n) => n.digits === digits));
    } else {
      const d = typeof input.displayPhoneNumber === 'string' ? waIdOf(input.displayPhoneNumber) : undefined;
      if (!d) throw new PlatformControlError(400, 'displayPhoneNumber must be a phone number (+E.164)');
      if ([...this.numbers.values()].some((n) => n.digits === d)) throw new PlatformControlError(409, `${String(input.displayPhoneNumber)} is already registered`);
      digits = d;
    }
    const windowErrors = input.windowErrors ?? 'sync';
    if (windowErrors !== 'sync' && windowErrors !== 'webhook') throw new PlatformControlError(400, 'windowErrors must be sync or webhook');
    let waba: Waba;
    if (input.wabaId !== undefined) {
      const w = this.wabas.get(String(input.wabaId));
      if (!w) throw new PlatformControlError(404, `no WABA ${String(input.wabaId)}`);
      waba = w;
    } else {
      waba = { id: newId(), subscribed: true };
      this.wabas.set(waba.id, waba);
    }
    const display = digits.startsWith('1') && digits.length === 11 ? `+1 ${digits.slice(1, 4)}-${digits.slice(4, 7)}-${digits.slice(7)}` : `+${digits}`;
    const n: BusinessNumber = { id: newId(), wabaId: waba.id, display, digits, verifiedName: typeof input.verifiedName === 'string' && input.verifiedName ? input.verifiedName : 'Emulator Business', windowErrors };
    this.numbers.set(n.id, n);
    return n;
  }

  addTemplate(input: { name?: unknown; language?: unknown; body?: unknown; category?: unknown }): Template {
    const name = input.name;
    if (typeof name !== 'string' || !/^[a-z0-9_]{1,512}$/.test(name)) throw new PlatformControlError(400, 'name must be lowercase letters, digits and underscores');
    const language = typeof input.language === 'string' && input.language ? input.language : 'en_US';
    if (!/^[a-z]{2,3}(_[A-Z]{2})?$/.test(language)) throw new PlatformControlError(400, 'language must be a locale code such as en_US');
    if (typeof input.body !== 'string' || !input.body) throw new PlatformControlError(400, 'body is required');
    const category = String(input.category ?? 'UTILITY').toUpperCase();
    if (!['UTILITY', 'MARKETING', 'AUTHENTICATION'].includes(category)) throw new PlatformControlError(400, 'category must be UTILITY, MARKETING or AUTHENTICATION');
    const placeholders = new Set([...input.body.matchAll(/\{\{(\d+)\}\}/g)].map((m) => m[1]));
    const t: Template = { id: newId(), name, language, category, body: input.body, params: placeholders.size };
    this.templates.set(`${name}|${language}`, t);
    return t;
  }

  /** A customer wrote to `number`: the service window opens (or restarts) and the message counts as traffic. */
  incoming(number: BusinessNumber, waId: string): void {
    this.lastIncoming.set(`${number.id}|${waId}`, this.clock.now());
    this.count(number.id);
  }

  insideWindow(number: BusinessNumber, waId: string): boolean {
    const at = this.lastIncoming.get(`${number.id}|${waId}`);
    return at !== undefined && this.clock.now() - at < this.pacing.windowS * 1000;
  }

  windowError(): GraphError {
    return messageError(400, 131047, 'Re-engagement message', 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.');
  }

  /** Throughput, then the pair rate; either refusal leaves no trace in the counters. */
  pace(number: BusinessNumber, waId: string): void {
    const now = this.clock.now();
    const recent = (this.traffic.get(number.id) ?? []).filter((t) => now - t < 1000);
    this.traffic.set(number.id, recent);
    if (recent.length >= this.pacing.throughputPerSecond) {
      throw messageError(429, 130429, 'Rate limit hit', 'Cloud API message throughput has been reached.');
    }
    // GCRA: each message borrows pairIntervalS; at most pairBurst messages' worth may be borrowed ahead.
    const key = `${number.id}|${waId}`;
    const interval = this.pacing.pairIntervalS * 1000;
    const tat = Math.max(this.pairTat.get(key) ?? now, now);
    if (tat - now > (this.pacing.pairBurst - 1) * interval) {
      throw messageError(400, 131056, '(Business Account, Consumer Account) pair rate limit hit', 'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.');
    }
    this.pairTat.set(key, tat + interval);
    recent.push(now);
  }

  private count(numberId: string): void {
    const now = this.clock.now();
    const recent = (this.traffic.get(numberId) ?? []).filter((t) => now - t < 1000);
    recent.push(now);
    this.traffic.set(numberId, recent);
  }

  record(m: SentMessage): void {
    this.sent.push(m);
    this.sentById.set(m.id, m);
  }

  message(id: string): SentMessage | undefined {
    return this.sentById.get(id);
  }

  messages(filter: { phoneNumberId?: string; to?: string }): SentMessage[] {
    return this.sent.filter((m) => (!filter.phoneNumberId || m.phoneNumberId === filter.phoneNumberId) && (!filter.to || m.to === filter.to));
  }

  reset(): void {
    this.wabas.clear();
    this.numbers.clear();
    this.templates.clear();
    this.lastIncoming.clear();
    this.pairTat.clear();
    this.traffic.clear();
    this.sent = [];
    this.sentById.clear();
    this.incomingIds.clear();
    this.presetTemplates();
  }
}
