// Every regular expression of src/ goes through a ReDoS checker (recheck: automata theory where it
// can, fuzzing otherwise, e.g. with lookbehinds). A regex whose failing attempts rescan the input
// (`eyJ[\w-]*\.…` on 'eyJ-eyJ-…', `\/+$` on '////x') is quadratic in V8's backtracking engine: one
// 80 KB request body held the event loop 3.5 s through the log redaction rules (issue 12).
// Regexes are collected by parsing the TypeScript, so none is missed for its quoting or line breaks.
import { check, type Diagnostics } from 'recheck';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { regexesOfSrc as collect, type Found } from './helpers/regexes.ts';

/**
 * Regexes the checker flags that are safe for a reason it cannot see, keyed `source/flags`, each
 * with that reason. Empty today: every flagged regex was rewritten instead.
 */
const allowed: Record<string, string> = {};

const describe = (d: Diagnostics): string =>
  d.status === 'vulnerable' ? `${d.complexity.summary}, attack ${d.attack.pattern}`
    : d.status === 'unknown' ? `checker gave up: ${d.error.kind}${'message' in d.error ? ` ${d.error.message}` : ''}` : 'safe';

test('the collector sees the regexes of src/ (parsing works)', () => {
  const { found } = collect();
  assert.ok(found.length > 50, `only ${found.length} regexes found`);
  assert.ok(found.some((r) => r.where.startsWith('src/observability/redact.ts')));
});

test('no regex of src/ is ReDoS-vulnerable (recheck); allowed ones each give a reason', async () => {
  const { found, dynamic } = collect();
  assert.equal(dynamic, [], 'RegExp built from a non-literal: rewrite it as a literal or allow it here with a reason');
  const byKey = new Map<string, Found[]>();
  for (const r of found) byKey.set(`${r.source}/${r.flags}`, [...(byKey.get(`${r.source}/${r.flags}`) ?? []), r]);
  const problems: string[] = [];
  for (const [key, all] of byKey) {
    const { source, flags } = all[0]!;
    // 60 s: the automaton check of a long alternation takes ~6 s on this machine's native backend.
    const d = await check(source, flags, { timeout: 60_000 });
    if (d.status !== 'safe' && !allowed[key]) problems.push(`/${source}/${flags} at ${all.map((r) => r.where).join(', ')}: ${describe(d)}`);
  }
  const stale = Object.keys(allowed).filter((key) => !byKey.has(key));
  assert.equal(stale, [], 'allow-list entries that match no regex of src/ any more');
  assert.equal(problems, []);
});

test.run();
