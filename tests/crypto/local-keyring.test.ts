import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isKeyringError, KeyringError } from '../../src/crypto/keyring.ts';
import { LocalKeyring } from '../../src/crypto/local-keyring.ts';

const DAY = 86_400_000;
const dirs: string[] = [];
const tempFile = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyring-'));
  dirs.push(dir);
  return join(dir, 'sub', 'keyring.json');
};
const rejects = async (p: Promise<unknown>): Promise<KeyringError> => {
  try {
    await p;
  } catch (err) {
    assert.ok(isKeyringError(err), `expected a KeyringError, got ${String(err)}`);
    return err as KeyringError;
  }
  throw new Error('expected a rejection');
};
const flip = (ciphertext: string, at: number) => {
  const [scheme, v, body] = ciphertext.split(':') as [string, string, string];
  const raw = Buffer.from(body, 'base64');
  raw[at] = raw[at]! ^ 0x01;
  return `${scheme}:${v}:${raw.toString('base64')}`;
};

const file = suite('local keyring, file mode');
file.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

file('round trip, format local:v1:, unicode and empty plaintext', async () => {
  const ring = await LocalKeyring.open({ file: await tempFile() });
  for (const plain of ['1BJWap1sBu5QxdU…session', 'Привет 👋', '']) {
    const ct = await ring.encrypt(plain, 'connection:a:session');
    assert.match(ct, /^local:v1:[A-Za-z0-9+/]+=*$/);
    assert.not.ok(ct.includes(plain) && plain !== '');
    assert.is(await ring.decrypt(ct, 'connection:a:session'), plain);
  }
  // 12-byte nonce + 16-byte tag around the plaintext
  const ct = await ring.encrypt('abcd', 'x');
  assert.is(Buffer.from(ct.split(':')[2]!, 'base64').length, 12 + 4 + 16);
  assert.is.not(await ring.encrypt('abcd', 'x'), ct, 'a fresh nonce per encryption');
});

file('a ciphertext copied to another row (other context) does not decrypt', async () => {
  const ring = await LocalKeyring.open({ file: await tempFile() });
  const ct = await ring.encrypt('bot-token-123:SECRET', 'connection:a:bot_token');
  const err = await rejects(ring.decrypt(ct, 'connection:b:bot_token'));
  assert.is(err.reason, 'authentication');
  assert.is(err.code, 'INTERNAL');
  assert.is(err.retryable, false);
  assert.not.ok(err.message.includes('SECRET'));
  await rejects(ring.decrypt(ct)); // no context is a context too
});

file('tampered or truncated ciphertext fails with a clear error and no plaintext', async () => {
  const ring = await LocalKeyring.open({ file: await tempFile() });
  const ct = await ring.encrypt('my-2fa-password', 'c');
  for (const bad of [flip(ct, 0), flip(ct, 14), flip(ct, Buffer.from(ct.split(':')[2]!, 'base64').length - 1)]) {
    const err = await rejects(ring.decrypt(bad, 'c'));
    assert.is(err.reason, 'authentication');
    assert.match(err.message, /authentication failed/);
    assert.not.ok(err.message.includes('my-2fa-password'));
  }
  assert.is((await rejects(ring.decrypt('local:v1:AAAA', 'c'))).reason, 'authentication');
  assert.is((await rejects(ring.decrypt('vault:v1:AAAA', 'c'))).reason, 'malformed');
  assert.is((await rejects(ring.decrypt(ct.replace('local:v1:', 'local:v9:'), 'c'))).reason, 'unknown-version');
  assert.throws(() => ring.needsRewrap('garbage'), (e: unknown) => isKeyringError(e) && e.reason === 'malformed');
});

