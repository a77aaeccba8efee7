// GET /v1/me/export holds one page of rows, not the owner's history: an owner with 50,000 messages
// (~40 MB of JSON) is exported over a real socket while the client reads slowly, and the heap that
// survives a full GC in the middle of the transfer stays a small fraction of the document. The
// former in-memory export held the whole document (and its rows) at that point: growth ≥ its size.
// Nothing here is timed; the bound is on bytes, with a wide margin (the measured growth is ~1-3 MB).
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { routesServer, type RoutesServer } from './routes-harness.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let t: RoutesServer;
test.before(async () => { t = await routesServer(); });
test.after(async () => { await t.close(); });

const messages = 50_000;
const mb = (n: number) => Math.round((n / 1_048_576) * 10) / 10;

function heapAfterGc(): number {
  gc();
  gc(); // the second pass collects what the first one's finalizers released
  return process.memoryUsage().heapUsed;
}

test(`export of ${messages.toLocaleString('en')} messages: heap growth mid-transfer bounded by a page, not by the document`, async () => {
  const sub = `m-${randomUUID()}`;
  const conn = randomUUID();
  await t.sql`insert into connections (id, owner, platform, kind, status, shard) values (${conn}, ${sub}, 'telegram', 'bot', 'active', 0)`;
  // ~700 bytes of JSON a message (a 500-character text and the other fields).
  await t.sql`insert into messages (id, owner, connection_id, chat, text, status, shard)
              select gen_random_uuid(), ${sub}, ${conn}, '@memory_chan', repeat('x', 480) || ' message ' || n, 'sent', 0
              from generate_series(1, ${messages}) n`;
  await t.server.start();
  const { port } = t.server.info;

  const baseline = heapAfterGc();
  let received = 0;
  let midGrowth: number | undefined;
  let tail = '';
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/me/export', headers: t.as(sub) }, (res) => {
      assert.is(res.statusCode, 200);
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        tail = (tail + chunk.toString('latin1')).slice(-16);
        if (midGrowth === undefined && received > 15 * 1_048_576) {
          // A slow client: stop reading, measure what the server holds meanwhile, read on.
          res.pause();
          setImmediate(() => {
            midGrowth = heapAfterGc() - baseline;
            if (process.env.EXPORT_MEMORY_REPORT) console.log(`mid-transfer heap growth ${mb(midGrowth)} MB; rss ${mb(process.memoryUsage().rss)} MB`);
            res.resume();
          });
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  await t.server.stop();
  if (process.env.EXPORT_MEMORY_REPORT) console.log(`document ${mb(received)} MB`);
  assert.ok(received > 30 * 1_048_576, `the document is large (${mb(received)} MB)`);
  assert.ok(tail.endsWith(']}'), 'the document is complete');
  assert.ok(midGrowth !== undefined);
  // One page of 500 messages is ~0.4 MB of rows and JSON; allow 20x that, still under a quarter of the document.
  assert.ok(midGrowth! < 8 * 1_048_576, `heap growth mid-transfer ${mb(midGrowth!)} MB for a ${mb(received)} MB document`);
});

test.run();
