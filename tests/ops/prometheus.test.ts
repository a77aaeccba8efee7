// The alert rules, their promtool unit tests, the scrape config and the Alertmanager routing,
// checked with the real tools (Debian packages prometheus and prometheus-alertmanager). A missing
// tool is a failure, not a skip: CI installs both.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const promDir = join(root, 'ops/prometheus');
const amConfig = join(root, 'ops/alertmanager/alertmanager.yml');

const run = (tool: string, args: string[], cwd = root): { code: number; out: string; stdout: string } => {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(`${tool} is not installed: apt-get install -y prometheus prometheus-alertmanager`);
  }
  if (r.error) throw r.error;
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
};

interface Rule { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
const rules = (): Rule[] =>
  (parseYaml(readFileSync(join(promDir, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

test('promtool check rules accepts alerts.yml', () => {
  const r = run('promtool', ['check', 'rules', 'alerts.yml'], promDir);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: 14 rules found/);
});

test('promtool unit tests pass (firing and not firing for every alert)', () => {
  const r = run('promtool', ['test', 'rules', 'alerts.test.yml'], promDir);
  assert.is(r.code, 0, r.out);
  const tested = readFileSync(join(promDir, 'alerts.test.yml'), 'utf8');
  for (const { alert } of rules()) {
    assert.ok(new RegExp(`alertname: ${alert}\\s+exp_alerts: \\[\\]`).test(tested), `${alert} has no not-firing case`);
    assert.ok(new RegExp(`alertname: ${alert}\\s+exp_alerts:\\s+- exp_labels`).test(tested), `${alert} has no firing case`);
  }
});

test('the unit tests catch a loosened threshold', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alerts-'));
  try {
    copyFileSync(join(promDir, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
    const loosened = readFileSync(join(promDir, 'alerts.yml'), 'utf8').replace('>= 0.10', '>= 0.30');
    writeFileSync(join(dir, 'alerts.yml'), loosened);
    const r = run('promtool', ['test', 'rules', 'alerts.test.yml'], dir);
    assert.is.not(r.code, 0);
    assert.match(r.out, /alertname: DegradedState/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every alert has severity, summary, description and a runbook anchor that exists', () => {
  const troubleshooting = readFileSync(join(root, 'docs/troubleshooting.md'), 'utf8');
  // GitHub-style anchors: lower-case heading text, spaces to dashes, punctuation dropped.
  const anchors = new Set([...troubleshooting.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
    m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
  const names = rules().map((r) => r.alert);
  assert.equal(names.sort(), ['AuthFailureSpike', 'AuthKeyDuplicated', 'BreakerStorm', 'DaemonDown', 'DeadLettersAppearing', 'DegradedState',
    'HighErrorRate', 'HighHttp5xxRate', 'KeyringFailures', 'MemoryBudgetPressure', 'QueueBackingUp', 'ReadinessFailing',
    'WebhookDispatchLagging', 'WebhookEndpointsFailing']);
  for (const r of rules()) {
    assert.ok(['critical', 'warning'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
    assert.ok((r.annotations?.summary ?? '').length > 10, `${r.alert}: summary`);
    assert.ok((r.annotations?.description ?? '').length > 20, `${r.alert}: description`);
    const url = r.annotations?.runbook_url ?? '';
    const [path, anchor] = url.split('#');
    assert.is(path, 'docs/troubleshooting.md', `${r.alert}: runbook_url ${url}`);
    assert.ok(anchor && anchors.has(anchor), `${r.alert}: anchor #${anchor} not in docs/troubleshooting.md`);
  }
});

test('promtool check config accepts prometheus.yml and it scrapes the job DaemonDown watches', () => {
  const r = run('promtool', ['check', 'config', 'prometheus.yml'], promDir);
  assert.is(r.code, 0, r.out);
  const cfg = parseYaml(readFileSync(join(promDir, 'prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ job_name: string }> };
  assert.ok(cfg.scrape_configs.some((s) => s.job_name === 'integration-service'));
  assert.match(readFileSync(join(promDir, 'alerts.yml'), 'utf8'), /up\{job="integration-service"\}/);
});

test('amtool check-config accepts alertmanager.yml', () => {
  const r = run('amtool', ['check-config', amConfig]);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /inhibit rules/);
});

test('critical alerts page and reach chat, warnings reach chat only', () => {
  const route = (labels: string[]) => {
    const r = run('amtool', ['config', 'routes', 'test', `--config.file=${amConfig}`, ...labels]);
    assert.is(r.code, 0, r.out);
    return r.stdout.trim();
  };
  assert.is(route(['alertname=DaemonDown', 'severity=critical']), 'pager,team-chat');
  assert.is(route(['alertname=QueueBackingUp', 'severity=warning']), 'team-chat');
});

test.run();
