import { createServer, connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coalesceWrites } from '../../src/net/coalesce-writes.ts';

const turn = () => new Promise((r) => setImmediate(r));

async function pair(): Promise<{ client: Socket; received: () => string; close: () => void }> {
  let data = '';
  let peer: Socket | undefined;
  const server = createServer((s) => { peer = s; s.setEncoding('utf8').on('data', (d: string) => { data += d; }); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  return { client, received: () => data, close: () => { client.destroy(); peer?.destroy(); server.close(); } };
}

test('writes of one turn are held corked and leave together at the end of the turn, in order', async () => {
  const { client, received, close } = await pair();
  try {
    coalesceWrites(client);
    coalesceWrites(client); // a second call changes nothing
    client.write('a');
    client.write('b');
    client.write('c');
    assert.is(client.writableCorked, 1);
    assert.is(client.writableLength, 3);
    await turn();
    assert.is(client.writableCorked, 0);
    for (let i = 0; i < 100 && received().length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    assert.is(received(), 'abc');
    // The next turn corks again; a library's own cork/uncork inside it does not flush early.
    client.cork();
    client.write('d');
    client.uncork();
    assert.is(client.writableCorked, 1);
    await turn();
    for (let i = 0; i < 100 && received().length < 4; i++) await new Promise((r) => setTimeout(r, 5));
    assert.is(received(), 'abcd');
  } finally {
    close();
  }
});

test('end() flushes what is corked', async () => {
  const { client, received, close } = await pair();
  try {
    coalesceWrites(client);
    client.write('x');
    client.end('y');
    for (let i = 0; i < 100 && received().length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.is(received(), 'xy');
  } finally {
    close();
  }
});

test.run();
