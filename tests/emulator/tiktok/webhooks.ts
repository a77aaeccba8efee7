import { createHmac } from 'node:crypto';
import type { TiktokState } from './state.ts';

// TikTok webhooks ("Webhooks Overview", "Webhook Events", "Check the signature"): a JSON POST of
// `{client_key, event, create_time, user_openid, content}` (content is a serialized JSON string), signed
// `TikTok-Signature: t=<unix seconds>,s=<hex HMAC-SHA256(client_secret, "<t>.<raw body>")>`.
// TikTok retries for 72 hours; the emulator delivers once and records what the receiver answered.

export interface Delivery { event: string; openId: string; status: number | null; error?: string; at: string }

export function signature(secret: string, t: number, body: string): string {
  return `t=${t},s=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export class Webhooks {
  url: string | undefined;
  readonly deliveries: Delivery[] = [];

  constructor(private readonly state: TiktokState) {}

  async deliver(event: string, openId: string, content: Record<string, unknown>): Promise<Delivery> {
    const now = this.state.clock.now();
    const t = Math.floor(now / 1000);
    const body = JSON.stringify({ client_key: this.state.apps.tiktok.clientKey, event, create_time: t, user_openid: openId, content: JSON.stringify(content) });
    const delivery: Delivery = { event, openId, status: null, at: new Date(now).toISOString() };
    this.deliveries.push(delivery);
    if (!this.url) {
      delivery.error = 'no webhook URL';
      return delivery;
    }
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'tiktok-signature': signature(this.state.apps.tiktok.clientSecret, t, body) },
        body,
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer();
      delivery.status = res.status;
    } catch (err) {
      delivery.error = (err as Error).message;
    }
    return delivery;
  }

  reset(): void {
    this.url = undefined;
    this.deliveries.length = 0;
  }
}
