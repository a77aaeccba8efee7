// Webhook fan-out: events stored in the events table at a steady rate (the real path: appendEvent →
// feeder → deliveries → dispatcher) to one owner's endpoints
// (all subscribed to "*"): most answer 200 at once, one answers after 2 s (slow), one refuses the
// connection (dead). One dispatcher (as in one daemon) on a fresh Postgres database sends to a local
// receiver in this process, which verifies nothing (the tests do) and records when each arrived.
// Goal (issue 16): 10,000 events/min to 10 endpoints, p99 event→delivered ≤ 1 s for the healthy
// endpoints, 0 lost; CPU per delivery printed (this process: dispatcher, enqueuer and receiver).
// Usage: npm run bench:webhooks -- [--rate 10000] [--seconds 30] [--endpoints 10] [--prefetch 32]
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { openKeyring } from '../../src/crypto/keyring.ts';
import { Egress } from '../../src/net/egress.ts';
import { appendEvent, eventsCommitted } from '../../src/store/events.ts';
import { insertEndpoint } from '../../src/store/webhooks.ts';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.ts';
import { startWebhookFeeder } from '../../src/webhooks/feeder.ts';
import { webhookMetrics } from '../../src/webhooks/metrics.ts';
import { sealSecret } from '../../src/webhooks/secrets.ts';
import { newSecret } from '../../src/webhooks/signing.ts';
import { createTestDatabase } from '../helpers/db.ts';

const { values } = parseArgs({
  options: { rate: { type: 'string', default: '10000' }, seconds: { type: 'string', default: '30' }, endpoints: { type: 'string', default: '10' }, prefetch: { type: 'string' } },
});
const perMinute = Number(values.rate);
const seconds = Number(values.seconds);
const endpointCount = Math.max(3, Number(values.endpoints));
const log = (line: string) => process.stdout.write(`${line}\n`);
const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);

const db = await createTestDatabase({ max: 12 });
const keyring = await openKeyring({ keyringKey: randomBytes(32) });
const egress = new Egress({ allowHosts: ['127.0.0.1'] });

// Receiver: /ok<i> answers at once, /slow after 2 s.
const latencies: number[] = [];
const seen = new Set<string>();
let duplicates = 0;
let slowDelivered = 0;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const path = req.url ?? '';
    if (path === '/slow') {
      setTimeout(() => { slowDelivered += 1; res.writeHead(200).end(); }, 2000);
      return;
    }
    const key = `${path} ${String(req.headers['webhook-id'])}`;
    if (seen.has(key)) duplicates += 1;
    else {
      seen.add(key);
      const { data } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { t: number } };
      latencies.push(Date.now() - data.t);
    }
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 30_000;
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;
// A port nothing listens on: connection refused, every attempt.
const deadServer = createServer();
await new Promise<void>((r) => deadServer.listen(0, '127.0.0.1', r));
const deadPort = (deadServer.address() as AddressInfo).port;
await new Promise((r) => deadServer.close(r));

const owner = `bench-${randomUUID()}`;
const healthy = endpointCount - 2;
const urls = [...Array.from({ length: healthy }, (_, i) => `http://127.0.0.1:${port}/ok${i}`), `http://127.0.0.1:${port}/slow`, `http://127.0.0.1:${deadPort}/dead`];
for (const url of urls) {
  const id = randomUUID();
  await db.sql.begin((tx) => insertEndpoint(tx, { id, owner, url, events: ['*'], secret: '' }));
  await db.sql`update webhook_endpoints set secret = ${await sealSecret(keyring, id, newSecret())} where id = ${id}`;
}

const dispatcher = new WebhookDispatcher({ sql: db.sql, keyring, egress, pollMs: 250, ...(values.prefetch ? { prefetch: Number(values.prefetch) } : {}) });
dispatcher.start();
const feeder = startWebhookFeeder({ sql: db.sql });

