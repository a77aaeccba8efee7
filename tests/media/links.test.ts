import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openKeyring } from '../../src/crypto/keyring.ts';
import { MediaLinks } from '../../src/media/links.ts';

// Signed media links (src/media/links.ts): what one node signs another node with the same keyring key
// verifies; a link for another file, with a changed expiry, expired, or signed by another key is refused.

test('a link verifies on any node with the same keyring, for its file and until its expiry only', async () => {
  const key = randomBytes(32);
  const [a, b, other] = await Promise.all([openKeyring({ keyringKey: key }), openKeyring({ keyringKey: key }), openKeyring({ keyringKey: randomBytes(32) })]);
  let now = 1_800_000_000_000;
  const sql = undefined as never; // signing and verifying need no database
  const one = new MediaLinks(sql, a, 'https://svc.example', () => now);
  const two = new MediaLinks(sql, b, 'https://svc.example', () => now);
  const foreign = new MediaLinks(sql, other, 'https://svc.example', () => now);
  const id = randomUUID();
  const u = new URL(await one.sign(id));
  assert.is(`${u.origin}${u.pathname}`, `https://svc.example/v1/media/${id}`);
  const exp = Number(u.searchParams.get('exp'));
  const sig = u.searchParams.get('sig')!;
  assert.is(exp, now / 1000 + 3600);
  assert.ok(await two.valid(id, exp, sig), 'another node verifies it');
  assert.not.ok(await two.valid(randomUUID(), exp, sig), 'not for another file');
  assert.not.ok(await two.valid(id, exp + 3600, sig), 'not with a later expiry');
  assert.not.ok(await foreign.valid(id, exp, sig), 'not with another keyring');
  assert.not.ok(await two.valid(id, exp, 'junk'), 'not with junk');
  now += 3601_000;
  assert.not.ok(await two.valid(id, exp, sig), 'not after its expiry');
  await Promise.all([a.close(), b.close(), other.close()]);
});

test.run();
