// Every PromQL expression in the Grafana dashboards and in the alert rules must name only metrics
// (and label names) that the service really exports, so a renamed metric breaks this test and not
// a dashboard at 3 a.m. Expressions are parsed with the PromQL grammar Prometheus' own UI uses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';
import { registry } from '../../src/observability/metrics.ts';
// Registered on import, like the app does when it starts the dispatcher.
import '../../src/webhooks/metrics.ts';

const root = new URL('../../', import.meta.url).pathname;
const dashboardsDir = join(root, 'ops/grafana/dashboards');

interface Selector { metric: string; labels: string[] }

// Grafana variables are not PromQL: give each a value of the right syntactic kind before parsing.
const substituteGrafanaVariables = (expr: string): string =>
  expr
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{?(\w+)\}?/g, 'var_$1');

const selectorsOf = (rawExpr: string): Selector[] => {
  const expr = substituteGrafanaVariables(rawExpr);
  const tree = parser.parse(expr);
  const found: Selector[] = [];
  const errors: string[] = [];
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(`at ${node.from}: "${expr.slice(Math.max(0, node.from - 10), node.to + 10)}"`);
      if (node.name !== 'VectorSelector') return;
      const metricNode = node.node.getChild('Identifier');
      const labels: string[] = [];
      const matchers = node.node.getChild('LabelMatchers');
      if (matchers) {
        const cursor = matchers.cursor();
        // Walk only this selector's matchers: label names sit two levels down (matcher → LabelName).
        cursor.iterate((n) => { if (n.name === 'LabelName') labels.push(expr.slice(n.from, n.to)); });
      }
      found.push({ metric: metricNode ? expr.slice(metricNode.from, metricNode.to) : '', labels });
    },
  });
  if (errors.length) throw new Error(`PromQL does not parse: ${rawExpr}\n  ${errors.join('\n  ')}`);
  return found;
};

// postgres_exporter's series the Postgres row reads (job="postgres"), with their labels, from the
// exporter's collectors: stat_database (numbackends), settings, locks, replication, stat_archiver.
const postgresExporter: Record<string, string[]> = {
  pg_stat_database_numbackends: ['datid', 'datname'],
  pg_settings_max_connections: ['server'],
  pg_locks_count: ['datname', 'mode'],
  pg_replication_lag_seconds: [],
  pg_stat_archiver_last_archive_age: [],
  pg_up: [],
};

// Names the service exports, with the label names each allows. Histograms expose _bucket (+le),
// _sum and _count; `up` is made by Prometheus itself for every target.
const exported = async (): Promise<Map<string, Set<string>>> => {
  const scrapeLabels = ['instance', 'job', 'env', 'namespace', 'pod', 'service', 'container', 'endpoint', 'role'];
  const out = new Map<string, Set<string>>([['up', new Set(scrapeLabels)]]);
  for (const [name, labels] of Object.entries(postgresExporter)) out.set(name, new Set([...labels, ...scrapeLabels]));
  for (const m of await registry.getMetricsAsJSON()) {
    const single = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined;
    const labels = new Set([...(single?.labelNames ?? []), ...scrapeLabels]);
    // prom-client types `type` as a numeric enum, but getMetricsAsJSON() returns the string name.
    if ((m.type as unknown as string) === 'histogram') {
      out.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      out.set(`${m.name}_sum`, labels);
      out.set(`${m.name}_count`, labels);
    } else {
      out.set(m.name, labels);
      // Default metrics such as nodejs_gc_duration_seconds carry their own fixed labels.
      for (const v of (m as { values?: Array<{ labels?: Record<string, unknown> }> }).values ?? []) {
        for (const l of Object.keys(v.labels ?? {})) labels.add(l);
      }
    }
  }
  return out;
};

const problemsIn = (where: string, expr: string, names: Map<string, Set<string>>): string[] =>
  selectorsOf(expr).flatMap(({ metric, labels }) => {
    if (!metric) return [`${where}: selector without a metric name in ${expr}`];
    const allowed = names.get(metric);
    if (!allowed) return [`${where}: metric ${metric} is not exported by the service`];
    return labels.filter((l) => !allowed.has(l)).map((l) => `${where}: metric ${metric} has no label ${l}`);
  });

