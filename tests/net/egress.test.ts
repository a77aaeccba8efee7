// The SSRF guard (src/net/egress.ts): refused URLs never open a socket; names are judged on the
// address DNS gives at connect time (a fixed lookup table stands in for DNS); EGRESS_ALLOW_HOSTS
// admits http and private addresses for the hosts it names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '../../src/errors.ts';
import { Egress, forbiddenRange, type Lookup } from '../../src/net/egress.ts';

interface Local { server: Server; port: number; connections: number; requests: string[] }

async function local(): Promise<Local> {
  const l: Local = { server: createServer((req, res) => {
    l.requests.push(req.url ?? '');
    if (req.url === '/redirect-private') { res.writeHead(302, { location: 'https://10.0.0.1/x' }); return res.end(); }
    if (req.url === '/redirect-http') { res.writeHead(302, { location: `http://127.0.0.1:${l.port}/file` }); return res.end(); }
    res.end('hello');
  }), port: 0, connections: 0, requests: [] };
  l.server.on('connection', () => { l.connections++; });
  await new Promise<void>((r) => l.server.listen(0, '127.0.0.1', r));
  l.port = (l.server.address() as AddressInfo).port;
  return l;
}

/** A DNS stand-in: names map to fixed addresses; `calls` records every lookup. */
function table(entries: Record<string, string[]>): Lookup & { calls: string[] } {
  const calls: string[] = [];
  const fn = ((hostname, options, callback) => {
    calls.push(hostname);
    const addrs = entries[hostname];
    if (!addrs) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
    const all = addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    if (options.all) return callback(null, all);
    callback(null, all[0]!.address, all[0]!.family);
  }) as Lookup & { calls: string[] };
  fn.calls = calls;
  return fn;
}

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, AppError, `an AppError, got ${(err as Error).message}`);
    assert.is((err as AppError).code, 'EGRESS_FORBIDDEN');
    return (err as AppError).message;
  }
  throw new Error('was not refused');
}

test('address ranges: only public unicast passes, IPv4-mapped forms judged as IPv4', () => {
  for (const [addr, range] of [
    ['127.0.0.1', 'loopback'], ['10.0.0.1', 'private'], ['172.16.5.4', 'private'], ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'], ['100.64.0.1', 'carrierGradeNat'], ['100.100.100.200', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'], ['0.0.0.0', 'unspecified'], ['255.255.255.255', 'broadcast'],
    ['::1', 'loopback'], ['::', 'unspecified'], ['fe80::1', 'linkLocal'], ['fd00:ec2::254', 'uniqueLocal'], ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'], ['::ffff:169.254.169.254', 'linkLocal'], ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::a00:1', 'rfc6052'], ['2002:7f00:1::', '6to4'], ['not-an-ip', 'invalid'],
  ] as const) assert.is(forbiddenRange(addr), range, addr);
  for (const addr of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.is(forbiddenRange(addr), undefined, addr);
});

test('check(): https only, literal private and metadata addresses refused, no DNS', async () => {
  const lookup = table({});
  const egress = new Egress({ lookup });
  try {
    assert.match(await refused(Promise.resolve().then(() => egress.check('http://127.0.0.1/file'))), /https only/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('https://10.0.0.1/file'))), /private/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('https://169.254.169.254/latest/meta-data/'))), /linkLocal/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('https://[::ffff:127.0.0.1]/file'))), /loopback/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('https://[::1]:8443/file'))), /loopback/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('ftp://example.com/file'))), /ftp/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('https://user:pw@example.com/file'))), /credentials/);
    assert.match(await refused(Promise.resolve().then(() => egress.check('not a url'))), /not a URL/);
    assert.is(egress.check('https://example.com/a.png').hostname, 'example.com', 'a public name passes check (judged at connect)');
    assert.equal(lookup.calls, [], 'check() never resolves names');
  } finally {
    await egress.close();
  }
});

test('fetch(): refused URLs open no socket', async () => {
  const srv = await local();
  const egress = new Egress({ lookup: table({}) });
  try {
    await refused(egress.fetch(`http://127.0.0.1:${srv.port}/file`));
    await refused(egress.fetch(`https://127.0.0.1:${srv.port}/file`));
    await refused(egress.fetch(`https://[::ffff:127.0.0.1]:${srv.port}/file`));
    // Past check(): the dispatcher refuses a literal address by itself too (callers that use undici directly).
    const direct = await egress.dispatcher.request({ origin: `https://127.0.0.1:${srv.port}`, path: '/file', method: 'GET' }).then(() => 'answered', (e: unknown) => e);
    assert.instance(direct, AppError);
    assert.is((direct as AppError).code, 'EGRESS_FORBIDDEN');
    assert.is(srv.connections, 0, 'no connection reached the local server');
  } finally {
    await egress.close();
    srv.server.close();
  }
});

test('fetch(): a name resolving to a forbidden address is refused at connect time, before any socket', async () => {
  const srv = await local();
  const lookup = table({
    'metadata.test': ['169.254.169.254'], 'rebind.test': ['127.0.0.1'], 'mixed.test': ['93.184.216.34', '10.0.0.1'], 'v6.test': ['::ffff:127.0.0.1'],
  });
  const egress = new Egress({ lookup });
  try {
    assert.match(await refused(egress.fetch('https://metadata.test/latest/meta-data/')), /metadata\.test resolves to a linkLocal address/);
    assert.match(await refused(egress.fetch(`https://rebind.test:${srv.port}/file`)), /loopback/);
    assert.match(await refused(egress.fetch('https://mixed.test/file')), /private/, 'one forbidden address among several refuses the name');
    assert.match(await refused(egress.fetch(`https://v6.test:${srv.port}/file`)), /loopback/);
    assert.ok(lookup.calls.includes('metadata.test') && lookup.calls.includes('rebind.test'), 'the names were resolved at connect time');
    assert.is(srv.connections, 0, 'the local server behind rebind.test saw no connection');
  } finally {
    await egress.close();
    srv.server.close();
  }
});

test('EGRESS_ALLOW_HOSTS: a named host may use http and a private address; others stay refused', async () => {
  const srv = await local();
  const lookup = table({ 'media.test': ['127.0.0.1'] });
  const egress = new Egress({ allowHosts: [`127.0.0.1:${srv.port}`, 'media.test'], lookup });
  try {
    const res = await egress.fetch(`http://127.0.0.1:${srv.port}/file`);
    assert.is(res.status, 200);
    assert.is(await res.text(), 'hello');
    const byName = await egress.fetch(`http://media.test:${srv.port}/file`);
    assert.is(await byName.text(), 'hello', 'an allowed name connects wherever it resolves');
    await refused(egress.fetch(`http://127.0.0.1:${srv.port + 1}/file`)); // same host, another port: not named
    // A redirect is judged like a first URL: to a private address it is refused; to an allowed host it is followed.
    await refused(egress.fetch(`http://127.0.0.1:${srv.port}/redirect-private`, { maxRedirects: 2 }));
    const followed = await egress.fetch(`http://127.0.0.1:${srv.port}/redirect-http`, { maxRedirects: 2 });
    assert.is(await followed.text(), 'hello');
    const notFollowed = await egress.fetch(`http://127.0.0.1:${srv.port}/redirect-http`);
    assert.is(notFollowed.status, 302, 'maxRedirects 0: a 3xx is the answer');
    await notFollowed.body?.cancel();
  } finally {
    await egress.close();
    srv.server.close();
  }
});

test.run();
