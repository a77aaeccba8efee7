// compose.yaml checked without Docker (none runs here): the Compose Specification schema and the
// safety rules of dclint, then the cross-checks a newcomer would otherwise find by hand: every
// Prometheus target and the Alertmanager resolve to a compose service and a port it exposes,
// Grafana's data source and dashboard directory are where its provisioning says, every dashboard's
// data source exists, every bind mount exists in the repository, Vault runs as a server on file storage,
// and the `cluster` profile is three daemons that differ only in NODE_ID behind a load balancer.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { DCLinter } from 'dclint';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');

interface Service {
  image?: string; build?: unknown; ports?: string[]; expose?: Array<string | number>; volumes?: string[]; command?: string[] | string;
  entrypoint?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown> | string[]; profiles?: string[]; healthcheck?: unknown;
  networks?: Record<string, { aliases?: string[]; ipv4_address?: string } | null>; stop_grace_period?: string;
}
const compose = parse(read('compose.yaml'), { merge: true }) as {
  services: Record<string, Service>; volumes: Record<string, unknown>;
  networks: Record<string, { ipam?: { config: Array<{ subnet: string; ip_range?: string }> } }>;
};
const services = compose.services;

// Style preferences of dclint that are not ours (order of keys and services, quote style); every
// rule about safety and correctness stays on (unbound published ports, image tags, duplicates, …).
const styleOnly = {
  'service-keys-order': 0, 'services-alphabetical-order': 0, 'top-level-properties-order': 0,
  'require-quotes-in-ports': 0, 'service-dependencies-alphabetical-order': 0,
} as const;
interface LintMessage { rule: string; line: number; message: string }
const lint = (file: string): { messages: LintMessage[] } =>
  new DCLinter({ rules: styleOnly, quiet: true, debug: false, exclude: [] }).lintFiles([file], false)[0] as unknown as { messages: LintMessage[] };

/** The ports a service listens on inside the compose network: `expose`, and the container side of `ports`. */
const portsOf = (s: Service): Set<number> => new Set([
  ...(s.expose ?? []).map(Number),
  ...(s.ports ?? []).map((p) => Number(String(p).split(':').at(-1)!.split('/')[0])),
]);
/** The services a host name reaches on the default network: by service name, or by a network alias. */
const servicesNamed = (host: string): string[] => services[host]
  ? [host]
  : Object.entries(services).filter(([, s]) => s.networks?.default?.aliases?.includes(host)).map(([name]) => name);
const resolves = (hostPort: string): string | null => {
  const [host, port] = hostPort.split(':');
  const named = servicesNamed(host!);
  if (named.length === 0) return `${hostPort}: no compose service or alias "${host}"`;
  for (const name of named) {
    const s = services[name]!;
    if (!portsOf(s).has(Number(port))) return `${hostPort}: service ${name} exposes ${[...portsOf(s)].join(', ') || 'no port'}`;
  }
  return null;
};

test('compose.yaml follows the Compose Specification schema and dclint finds nothing', () => {
  const r = lint(join(root, 'compose.yaml'));
  assert.equal(r.messages.map((m) => `${m.rule} line ${m.line}: ${m.message}`), []);
});

