import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { maxDelayMs, reconnectDelay } from '../../src/console/app/backoff.ts';

test('delays double from 1 s and stop at 30 s, drawn from the upper half of each window', () => {
  assert.equal([0, 1, 2, 3, 4, 5, 9].map((a) => reconnectDelay(a, () => 1)), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal([0, 1, 5].map((a) => reconnectDelay(a, () => 0)), [500, 1000, 15000]);
  for (let i = 0; i < 200; i++) {
    const d = reconnectDelay(i % 12);
    assert.ok(d >= 500 && d <= maxDelayMs, String(d));
  }
});

test.run();