// Progress every 5 s: where the backlog sits (events not fed yet, deliveries pending) — the profile.
const progress = setInterval(() => void (async () => {
  const [r] = await db.sql<{ events: number; deliveries: number; pending: number; leased: number }[]>`
    select (select count(*)::int from events) as events, (select count(*)::int from webhook_deliveries) as deliveries,
      (select count(*)::int from webhook_deliveries where status = 'pending') as pending,
      (select count(*)::int from webhook_deliveries where lease_owner is not null) as leased`;
  log(`  t+${((Date.now() - started) / 1000).toFixed(0)} s: events ${r!.events}, deliveries ${r!.deliveries} (pending ${r!.pending}, leased ${r!.leased}), received ${seen.size}`);
})(), 5000);
progress.unref();
const total = Math.round((perMinute / 60) * seconds);
const intervalMs = 60_000 / perMinute;
log(`bench:webhooks  ${perMinute} events/min for ${seconds} s = ${total} events to ${endpointCount} endpoints (${healthy} healthy, 1 slow 2 s, 1 dead)`);
log(`  machine: ${availableParallelism()} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

const enqueueMs: number[] = [];
const cpu0 = process.cpuUsage();
const started = Date.now();
let sent = 0;
// Paced by the wall clock: each event at started + i * interval, several per timer tick when late.
await new Promise<void>((resolve) => {
  const tick = async () => {
    const due = Math.min(total, Math.floor((Date.now() - started) / intervalMs) + 1);
    const batch: Promise<void>[] = [];
    while (sent < due) {
      const seq = sent++;
      batch.push((async () => {
        const t = Date.now();
        await appendEvent(db.sql, { customerId: owner, type: 'message.status', data: { t, seq } });
        eventsCommitted();
        enqueueMs.push(Date.now() - t);
      })());
    }
    await Promise.all(batch);
    if (sent >= total) resolve();
    else setTimeout(() => void tick(), Math.max(1, intervalMs));
  };
  void tick();
});
const fedS = (Date.now() - started) / 1000;
const expected = total * healthy;
const deadline = Date.now() + 60_000;
while (seen.size < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const elapsedS = (Date.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
clearInterval(progress);
const attempts = (await webhookMetrics.deliveries.get()).values.reduce((a, v) => a + v.value, 0);
const byResult = Object.fromEntries((await webhookMetrics.deliveries.get()).values.map((v) => [v.labels.result, v.value]));

latencies.sort((a, b) => a - b);
enqueueMs.sort((a, b) => a - b);
log(`  fed ${total} events in ${fedS.toFixed(1)} s (${(total / fedS * 60).toFixed(0)}/min); enqueue p50 ${percentile(enqueueMs, 50)} ms, p99 ${percentile(enqueueMs, 99)} ms`);
log(`  healthy endpoints: ${seen.size}/${expected} delivered, lost ${expected - seen.size}, duplicates ${duplicates}`);
log(`  event→delivered (healthy): p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms`);
log(`  throughput: ${(seen.size / elapsedS).toFixed(0)} healthy deliveries/s over ${elapsedS.toFixed(1)} s; slow endpoint delivered ${slowDelivered} (4 at a time, 2 s each)`);
log(`  attempts by result: ${JSON.stringify(byResult)}`);
const dur = (await webhookMetrics.attemptDuration.get()).values;
const sum = dur.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
const count = dur.find((v) => v.metricName?.endsWith('_count'))?.value ?? 1;
log(`  mean HTTP attempt (request sent to answer read, all endpoints): ${((sum / count) * 1000).toFixed(1)} ms`);
log(`  CPU (this process: enqueue + dispatch + receiver): ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, ${((cpu.user + cpu.system) / attempts).toFixed(0)} µs per attempt`);
const ok = seen.size === expected && percentile(latencies, 99) <= 1000;
log(`  goal p99 ≤ 1000 ms and 0 lost: ${ok ? 'met' : 'NOT met'}`);

await feeder.stop();
await dispatcher.stop();
server.closeAllConnections();
await new Promise((r) => server.close(r));
await egress.close();
await keyring.close();
await db.drop();
process.exit(0);