test('the check fails on a broken file: an unknown key, a published port on every interface', () => {
  const dir = mkdtempSync(join(tmpdir(), 'compose-'));
  try {
    const bad = join(dir, 'compose.yaml');
    writeFileSync(bad, read('compose.yaml').replace('  stop_grace_period: 15s', '  stop_grace_periode: 15s'));
    assert.equal(lint(bad).messages.map((m) => m.rule), ['invalid-schema']);
    writeFileSync(bad, read('compose.yaml').replace('"127.0.0.1:3000:3000"', '"3000:3000"'));
    assert.equal(lint(bad).messages.map((m) => m.rule), ['no-unbound-port-interfaces']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every Prometheus scrape target and the Alertmanager resolve to a compose service and an exposed port', () => {
  const prom = parse(read('ops/prometheus/prometheus.yml')) as {
    scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }>; dns_sd_configs?: Array<{ names: string[]; type: string; port: number }> }>;
    alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
    rule_files: string[];
  };
  const targets = prom.scrape_configs.flatMap((j) => [
    ...(j.static_configs ?? []).flatMap((c) => c.targets),
    ...(j.dns_sd_configs ?? []).flatMap((c) => c.names.map((n) => `${n}:${c.port}`)),
  ]).filter((t) => !t.startsWith('localhost:'));
  assert.equal(targets.map(resolves).filter(Boolean), []);
  // Every daemon, one or three, is scraped by job integration-service (DaemonDown watches that job).
  const daemonJob = prom.scrape_configs.find((j) => j.job_name === 'integration-service')!;
  assert.equal(daemonJob.dns_sd_configs?.map((c) => [c.names, c.type, c.port]), [[['integration-nodes'], 'A', 8080]]);
  assert.equal(servicesNamed('integration-nodes').sort(), ['integration-service', 'integration-service-2', 'integration-service-3']);
  const am = prom.alerting.alertmanagers.flatMap((a) => a.static_configs.flatMap((c) => c.targets));
  assert.equal(am, ['alertmanager:9093']);
  assert.equal(am.map(resolves).filter(Boolean), []);
  assert.ok(services.alertmanager!.volumes!.some((v) => v.startsWith('./ops/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml')));
  // Prometheus loads its config dir, which holds the rule files it names.
  assert.ok(services.prometheus!.volumes!.includes('./ops/prometheus:/etc/prometheus:ro'));
  for (const f of prom.rule_files) assert.ok(existsSync(join(root, 'ops/prometheus', f)), f);
});

test('Grafana: the data source resolves, the dashboard directory is mounted where provisioning reads it, every dashboard data source exists', () => {
  const dsDoc = parse(read('ops/grafana/provisioning/datasources/prometheus.yaml')) as { datasources: Array<{ uid: string; type: string; url: string }> };
  const dsUrls = dsDoc.datasources.map((d) => new URL(d.url));
  assert.equal(dsUrls.map((u) => resolves(`${u.hostname}:${u.port}`)).filter(Boolean), []);
  const provider = parse(read('ops/grafana/provisioning/dashboards/integration-service.yaml')) as { providers: Array<{ options: { path: string } }> };
  const mounts = services.grafana!.volumes!.map((v) => v.split(':'));
  for (const p of provider.providers) {
    const mount = mounts.find(([, target]) => target === p.options.path);
    assert.ok(mount, `grafana mounts nothing at ${p.options.path}`);
    assert.is(mount![0], './ops/grafana/dashboards');
  }
  const uids = new Set(dsDoc.datasources.map((d) => d.uid));
  const types = new Set(dsDoc.datasources.map((d) => d.type));
  for (const file of readdirSync(join(root, 'ops/grafana/dashboards'))) {
    const dash = JSON.parse(read(`ops/grafana/dashboards/${file}`)) as { templating: { list: Array<{ name: string; type: string; query: string }> } };
    const variables = new Map(dash.templating.list.filter((v) => v.type === 'datasource').map((v) => [v.name, v.query]));
    const refs = [...read(`ops/grafana/dashboards/${file}`).matchAll(/"datasource":\s*\{\s*"type":\s*"(\w+)",\s*"uid":\s*"([^"]+)"/g)];
    assert.ok(refs.length > 10, file);
    for (const [, type, uid] of refs) {
      const variable = /^\$\{?(\w+)\}?$/.exec(uid!)?.[1];
      if (variable) assert.ok(types.has(variables.get(variable) ?? ''), `${file}: $${variable} picks a ${variables.get(variable)} data source, none provisioned`);
      else assert.ok(uids.has(uid!), `${file}: data source uid ${uid} is not provisioned`);
      assert.ok(types.has(type!), `${file}: no ${type} data source`);
    }
  }
});

test('every bind mount exists in the repository; every depends_on names a service; images are pinned', () => {
  const missing: string[] = [];
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (source.startsWith('./') && !existsSync(join(root, source))) missing.push(`${name}: ${source}`);
    }
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) if (!services[d]) missing.push(`${name}: depends on unknown ${d}`);
    if (s.image) assert.match(s.image, /:[\w.-]*\d[\w.-]*$/, `${name}: ${s.image} has no version tag`);
  }
  assert.equal(missing, []);
});

