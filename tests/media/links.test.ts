import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openKeyring } from '../../src/crypto/keyring.ts';
import type { Keyring } from '../../src/crypto/port.ts';
import { MediaLinks } from '../../src/media/links.ts';
import { createTestDatabase } from '../helpers/db.ts';

// Signed media links (src/media/links.ts): what one node signs another node with the same keyring key
// (and database) verifies; a link for another file, with a changed expiry, expired, or signed by
// another key is refused.

test('a link verifies on any node with the same keyring, for its file and until its expiry only', async () => {
  const key = randomBytes(32);
  const [a, b, other] = await Promise.all([openKeyring({ keyringKey: key }), openKeyring({ keyringKey: key }), openKeyring({ keyringKey: randomBytes(32) })]);
  // Two services: nodes one and two share a database; `foreign` runs on its own with another keyring.
  const [db, otherDb] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  try {
    let now = 1_800_000_000_000;
    const one = new MediaLinks(db.sql, a, 'https://svc.example', () => now);
    const two = new MediaLinks(db.sql, b, 'https://svc.example', () => now);
    const foreign = new MediaLinks(otherDb.sql, other, 'https://svc.example', () => now);
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
  } finally {
    await Promise.all([a.close(), b.close(), other.close(), db.drop(), otherDb.drop()]);
  }
});

test('checking links makes no keyring call once the key is read: junk on the public route counts no keyring failure', async () => {
  const keyring = await openKeyring({ keyringKey: randomBytes(32) });
  const db = await createTestDatabase();
  let calls = 0;
  const counted: Keyring = {
    ...keyring,
    encrypt: (p, c) => { calls++; return keyring.encrypt(p, c); },
    decrypt: (t, c) => { calls++; return keyring.decrypt(t, c); },
  };
  try {
    const links = new MediaLinks(db.sql, counted, 'https://svc.example');
    const u = new URL(await links.sign(randomUUID()));
    const read = calls;
    const exp = Number(u.searchParams.get('exp'));
    for (let i = 0; i < 20; i++) assert.not.ok(await links.valid(randomUUID(), exp, randomBytes(40).toString('base64url')));
    assert.ok(await links.valid(u.pathname.split('/').at(-1)!, exp, u.searchParams.get('sig')!));
    assert.is(calls, read, 'no keyring call after the key was read');
  } finally {
    await Promise.all([keyring.close(), db.drop()]);
  }
});

test.run();