file('rotate: new version encrypts, old still decrypts, rewrap moves to the newest', async () => {
  const path = await tempFile();
  const ring = await LocalKeyring.open({ file: path });
  const old = await ring.encrypt('session-v1', 'ctx');
  assert.is(await ring.rotate(), 2);
  assert.is(ring.currentVersion, 2);
  const fresh = await ring.encrypt('session-v2', 'ctx');
  assert.match(fresh, /^local:v2:/);
  assert.is(await ring.decrypt(old, 'ctx'), 'session-v1');
  assert.ok(ring.needsRewrap(old));
  assert.not.ok(ring.needsRewrap(fresh));
  const moved = await ring.rewrap(old, 'ctx');
  assert.match(moved, /^local:v2:/);
  assert.is(await ring.decrypt(moved, 'ctx'), 'session-v1');
  assert.is(await ring.rewrap(moved, 'ctx'), moved, 'rewrap of a current ciphertext is a no-op');
  await rejects(ring.rewrap(old, 'other')); // rewrap checks the context as well
  // a second process opening the file later sees both versions
  const other = await LocalKeyring.open({ file: path });
  assert.is(other.currentVersion, 2);
  assert.is(await other.decrypt(old, 'ctx'), 'session-v1');
});

file('a version rotated by another process is picked up on decrypt', async () => {
  const path = await tempFile();
  const a = await LocalKeyring.open({ file: path });
  const b = await LocalKeyring.open({ file: path });
  await b.rotate();
  const ct = await b.encrypt('from-b', 'c');
  assert.is(await a.decrypt(ct, 'c'), 'from-b');
  assert.is(a.currentVersion, 2);
});

file('rotateIfDue respects the 7-day period with an injected clock', async () => {
  const path = await tempFile();
  const t0 = Date.UTC(2026, 5, 1);
  const ring = await LocalKeyring.open({ file: path, now: () => t0 });
  // another process that loaded the file at the same time and still believes v1 is newest
  const stale = await LocalKeyring.open({ file: path, now: () => t0 });
  assert.is(await ring.rotateIfDue(new Date(t0 + 7 * DAY - 1)), null);
  assert.is(ring.currentVersion, 1);
  assert.is(await ring.rotateIfDue(new Date(t0 + 7 * DAY)), 2);
  assert.is(await ring.rotateIfDue(new Date(t0 + 7 * DAY + 1000)), null);
  // it re-checks under the lock, must not add a second version for the same period, and reports the v2 it
  // learned about (its newest changed, so a rewrap is due)
  assert.is(await stale.rotateIfDue(new Date(t0 + 7 * DAY + 1000)), 2);
  assert.is(await stale.rotateIfDue(new Date(t0 + 7 * DAY + 2000)), null);
  assert.is(stale.currentVersion, 2);
  const data = JSON.parse(await readFile(path, 'utf8')) as { versions: { version: number; createdAt: string }[] };
  assert.equal(data.versions.map((v) => [v.version, v.createdAt]), [[1, new Date(t0).toISOString()], [2, new Date(t0 + 7 * DAY).toISOString()]]);
  const custom = await LocalKeyring.open({ file: await tempFile(), rotateDays: 1, now: () => t0 });
  assert.is(await custom.rotateIfDue(new Date(t0 + DAY)), 2);
});

file('keyring file is created 0600; a group/world-readable file is refused', async () => {
  const path = await tempFile();
  const ring = await LocalKeyring.open({ file: path });
  assert.is((await stat(path)).mode & 0o777, 0o600);
  await ring.rotate();
  assert.is((await stat(path)).mode & 0o777, 0o600, 'still 0600 after an atomic rewrite');
  await ring.ping();
  await chmod(path, 0o644);
  const err = await rejects(LocalKeyring.open({ file: path }));
  assert.is(err.reason, 'config');
  assert.match(err.message, /mode 0644.*readable by group\/others.*chmod 600/);
  await rejects(ring.ping());
  await chmod(path, 0o640);
  await rejects(LocalKeyring.open({ file: path }));
});

file('a corrupt keyring file is refused, never silently replaced', async () => {
  const path = await tempFile();
  await LocalKeyring.open({ file: path });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, '{"format":1,"versions":[]}', { mode: 0o600 });
  assert.match((await rejects(LocalKeyring.open({ file: path }))).message, /not a keyring file/);
});

file('keyrings opening the same new file at once end with the same keys (in process)', async () => {
  const path = await tempFile();
  const rings = await Promise.all(Array.from({ length: 8 }, () => LocalKeyring.open({ file: path })));
  const ct = await rings[0]!.encrypt('shared', 'c');
  for (const r of rings) assert.is(await r.decrypt(ct, 'c'), 'shared');
});