test('Vault runs as a server on file storage, unsealed by a development helper that keeps its keys 0600 and says production differs', () => {
  const vault = services.vault!;
  assert.equal(vault.command, ['server', '-config=/vault/config/vault.hcl']);
  assert.not.ok(Object.keys(vault.environment ?? {}).some((k) => k.startsWith('VAULT_DEV')), 'no dev-mode variables');
  assert.match(read('ops/vault/vault.hcl'), /storage "file" \{\s+path = "\/vault\/file"/);
  assert.ok(vault.volumes!.some((v) => v.startsWith('vault-data:/vault/file')), 'file storage on a volume');
  const init = read('ops/vault/dev-init.sh');
  assert.match(init, /umask 077/);
  assert.match(init, /chmod 600 "\$KEYS_FILE"/);
  assert.match(init, /PRODUCTION UNSEALS DIFFERENTLY/);
  assert.match(read('ops/vault/.dev-keys/.gitignore'), /^\*$/m);
  const daemon = services['integration-service']!;
  assert.equal(Object.keys(daemon.depends_on as object).sort(), ['postgres', 'rabbitmq', 'redis', 'vault-init']);
  assert.is((daemon.depends_on as Record<string, { condition: string }>)['vault-init']!.condition, 'service_completed_successfully');
  assert.not.ok(daemon.environment!.JWT_SECRET, 'the daemon reads JWT_SECRET from Vault KV, not its environment');
  assert.ok(daemon.environment!.VAULT_ROLE_ID && daemon.environment!.VAULT_SECRET_ID, 'AppRole, as in production');
});

test('the helper scripts the containers run parse (sh for the Vault image, bash for Postgres)', () => {
  for (const [shell, file] of [['sh', 'ops/vault/dev-init.sh'], ['bash', 'ops/postgres/primary-init.sh'], ['bash', 'ops/postgres/replica-entrypoint.sh']] as const) {
    const r = spawnSync(shell, ['-n', join(root, file)], { encoding: 'utf8' });
    assert.is(r.status, 0, `${file}: ${r.stderr}`);
  }
});

test('a streaming replica clones the primary with pg_basebackup; postgres_exporter watches both', () => {
  const primary = (services.postgres!.command as string[]).join(' ');
  assert.match(primary, /wal_level=replica/);
  assert.match(primary, /archive_mode=on/);
  assert.ok(services.postgres!.volumes!.some((v) => v.includes('primary-init.sh:/docker-entrypoint-initdb.d/')));
  assert.match(read('ops/postgres/replica-entrypoint.sh'), /pg_basebackup -h "\$PRIMARY_HOST" .* -R /);
  assert.is(services['postgres-replica']!.environment!.PRIMARY_HOST, 'postgres');
  assert.match(services['postgres-exporter']!.environment!.DATA_SOURCE_URI!, /^postgres:5432\//);
  assert.match(services['postgres-replica-exporter']!.environment!.DATA_SOURCE_URI!, /^postgres-replica:5432\//);
});

test('the elk profile is optional: its services start only with --profile elk', () => {
  for (const name of ['elasticsearch', 'logstash', 'kibana', 'filebeat']) assert.equal(services[name]?.profiles, ['elk'], name);
  assert.ok(Object.entries(services).filter(([, s]) => !s.profiles).length >= 10);
  assert.match(read('ops/elk/filebeat.yml'), /logstash:5044/);
  assert.equal(resolves('logstash:5044'), null);
});

test('the cluster profile: three daemons, the same dependencies and keys, distinct NODE_IDs and volumes, behind a load balancer', () => {
  const nodes = ['integration-service', 'integration-service-2', 'integration-service-3'];
  const daemon = services['integration-service']!;
  assert.is(daemon.profiles, undefined, 'node 1 is the plain daemon of `docker compose up`');
  for (const name of nodes.slice(1)) assert.equal(services[name]!.profiles, ['cluster'], name);
  assert.equal(services.lb!.profiles, ['cluster']);
  // Only NODE_ID and NODE_URL (where peers forward owner-only calls) differ: one Postgres (the leases), one RabbitMQ, one Vault read with one AppRole (one
  // transit key, one KV entry holding JWT_SECRET and KEYRING_KEY), the same image.
  const { NODE_ID: _, NODE_URL: _url, ...shared } = daemon.environment!;
  for (const name of nodes) {
    const s = services[name]!;
    const { NODE_ID, NODE_URL, ...env } = s.environment!;
    assert.equal(env, shared, `${name}: environment differs from node 1 beyond NODE_ID and NODE_URL`);
    assert.ok(NODE_ID, `${name}: NODE_ID`);
    assert.is(NODE_URL, `http://${name}:8080`, `${name}: peers reach it by its service name`);
    assert.is(s.build, '.', name);
    assert.is(s.stop_grace_period, '15s', `${name}: time to hand its shards over`);
    assert.ok(s.healthcheck, `${name}: healthcheck`);
    for (const dep of ['postgres', 'rabbitmq', 'redis', 'vault-init']) assert.ok((s.depends_on as Record<string, unknown>)[dep], `${name} depends on ${dep}`);
  }
  assert.is(new Set(nodes.map((n) => services[n]!.environment!.NODE_ID)).size, 3, 'distinct NODE_IDs');
  const dataVolumes = nodes.map((n) => services[n]!.volumes!.find((v) => v.endsWith(':/var/lib/integration-service'))!.split(':')[0]);
  assert.is(new Set(dataVolumes).size, 3, 'each node has its own scratch volume');
  for (const v of dataVolumes) assert.ok(v! in compose.volumes, `volume ${v} is declared`);
  assert.match(daemon.environment!.DATABASE_URL!, /@postgres:5432\//);
  assert.not.ok(Object.keys(shared).some((k) => /^(JWT_SECRET|KEYRING_KEY|TELEGRAM_API_HASH)$/.test(k)), 'keys come from Vault KV, not the environment');
  assert.match(read('ops/vault/dev-init.sh'), /vault kv patch secret\/integration-service\/config KEYRING_KEY="\$KEYRING_KEY"/);
  // Nodes 2 and 3 start after node 1 is healthy: the first start's migrations have run once.
  for (const name of nodes.slice(1)) assert.equal((services[name]!.depends_on as Record<string, { condition: string }>)['integration-service'], { condition: 'service_healthy' });

  // The load balancer: published on loopback, every node in its upstream on the port it exposes, WebSocket
  // upgrade for /v1/events, never replaying a request that reached a node, and the only trusted proxy.
  const lb = services.lb!;
  assert.equal(lb.ports, ['127.0.0.1:8090:8080']);
  assert.equal(Object.keys(lb.depends_on as object).sort(), nodes);
  const conf = read('ops/lb/nginx.conf');
  assert.ok(lb.volumes!.includes('./ops/lb/nginx.conf:/etc/nginx/nginx.conf:ro'));
  const upstream = [...conf.matchAll(/^\s*server\s+([\w.-]+:\d+)\b/gm)].map((m) => m[1]!);
  assert.equal(upstream.sort(), nodes.map((n) => `${n}:8080`).sort());
  assert.equal(upstream.map(resolves).filter(Boolean), []);
  assert.match(conf, /^\s*listen 8080;/m);
  assert.match(conf, /proxy_set_header Upgrade \$http_upgrade;/);
  assert.match(conf, /proxy_next_upstream error timeout;/);
  assert.not.match(conf, /non_idempotent|http_503/, 'a POST that reached a node is never sent to another; a 503 with Retry-After reaches the client');
  const lbAddress = lb.networks!.default!.ipv4_address!;
  assert.is(daemon.environment!.TRUSTED_PROXIES, lbAddress);
  const [ipam] = compose.networks.default!.ipam!.config;
  const octets = (ip: string) => ip.split('.').map(Number);
  assert.equal(octets(lbAddress).slice(0, 2), octets(ipam!.subnet.split('/')[0]!).slice(0, 2), 'the LB address is in the subnet');
  assert.not.equal(octets(lbAddress).slice(0, 3), octets(ipam!.ip_range!.split('/')[0]!).slice(0, 3), 'and outside the range handed to other containers');
});

test.run();
