// Broker-only baseline for the send benchmark: N messages published with confirms to one quorum
// queue (the delivery topology's arguments) and consumed with manual acks, no database, no sender.
// Usage: node --import tsx tests/bench/send-broker.bench.ts [N=20000] [inflight=500]
// Prints one human line and one JSON line ({"bench":"send-broker",...}) for comparison.
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import { topology } from '../../src/delivery/topology.ts';

const n = Number(process.argv[2] ?? 20_000);
const inflight = Number(process.argv[3] ?? 500);
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const t = topology({ prefix: `bench-${randomUUID().slice(0, 8)}`, shards: 1 });
const q = t.queues.find((x) => x.priority === 'normal')!;
const conn = new Connection(url);
conn.on('error', (err) => console.error('rabbitmq', (err as Error).message));
await conn.onConnect(5000);
await conn.queueDeclare(t.queueOptions(q.name));

const latencies: number[] = [];
let consumed = 0;
let resolveDone!: () => void;
const done = new Promise<void>((r) => (resolveDone = r));
const consumer = conn.createConsumer({
  queue: q.name, queueOptions: t.queueOptions(q.name), qos: { prefetchCount: 200 }, concurrency: 100,
}, (msg) => {
  latencies.push(performance.now() - (msg.body as { t: number }).t);
  if (++consumed === n) resolveDone();
});

const pub = conn.createPublisher({ confirm: true });
const started = performance.now();
let next = 0;
// A window of unconfirmed publishes, like the relay's pipelined batches.
const worker = async () => {
  while (next < n) {
    next++;
    await pub.send({ routingKey: q.name, durable: true, contentType: 'application/json' }, { id: randomUUID(), t: performance.now() });
  }
};
await Promise.all(Array.from({ length: inflight }, worker));
const published = performance.now();
await done;
const finished = performance.now();

latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
const result = {
  bench: 'send-broker', n, inflight,
  publishPerSec: Math.round(n / ((published - started) / 1000)),
  endToEndPerSec: Math.round(n / ((finished - started) / 1000)),
  latencyMs: { p50: +pct(0.5).toFixed(1), p99: +pct(0.99).toFixed(1), max: +latencies.at(-1)!.toFixed(1) },
};
console.log(`send-broker: ${n} msgs, confirms (${inflight} in flight) ${result.publishPerSec} msg/s, publish→ack end to end ${result.endToEndPerSec} msg/s, latency p50 ${result.latencyMs.p50} ms p99 ${result.latencyMs.p99} ms`);
console.log(JSON.stringify(result));

await pub.close();
await consumer.close();
await conn.queueDelete({ queue: q.name });
await conn.close();