file('four processes creating and rotating the same new file at once lose no version', async () => {
  const path = await tempFile();
  const startAt = String(Date.now() + 1500); // children start in ~0.5-1 s; then all go together
  const fixture = new URL('./fixtures/open-and-rotate.ts', import.meta.url).pathname;
  const run = () => new Promise<{ version: number; ciphertext: string; pid: number }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, path, startAt], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errOut = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (errOut += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${errOut}`))));
  });
  const results = await Promise.all([run(), run(), run(), run()]);
  assert.equal(results.map((r) => r.version).sort(), [2, 3, 4, 5], 'each rotation got its own version');
  const ring = await LocalKeyring.open({ file: path });
  assert.is(ring.currentVersion, 5);
  for (const r of results) assert.is(await ring.decrypt(r.ciphertext, 'ctx'), `from ${r.pid}`);
  assert.is((await stat(path)).mode & 0o777, 0o600);
});

const env = suite('local keyring, KEYRING_KEY');
const masterKey = () => randomBytes(32).toString('base64');
env.after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

env('KEYRING_KEY with a file: data keys wrapped by it, no master in the file, wrong key refused', async () => {
  const key = masterKey();
  const path = await tempFile();
  const ring = await LocalKeyring.open({ masterKey: key, file: path });
  const ct = await ring.encrypt('token', 'c');
  const text = await readFile(path, 'utf8');
  assert.not.ok(text.includes(key));
  assert.not.ok('master' in JSON.parse(text));
  const again = await LocalKeyring.open({ masterKey: Buffer.from(key, 'base64'), file: path }); // raw bytes, as config.ts gives them
  assert.is(await again.decrypt(ct, 'c'), 'token');
  const wrong = await rejects(LocalKeyring.open({ masterKey: masterKey(), file: path }));
  assert.match(wrong.message, /wrong KEYRING_KEY/);
  assert.not.ok(wrong.message.includes(key));
  await rejects(LocalKeyring.open({ file: path })); // no master anywhere
  // a file that generated its own master cannot be combined with KEYRING_KEY
  const own = await tempFile();
  await LocalKeyring.open({ file: own });
  assert.match((await rejects(LocalKeyring.open({ masterKey: key, file: own }))).message, /own generated master/);
});

env('KEYRING_KEY must be base64 of exactly 32 bytes', async () => {
  for (const bad of [randomBytes(16).toString('base64'), 'not base64!!', randomBytes(33).toString('base64')]) {
    const err = await rejects(LocalKeyring.open({ masterKey: bad }));
    assert.match(err.message, /KEYRING_KEY must be base64 of exactly 32 bytes/);
  }
  assert.match((await rejects(LocalKeyring.open({ masterKey: randomBytes(31) }))).message, /exactly 32 bytes \(got 31\)/);
});

env('derived mode (KEYRING_KEY, no file): replicas agree, versions follow the calendar', async () => {
  const key = masterKey();
  const t = Date.UTC(2026, 0, 1) + 3 * DAY; // inside the first 7-day period
  const a = await LocalKeyring.open({ masterKey: key, now: () => t });
  const b = await LocalKeyring.open({ masterKey: key, now: () => t });
  assert.is(a.mode, 'derived');
  assert.is(a.currentVersion, 1);
  const v1 = await a.encrypt('session', 'c');
  assert.is(await b.decrypt(v1, 'c'), 'session');
  await rejects(b.decrypt(v1, 'd'));
  assert.is(await a.rotateIfDue(new Date(t + 3 * DAY)), null);
  assert.is(await a.rotateIfDue(new Date(t + 4 * DAY)), 2);
  const v2 = await a.encrypt('session', 'c');
  assert.match(v2, /^local:v2:/);
  assert.ok(a.needsRewrap(v1));
  assert.is(await b.decrypt(v2, 'c'), 'session', 'b derives v2 without being told');
  assert.match(await a.rewrap(v1, 'c'), /^local:v2:/);
  const err = await rejects(a.rotate());
  assert.match(err.message, /rotates by calendar only/);
  const other = await LocalKeyring.open({ masterKey: masterKey(), now: () => t });
  await rejects(other.decrypt(v1, 'c'));
});

file.run();
env.run();
