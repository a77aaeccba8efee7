// Webhook verification as a receiver does it: signed by the Standard Webhooks reference library
// (what the service signs with), verified with the client's helper; tampering and stale or
// foreign signatures are refused; two live secrets during a rotation both verify.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { verifyWebhook, Webhook, WebhookVerificationError } from '../../../clients/typescript/src/index.ts';

const secretA = `whsec_${Buffer.from('a'.repeat(32)).toString('base64')}`;
const secretB = `whsec_${Buffer.from('b'.repeat(32)).toString('base64')}`;

const signed = (secret: string, body: string, at = new Date()) => {
  const id = 'evt_42';
  const timestamp = String(Math.floor(at.getTime() / 1000));
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': new Webhook(secret).sign(id, at, body) };
};

test('a signed delivery verifies and gives its payload', () => {
  const body = JSON.stringify({ type: 'message.status', timestamp: new Date().toISOString(), data: { id: 'm1', status: 'sent' } });
  const payload = verifyWebhook<{ status: string }>(secretA, body, signed(secretA, body));
  assert.is(payload.type, 'message.status');
  assert.is(payload.data.status, 'sent');
  assert.is(verifyWebhook(secretA, Buffer.from(body), new Headers(signed(secretA, body))).type, 'message.status');
});

test('a changed body, another secret, an old timestamp or no signature is refused', () => {
  const body = JSON.stringify({ type: 'message.status', timestamp: '2026-01-01T00:00:00Z', data: { n: 1 } });
  const headers = signed(secretA, body);
  assert.throws(() => verifyWebhook(secretA, body.replace('"n":1', '"n":2'), headers), (e: unknown) => e instanceof WebhookVerificationError);
  assert.throws(() => verifyWebhook(secretB, body, headers), (e: unknown) => e instanceof WebhookVerificationError);
  const old = signed(secretA, body, new Date(Date.now() - 10 * 60_000));
  assert.throws(() => verifyWebhook(secretA, body, old), (e: unknown) => e instanceof WebhookVerificationError);
  assert.throws(() => verifyWebhook(secretA, body, { 'webhook-id': 'x', 'webhook-timestamp': headers['webhook-timestamp'] }));
});

test('during a rotation either secret verifies', () => {
  const body = '{"type":"webhook.test","timestamp":"2026-01-01T00:00:00Z","data":{}}';
  assert.is(verifyWebhook([secretA, secretB], body, signed(secretB, body)).type, 'webhook.test');
  assert.is(verifyWebhook([secretA, secretB], body, signed(secretA, body)).type, 'webhook.test');
});

test.run();
