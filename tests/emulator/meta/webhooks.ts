import { createHmac, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PlatformControlError } from '../platforms/types.ts';
import { str, type Params } from './graph.ts';

// Meta webhooks as the Webhooks "Getting Started" guide describes them: registering a callback URL
// sends the verification request (GET ?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<token>)
// and keeps the URL only if the answer is 200 with the challenge as its body; every event is a POST of
// JSON signed with the app secret: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (and
// the older `X-Hub-Signature: sha1=…`). Meta signs the payload with non-ASCII characters escaped as
// lowercase \uXXXX, so a receiver must verify the raw bytes, not a re-serialisation. A failed delivery
// is retried (Meta retries for hours; here `retries` times, `retryDelayMs` apart, growing).

export interface Delivery {
  id: number;
  at: number;
  url: string;
  body: unknown;
  attempts: number;
  status?: number;
  ok: boolean;
  error?: string;
}

export interface WebhookOptions {
  app: () => { appSecret: string; verifyToken: string };
  retries?: number;
  retryDelayMs?: number;
  timeoutMs?: number;
}

const MAX_LOG = 1000;

/** JSON with every non-ASCII UTF-16 unit escaped as lowercase \uXXXX, as Meta sends it. */
export const metaJson = (payload: unknown): string =>
  JSON.stringify(payload).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export const signatures = (secret: string, raw: string): { sha256: string; sha1: string } => ({
  sha256: `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`,
  sha1: `sha1=${createHmac('sha1', secret).update(raw).digest('hex')}`,
});

export class WebhookSender {
  private target: string | undefined;
  private log: Delivery[] = [];
  private seq = 0;
  private stopping = new AbortController();

  constructor(private readonly o: WebhookOptions) {}

  get url(): string | undefined {
    return this.target;
  }

  /** `POST /<platform>/webhook-url {url, verify?}`: `url: null` unregisters. */
  async register(body: Params): Promise<{ url: string | null; verified: boolean }> {
    if (body.url === null || body.url === '') {
      this.target = undefined;
      return { url: null, verified: false };
    }
    const url = str(body.url);
    let parsed: URL;
    try {
      parsed = new URL(url ?? '');
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
    } catch {
      throw new PlatformControlError(400, 'url must be an absolute http(s) URL');
    }
    if (body.verify === false || body.verify === 'false') {
      this.target = parsed.toString();
      return { url: this.target, verified: false };
    }
    const challenge = String(randomInt(1_000_000_000, 2_000_000_000));
    const probe = new URL(parsed);
    probe.searchParams.set('hub.mode', 'subscribe');
    probe.searchParams.set('hub.challenge', challenge);
    probe.searchParams.set('hub.verify_token', this.o.app().verifyToken);
    let status: number;
    let text: string;
    try {
      const res = await fetch(probe, { signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000), headers: { 'user-agent': 'facebookplatform/1.0 (+http://developers.facebook.com)' } });
      status = res.status;
      text = (await res.text()).trim();
    } catch (err) {
      throw new PlatformControlError(422, `The callback URL couldn't be validated: ${(err as Error).message}`);
    }
    if (status !== 200 || text !== challenge) {
      throw new PlatformControlError(422, `The callback URL or verify token couldn't be validated: status ${status}, expected body ${challenge}, received ${JSON.stringify(text.slice(0, 100))}`);
    }
    this.target = parsed.toString();
    return { url: this.target, verified: true };
  }

  /**
   * Sends `payload` to the registered URL and resolves after the first attempt (retries go on in the
   * background). Undefined when no URL is registered: Meta has nowhere to send it.
   */
  async deliver(payload: unknown, opts: { badSignature?: boolean } = {}): Promise<Delivery | undefined> {
    const url = this.target;
    if (!url) return undefined;
    const d: Delivery = { id: ++this.seq, at: Date.now(), url, body: payload, attempts: 0, ok: false };
    this.log.push(d);
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
    const raw = metaJson(payload);
    const secret = opts.badSignature ? `${this.o.app().appSecret}-not` : this.o.app().appSecret;
    await this.attempt(d, raw, secret);
    if (!d.ok) void this.retry(d, raw, secret);
    return d;
  }

  private async attempt(d: Delivery, raw: string, secret: string): Promise<void> {
    d.attempts++;
    const sig = signatures(secret, raw);
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        body: raw,
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': sig.sha256, 'x-hub-signature': sig.sha1, 'user-agent': 'facebookexternalua' },
        signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs ?? 10_000), this.stopping.signal]),
      });
      await res.arrayBuffer().catch(() => undefined);
      d.status = res.status;
      d.ok = res.status >= 200 && res.status < 300;
      d.error = d.ok ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      d.ok = false;
      d.error = (err as Error).message;
    }
  }

  private async retry(d: Delivery, raw: string, secret: string): Promise<void> {
    const retries = this.o.retries ?? 3;
    const base = this.o.retryDelayMs ?? 1000;
    const signal = this.stopping.signal;
    for (let i = 1; i <= retries && !d.ok && !signal.aborted; i++) {
      const ok = await sleep(base * i, true, { signal }).catch(() => false);
      if (!ok) return;
      await this.attempt(d, raw, secret);
    }
  }

  deliveries(): Delivery[] {
    return this.log.map((d) => ({ ...d }));
  }

  reset(): void {
    this.stopping.abort();
    this.stopping = new AbortController();
    this.target = undefined;
    this.log = [];
  }

  close(): void {
    this.stopping.abort();
  }
}
