// The upload client of `bench:send -- --media`, in its own process so that its buffers never count in
// the daemon's memory: `count` uploads of `size` bytes per token, `concurrency` at a time, each body
// streamed from one 64 KiB block (the client holds no file either). Prints one JSON line:
// {"uploads": [[tokenIndex, uploadId], …], "ms": [per upload]}.
import { randomBytes } from 'node:crypto';

const [url, tokensJson, sizeArg, countArg, concurrencyArg] = process.argv.slice(2);
const tokens = JSON.parse(tokensJson!) as string[];
const size = Number(sizeArg);
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const block = randomBytes(64 * 1024);

async function* body(): AsyncGenerator<Uint8Array> {
  // A different first block per upload: equal files are fine, but their digests then differ in the report.
  yield randomBytes(Math.min(size, block.length));
  for (let sent = block.length; sent < size; sent += block.length) yield block.subarray(0, Math.min(block.length, size - sent));
}

const jobs = tokens.flatMap((_, t) => Array.from({ length: count }, () => t));
const uploads: [number, string][] = [];
const ms: number[] = [];
await Promise.all(Array.from({ length: concurrency }, async () => {
  for (let t = jobs.shift(); t !== undefined; t = jobs.shift()) {
    const started = performance.now();
    const res = await fetch(`${url}/v1/uploads?filename=bench.bin`, {
      method: 'POST', body: body() as never, duplex: 'half',
      headers: { authorization: `Bearer ${tokens[t]}`, 'content-type': 'application/octet-stream', 'content-length': String(size) },
    } as RequestInit);
    const answer = (await res.json()) as { id?: string };
    if (res.status !== 201 || !answer.id) throw new Error(`upload ${res.status} ${JSON.stringify(answer)}`);
    uploads.push([t, answer.id]);
    ms.push(performance.now() - started);
  }
}));
process.stdout.write(`${JSON.stringify({ uploads, ms })}\n`);