interface Panel { title?: string; type?: string; targets?: Array<{ expr?: string }>; panels?: Panel[] }

const dashboardExprs = (): Array<{ where: string; expr: string }> =>
  readdirSync(dashboardsDir).filter((f) => f.endsWith('.json')).flatMap((file) => {
    const dash = JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as { panels: Panel[] };
    const flat = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
    return flat.flatMap((p) => {
      const targets = p.targets ?? [];
      if (targets.length === 0) return [{ where: `${file} "${p.title}"`, expr: '' }];
      return targets.map((t) => ({ where: `${file} "${p.title}"`, expr: t.expr ?? '' }));
    });
  });

const alertExprs = (): Array<{ where: string; expr: string }> => {
  const doc = parseYaml(readFileSync(join(root, 'ops/prometheus/alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }>;
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `alerts.yml ${r.alert ?? r.record}`, expr: r.expr })));
};

test('the extractor finds metric and label names, and reports unknown ones', async () => {
  const names = await exported();
  assert.equal(
    selectorsOf('sum by (state) (rate(foo_total{a="1", b=~"$kind"}[$__rate_interval])) / on() group_left up{job="x"}'),
    [{ metric: 'foo_total', labels: ['a', 'b'] }, { metric: 'up', labels: ['job'] }],
  );
  assert.equal(problemsIn('t', 'rate(no_such_metric_total[5m])', names), ['t: metric no_such_metric_total is not exported by the service']);
  assert.equal(problemsIn('t', 'integration_connections{status="error"}', names), ['t: metric integration_connections has no label status']);
  assert.equal(problemsIn('t', 'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))', names), []);
  assert.throws(() => selectorsOf('sum(rate(foo[5m])'), /does not parse/);
});

test('the service exports the default process metrics the dashboards use', async () => {
  const names = await exported();
  for (const n of ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'telegram_api_latency_seconds_bucket']) {
    assert.ok(names.has(n), `${n} missing from the registry`);
  }
});

test('every dashboard panel has a query and every query names exported metrics only', async () => {
  const names = await exported();
  const exprs = dashboardExprs();
  assert.ok(exprs.length >= 16, `expected the 16+ panel queries, found ${exprs.length}`);
  const problems = exprs.flatMap(({ where, expr }) => (expr.trim() ? problemsIn(where, expr, names) : [`${where}: panel without a query`]));
  assert.equal(problems, []);
});

test('a Postgres row shows connections, locks, replication lag and WAL archive age, from the postgres job', () => {
  const exprs = dashboardExprs().filter(({ expr }) => selectorsOf(expr).some((s) => s.metric in postgresExporter));
  const used = new Set(exprs.flatMap(({ expr }) => selectorsOf(expr).map((s) => s.metric)));
  for (const m of ['pg_stat_database_numbackends', 'pg_locks_count', 'pg_replication_lag_seconds', 'pg_stat_archiver_last_archive_age']) {
    assert.ok(used.has(m), `no panel shows ${m}`);
  }
  assert.ok(exprs.every(({ expr }) => expr.includes('job="postgres"')), 'Postgres panels select the postgres scrape job');
  const scraped = readFileSync(join(root, 'ops/prometheus/prometheus.yml'), 'utf8');
  assert.match(scraped, /job_name: postgres\b/);
});

test('the dashboards cover sessions, logins, sends, errors, queue, memory and HTTP', () => {
  const metricsUsed = new Set(dashboardExprs().flatMap(({ expr }) => selectorsOf(expr).map((s) => s.metric)));
  for (const m of [
    'integration_connections', 'telegram_messages_sent_total', 'integration_message_accept_to_sent_seconds_bucket',
    'telegram_api_latency_seconds_count', 'integration_queue_depth', 'integration_queue_oldest_age_seconds',
    'integration_connection_memory_bytes', 'http_request_duration_seconds_count', 'http_request_duration_seconds_bucket',
  ]) assert.ok(metricsUsed.has(m), `no panel shows ${m}`);
});

test('every alert rule names exported metrics only', async () => {
  const names = await exported();
  const exprs = alertExprs();
  assert.is(exprs.length, 14);
  assert.equal(exprs.flatMap(({ where, expr }) => problemsIn(where, expr, names)), []);
});

test.run();
