import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryBudget, type Accountable } from '../../src/supervisor/memory-budget.ts';

const MB = 1024 * 1024;
const entry = (id: string, bytes: number, trimTo?: number): Accountable & { trimmed: number; size: number } => {
  const e = {
    id, size: bytes, trimmed: 0,
    bytes: () => e.size,
    trim: () => { e.trimmed++; if (trimTo !== undefined) e.size = trimTo; },
  };
  return e;
};

test('under budget: nothing trimmed, nothing stopped', () => {
  const b = new MemoryBudget({ budgetBytes: 50 * MB });
  const a = entry('a', 10 * MB);
  assert.equal(b.check([a]), []);
  assert.is(a.trimmed, 0);
  assert.is(b.bytesOf('a'), 10 * MB);
});

test('over budget but trimmable: trimmed, kept', () => {
  const b = new MemoryBudget({ budgetBytes: 50 * MB });
  const a = entry('a', 80 * MB, 5 * MB);
  assert.equal(b.check([a]), []);
  assert.is(a.trimmed, 1);
  assert.is(b.bytesOf('a'), 5 * MB);
});

test('still over after trims on consecutive checks: reported, neighbours untouched', () => {
  const b = new MemoryBudget({ budgetBytes: 50 * MB, graceChecks: 2 });
  const hog = entry('hog', 80 * MB);
  const ok = entry('ok', 1 * MB);
  assert.equal(b.check([hog, ok]), []);
  assert.equal(b.check([hog, ok]), ['hog']);
  assert.is(ok.trimmed, 0);
});

test('a hog that recovers between checks loses its strike', () => {
  const b = new MemoryBudget({ budgetBytes: 50 * MB, graceChecks: 2 });
  const hog = entry('hog', 80 * MB);
  b.check([hog]);
  hog.size = 1 * MB;
  b.check([hog]);
  hog.size = 80 * MB;
  assert.equal(b.check([hog]), []);
});

test('admission refused near the process limit', () => {
  let used = 100 * MB;
  const b = new MemoryBudget({ budgetBytes: 50 * MB, processLimitBytes: 1000 * MB, heapUsed: () => used });
  assert.ok(b.canAdmit());
  used = 950 * MB;
  assert.not.ok(b.canAdmit());
});

test.run();
