// Child process for dispatcher.test.ts: a dispatcher on the given database, delivering to the test's
// receiver (127.0.0.1 allowed), killed with SIGKILL mid-work by the test. The keyring key comes from
// the parent so that it decrypts the endpoints' secrets.
import postgres from 'postgres';
import { openKeyring } from '../../src/crypto/keyring.ts';
import { Egress } from '../../src/net/egress.ts';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.ts';

const { DB_URL, KEYRING_KEY, LEASE_MS } = process.env as Record<string, string>;
const sql = postgres(DB_URL!, { max: 4, onnotice: () => undefined });
const keyring = await openKeyring({ keyringKey: Buffer.from(KEYRING_KEY!, 'base64') });
const dispatcher = new WebhookDispatcher({
  sql, keyring, egress: new Egress({ allowHosts: ['127.0.0.1'] }), leaseMs: Number(LEASE_MS), pollMs: 50, id: 'crash-worker',
});
dispatcher.start();
process.stdout.write('ready\n');
