// Secrets through a WhatsApp connection's life (connect, refused connect, send, revoke, the webhook
// handshake and signed events) never reach a log line at debug level: the system-user tokens, the app
// secret, the verify token, and the customers' numbers unmasked.
import { Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import winston from 'winston';
import { logger as rootLogger } from '../../../src/observability/logger.ts';
import { startWaWorld, until } from './world.ts';

const test = suite('whatsapp secrets e2e');

test('tokens, app secret, verify token and customer numbers are never logged', async () => {
  const lines: string[] = [];
  const capture = new winston.transports.Stream({ stream: new Writable({ write(c, _e, done) { lines.push(String(c)); done(); } }) });
  const w = await startWaWorld({ env: { LOG_LEVEL: 'debug' } });
  rootLogger.add(capture);
  try {
    await w.control('POST', '/webhook-url', { url: `${w.app.url}/v1/platform-webhooks/whatsapp` });
    const n = await w.number();
    const other = await w.number();
    await w.call('sec', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: other.accessToken });
    const c = await w.call('sec', 'POST', '/v1/connections', { platform: 'whatsapp', phoneNumberId: n.phoneNumberId, accessToken: n.accessToken });
    await until(async () => (await w.call('sec', 'GET', `/v1/connections/${c.body.id}`)).body.status === 'active', 'active');
    const to = '+15550123456';
    await w.control('POST', '/events', { type: 'message', phoneNumberId: n.phoneNumberId, from: to, text: 'hi' });
    await w.control('POST', '/events', { type: 'message', phoneNumberId: n.phoneNumberId, from: to, text: 'forged', badSignature: true });
    const m = await w.call('sec', 'POST', '/v1/messages', { connectionId: c.body.id, chat: to, text: 'hello' });
    await until(async () => (await w.call('sec', 'GET', `/v1/messages/${m.body.id}`)).body.platformStatus === 'read', 'read');
    await fetch(`${w.app.url}/v1/platform-webhooks/whatsapp?hub.mode=subscribe&hub.challenge=12&hub.verify_token=${w.apps.meta.verifyToken}`);
    await w.control('POST', '/revoke', { account: n.phoneNumberId });
    await w.call('sec', 'POST', '/v1/messages', { connectionId: c.body.id, chat: to, text: 'after revoke' });
    await until(async () => (await w.call('sec', 'GET', `/v1/connections/${c.body.id}`)).body.status === 'error', 'error');
  } finally {
    rootLogger.remove(capture);
    await w.stop();
  }
  assert.ok(lines.length > 0, 'nothing was logged: the capture is not wired');
  assert.ok(lines.some((l) => l.includes('platform-webhooks')), 'the webhook requests were not logged');
  const all = lines.join('\n');
  for (const [what, secret] of [['app secret', w.apps.meta.appSecret], ['verify token', w.apps.meta.verifyToken], ['customer number', '15550123456']] as const) {
    assert.not.ok(all.includes(secret), `${what} in the logs`);
  }
  assert.not.ok(/EAAG[\w-]{20,}/.test(all), 'a system-user token in the logs');
});

test.run();
