import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { randomIdFor } from '../../../src/platforms/telegram/random-id.ts';

test('random_id is stable per message id, positive and within 63 bits', () => {
  const id = randomUUID();
  assert.is(randomIdFor(id), randomIdFor(id));
  const seen = new Set<bigint>();
  for (let i = 0; i < 10_000; i++) {
    const r = randomIdFor(randomUUID());
    assert.ok(r > 0n && r < 1n << 63n);
    seen.add(r);
  }
  assert.is(seen.size, 10_000);
});

test('known value (other implementations must derive the same id)', () => {
  // sha256("a") starts ca978112ca1bbdca; the top bit is cleared → 4a978112ca1bbdca
  assert.is(randomIdFor('a'), 0x4a978112ca1bbdcan);
});

test.run();
