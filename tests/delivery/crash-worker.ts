// Child process for crash.test.ts: runs delivery against the given database and broker prefix with a
// "platform" that appends every accepted send to a file (synchronously, so a kill -9 right after
// loses nothing already accepted). SIGTERM stops gracefully.
import { appendFileSync } from 'node:fs';
import postgres from 'postgres';
import { startDelivery } from '../../src/delivery/delivery.ts';
import type { MessageSender } from '../../src/delivery/types.ts';
import { randomIdFor } from '../../src/platforms/telegram/random-id.ts';
import { telegramCapabilities } from './fixtures.ts';

const { DB_URL, AMQP_URL, PREFIX, SENT_LOG } = process.env as Record<string, string>;
const sql = postgres(DB_URL!, { max: 5, onnotice: () => undefined });

const sender: MessageSender = {
  capabilities: () => undefined, // from the connections table
  async send(msg) {
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 40)); // the platform call
    appendFileSync(SENT_LOG!, `${msg.id} ${randomIdFor(msg.id)}\n`);
    return { platformMessageId: String(Date.now()) };
  },
};

const delivery = startDelivery({ sql, ...(AMQP_URL ? { amqpUrl: AMQP_URL } : {}), shards: 2, sender, capabilities: telegramCapabilities(), prefix: PREFIX!, pollMs: 50, sampleMs: 60_000,
  // Short leases so that the restart recovers abandoned rows in seconds (defaults: 60 s / 30 s).
  processor: { leaseMs: 8000 }, claimLeaseMs: 8000,
  // At most 16 sends in flight (per queue with the broker, in total embedded): what a kill can leave in doubt.
  concurrency: 16 });
await delivery.ready;
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await delivery.stop();
  await sql.end();
  process.exit(0);
});
