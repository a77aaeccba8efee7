import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shardRanges } from '../../src/console/app/shard-ranges.ts';

test('shard lists on the cluster page read as ranges, in order, whatever order the server gave', () => {
  assert.is(shardRanges([]), '');
  assert.is(shardRanges([5]), '5');
  assert.is(shardRanges([10, 9, 7, 3, 2, 1, 0]), '0–3, 7, 9–10');
  assert.is(shardRanges(Array.from({ length: 64 }, (_, i) => i)), '0–63');
  assert.is(shardRanges([0, 2, 4, 63]), '0, 2, 4, 63');
});

test.run();
