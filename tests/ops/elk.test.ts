// ELK pieces fit together and fit the logs the service really writes: Filebeat decodes the ECS JSON
// lines into the event root and ships to the port Logstash listens on; Logstash writes the data
// stream the index template matches; the template uses the 30-day ILM policy; a line produced by
// the service's own logFormat maps onto the template; the Logstash redaction safety net masks
// tokens, JWTs and phone numbers (its gsub patterns evaluated here with the same regex syntax).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { logFormat } from '../../src/observability/logger.ts';

const root = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, 'ops/elk', p), 'utf8');
// Parsed YAML/JSON, walked by path: loosely typed on purpose, the assertions do the checking.
type Obj = Record<string, any>;

const filebeat = parse(read('filebeat.yml')) as Obj;
const pipeline = read('logstash/integration-service.conf');
const template = JSON.parse(read('index-template.json')) as Obj;
const ilm = JSON.parse(read('ilm-policy.json')) as Obj;

const setting = (name: string) => pipeline.match(new RegExp(`${name}\\s*=>\\s*"?([^"\\s]+)"?`))?.[1];

test('Filebeat decodes ECS JSON into the event root and ships to the Logstash beats port', () => {
  const input = filebeat['filebeat.inputs'][0];
  const ndjson = input.parsers.find((p: Obj) => p.ndjson)?.ndjson;
  assert.ok(input.parsers[0].container !== undefined, 'container parser first');
  assert.equal({ target: ndjson.target, expand_keys: ndjson.expand_keys, overwrite_keys: ndjson.overwrite_keys }, { target: '', expand_keys: true, overwrite_keys: true });
  const [host] = filebeat['output.logstash'].hosts as string[];
  assert.is(host!.split(':')[1], setting('port'));
});

test('Logstash writes the data stream the index template matches, and the template uses the 30-day ILM policy', () => {
  const stream = `${setting('data_stream_type')}-${setting('data_stream_dataset')}-${setting('data_stream_namespace')}`;
  assert.is(stream, 'logs-integration_service-production');
  const patterns = (template.index_patterns as string[]).map((p) => new RegExp(`^${p.replace(/[.+]/g, '\\$&').replace(/\*/g, '.*')}$`));
  assert.ok(patterns.some((r) => r.test(stream)), `${stream} not matched by ${template.index_patterns}`);
  assert.ok(template.data_stream, 'template must create a data stream');
  const policyName = template.template.settings['index.lifecycle.name'];
  assert.match(ilm.policy._meta.description, new RegExp(`PUT _ilm/policy/${policyName}\\b`));
  assert.is(ilm.policy.phases.delete.min_age, '30d');
  assert.ok(ilm.policy.phases.delete.actions.delete);
  assert.ok(ilm.policy.phases.hot.actions.rollover.max_age);
});

// Filebeat's expand_keys: {"log.level": "info"} becomes {"log": {"level": "info"}}.
const expand = (flat: Obj): Obj => {
  const out: Obj = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    let cur = out;
    for (const p of parts.slice(0, -1)) cur = cur[p] ??= {};
    cur[parts.at(-1)!] = v && typeof v === 'object' && !Array.isArray(v) ? expand(v) : v;
  }
  return out;
};

const leaves = (o: Obj, prefix = ''): Array<[string, unknown]> =>
  Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? leaves(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]]));

const mappingOf = (path: string): string | undefined => {
  let props: Obj | undefined = template.template.mappings.properties;
  const parts = path.split('.');
  for (const [i, p] of parts.entries()) {
    const m = props?.[p];
    if (!m) return undefined;
    if (i === parts.length - 1) return m.type;
    props = m.properties;
  }
  return undefined;
};

test("a line from the service's own log format maps onto the template", () => {
  const info = { level: 'warn', message: 'send failed', connectionId: 'c-1', code: 'TG_API_429', err: new Error('flood wait') };
  const line = logFormat.transform(info) as Obj;
  const json = JSON.parse(line[Symbol.for('message') as unknown as string]) as Obj;
  const doc = expand(json);
  assert.is(doc.log.level, 'warn');
  assert.ok(!Number.isNaN(Date.parse(doc['@timestamp'])), '@timestamp is a date');
  assert.ok(doc.ecs.version);
  for (const [path, value] of leaves(doc)) {
    const type = mappingOf(path);
    if (!type) continue; // dynamic mapping
    if (type === 'date') assert.ok(!Number.isNaN(Date.parse(String(value))), path);
    else assert.type(value, 'string', `${path} mapped as ${type} but is ${typeof value}`);
  }
  for (const p of ['@timestamp', 'log.level', 'message', 'ecs.version', 'connectionId']) assert.ok(mappingOf(p), `${p} not mapped`);
});

test('the Logstash safety net masks bot tokens, JWTs and phone numbers', () => {
  const gsub = pipeline.match(/gsub\s*=>\s*\[([\s\S]*?)\]\s*\}/)?.[1] ?? '';
  const quoted = [...gsub.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
  assert.is(quoted.length % 3, 0);
  const rules: Array<[RegExp, string]> = [];
  for (let i = 0; i < quoted.length; i += 3) {
    assert.is(quoted[i], 'message');
    rules.push([new RegExp(quoted[i + 1]!, 'g'), quoted[i + 2]!.replace(/\\(\d)/g, '$$$1')]);
  }
  const scrub = (s: string) => rules.reduce((acc, [re, to]) => acc.replace(re, to), s);
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
  const out = scrub(`bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw failed for ${jwt} calling +447700900123`);
  assert.not.match(out, /AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/);
  assert.not.match(out, /eyJzdWIi/);
  assert.match(out, /\+44\*{6}0123/);
  assert.not.match(out, /7700900/);
  assert.is(scrub('connection c-1 is active'), 'connection c-1 is active');
});

test.run();
