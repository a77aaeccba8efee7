// Kubernetes manifests in ops/k8s: every document parses, validates against the Kubernetes (and
// KEDA / Prometheus Operator) OpenAPI schemas shipped in kubernetes-models, and hangs together:
// selectors match the pod labels, probes hit the API's health paths, named ports exist, no secret
// value is inline, the ConfigMap only sets variables src/config.ts reads, and the PrometheusRule
// carries exactly the promtool-tested rules of ops/prometheus/alerts.yml. Several replicas (shard
// leases): rolling updates, a PDB, KEDA above one, a headless service for node-to-node forwarding.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace, ServiceAccount, ConfigMap, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

const root = new URL('../../', import.meta.url).pathname;
const dir = join(root, 'ops/k8s');

interface Model { validate(): void }
const models: Record<string, new (data: never) => Model> = {
  'v1/Namespace': Namespace, 'v1/ServiceAccount': ServiceAccount, 'v1/ConfigMap': ConfigMap, 'v1/Service': Service,
  'apps/v1/Deployment': Deployment, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy, 'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor, 'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

// Loosely typed view of the manifests: the schema check above is the strict one.
type Obj = Record<string, any>;
interface Doc { file: string; obj: Obj }

const manifestFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
const docs: Doc[] = manifestFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map(String).join('; ')}`);
    return { file, obj: d.toJS() as Obj };
  }));
// The daemon's objects; postgres-exporter.yaml has its own Deployment, Service and ServiceMonitor, and
// the headless integration-service-nodes Service is picked by name.
const one = (kind: string, file?: string, name?: string): Obj => {
  const found = docs.filter((d) => d.obj.kind === kind && (file ? d.file === file : d.file !== 'postgres-exporter.yaml')
    && (name ? d.obj.metadata.name === name : !(kind === 'Service' && d.obj.spec.clusterIP === 'None')));
  assert.is(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0]!.obj;
};
const subsetOf = (sel: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels[k] === v);

test('every manifest parses and validates against its API schema', () => {
  assert.ok(docs.length >= 10, `only ${docs.length} documents`);
  for (const { file, obj } of docs) {
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = models[key];
    assert.ok(Model, `${file}: no schema for ${key}`);
    try {
      new Model!(obj as never).validate();
    } catch (err) {
      assert.unreachable(`${file} ${key} ${obj.metadata?.name}: ${(err as Error).message}`);
    }
    assert.ok(obj.metadata?.name, `${file}: metadata.name`);
    if (obj.kind !== 'Namespace') assert.is(obj.metadata.namespace, 'integration', `${file}: namespace`);
  }
});

test('the validator rejects a malformed manifest', () => {
  const bad = structuredClone(one('Deployment'));
  bad.spec.replicas = 'one';
  assert.throws(() => new Deployment(bad as never).validate());
});

test('kustomization lists every manifest', () => {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  assert.equal([...k.resources].sort(), manifestFiles);
});

test('deployment: several replicas replaced one at a time, probes on the health endpoints, sized resources', () => {
  const d = one('Deployment');
  // Shard leases keep each connection on one pod: rollouts surge one new pod before stopping an old one.
  assert.ok(d.spec.replicas >= 2, `replicas ${d.spec.replicas}`);
  assert.is(d.spec.strategy.type, 'RollingUpdate');
  assert.equal(d.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
  assert.ok(d.spec.minReadySeconds > 0, 'a new node takes its first leases before the next old one stops');
  // NODE_ID names the node in leases and GET /admin/cluster: the pod's name, unique while it lives.
  const nodeId = (d.spec.template.spec.containers[0].env as Obj[]).find((e) => e.name === 'NODE_ID');
  assert.equal(nodeId?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
  // Peers forward owner-only calls to the pod's own address.
  const env = d.spec.template.spec.containers[0].env as Obj[];
  assert.equal(env.find((e) => e.name === 'POD_IP')?.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
  assert.is(env.find((e) => e.name === 'NODE_URL')?.value, 'http://$(POD_IP):8080');
  assert.ok(env.findIndex((e) => e.name === 'POD_IP') < env.findIndex((e) => e.name === 'NODE_URL'), 'POD_IP defined before NODE_URL uses it');
  const spread = d.spec.template.spec.topologySpreadConstraints as Obj[];
  assert.ok(spread.some((t) => t.topologyKey === 'kubernetes.io/hostname' && subsetOf(t.labelSelector.matchLabels, d.spec.template.metadata.labels)), 'nodes spread over machines');
  const labels = d.spec.template.metadata.labels;
  assert.ok(subsetOf(d.spec.selector.matchLabels, labels), 'selector does not match the pod labels');
  const [c] = d.spec.template.spec.containers;
  const ports = new Set(c.ports.map((p: Obj) => p.name));
  assert.is(c.livenessProbe.httpGet.path, '/health/live');
  assert.is(c.startupProbe.httpGet.path, '/health/live');
  assert.is(c.readinessProbe.httpGet.path, '/health/ready');
  for (const p of [c.livenessProbe, c.startupProbe, c.readinessProbe]) assert.ok(ports.has(p.httpGet.port), `probe port ${p.httpGet.port}`);
  assert.equal(c.resources.requests.memory, '512Mi');
  assert.equal(c.resources.limits.memory, '1Gi');
  assert.ok(d.spec.template.spec.securityContext.runAsNonRoot);
  assert.ok(c.securityContext.readOnlyRootFilesystem);
});

test('service, PDB, network policy and ServiceMonitor select the daemon pods', () => {
  const podLabels = one('Deployment').spec.template.metadata.labels;
  const containerPorts = new Set(one('Deployment').spec.template.spec.containers[0].ports.map((p: Obj) => p.name));
  const svc = one('Service');
  assert.ok(subsetOf(svc.spec.selector, podLabels), 'Service selector');
  for (const p of svc.spec.ports) assert.ok(containerPorts.has(p.targetPort), `Service targetPort ${p.targetPort}`);
  assert.ok(subsetOf(one('PodDisruptionBudget').spec.selector.matchLabels, podLabels), 'PDB selector');
  assert.ok(subsetOf(one('NetworkPolicy').spec.podSelector.matchLabels, podLabels), 'NetworkPolicy podSelector');
  const sm = one('ServiceMonitor');
  assert.ok(subsetOf(sm.spec.selector.matchLabels, svc.metadata.labels), 'ServiceMonitor selector');
  const svcPorts = new Set(svc.spec.ports.map((p: Obj) => p.name));
  for (const e of sm.spec.endpoints) {
    assert.ok(svcPorts.has(e.port), `ServiceMonitor port ${e.port}`);
    assert.is(e.path, '/metrics');
  }
  // The NetworkPolicy lets Prometheus in on the port it scrapes.
  const np = one('NetworkPolicy');
  assert.ok(np.spec.ingress.some((r: Obj) => r.ports.some((p: Obj) => containerPorts.has(p.port))));
});

test('KEDA scales the deployment between 2 and more replicas, one pod at a time, authenticated from a Secret', () => {
  const so = one('ScaledObject');
  assert.is(so.spec.scaleTargetRef.name, one('Deployment').metadata.name);
  assert.ok(so.spec.minReplicaCount >= 2, `min ${so.spec.minReplicaCount}: a lost pod is taken over by another`);
  assert.ok(so.spec.maxReplicaCount > so.spec.minReplicaCount, `max ${so.spec.maxReplicaCount}`);
  const shards = Number(one('ConfigMap').data.SHARDS);
  assert.ok(so.spec.maxReplicaCount < shards, `max ${so.spec.maxReplicaCount} replicas for ${shards} shards`);
  const behavior = so.spec.advanced.horizontalPodAutoscalerConfig.behavior;
  for (const dir of ['scaleUp', 'scaleDown']) assert.equal(behavior[dir].policies.map((p: Obj) => [p.type, p.value]), [['Pods', 1]], `${dir}: shards move one node at a time`);
  const auth = so.spec.triggers[0].authenticationRef.name;
  assert.is(one('TriggerAuthentication').metadata.name, auth);
  assert.ok(new RegExp(so.spec.triggers[0].metadata.queueName).test('integration.messages.s3.high'));
});

test('PDB: voluntary evictions one pod at a time, and never the last one', () => {
  const pdb = one('PodDisruptionBudget');
  assert.is(pdb.spec.maxUnavailable, 1);
  assert.is(pdb.spec.minAvailable, undefined);
  assert.ok(one('ScaledObject').spec.minReplicaCount > pdb.spec.maxUnavailable, 'a drain leaves a node serving');
});

test('headless service for node-to-node forwarding: every daemon pod, ready or not, on the container port; the policy lets nodes in', () => {
  const d = one('Deployment');
  const podLabels = d.spec.template.metadata.labels;
  const headless = one('Service', undefined, 'integration-service-nodes');
  assert.is(headless.spec.clusterIP, 'None');
  assert.is(headless.spec.publishNotReadyAddresses, true, 'a node failing readiness still owns its shards until its lease ends');
  assert.ok(subsetOf(headless.spec.selector, podLabels), 'headless selector');
  const http = d.spec.template.spec.containers[0].ports.find((p: Obj) => p.name === 'http');
  assert.equal(headless.spec.ports.map((p: Obj) => [p.port, p.targetPort]), [[http.containerPort, 'http']]);
  // The ServiceMonitor selects the client-facing Service only: each pod is scraped once.
  assert.not.ok(subsetOf(one('ServiceMonitor').spec.selector.matchLabels, headless.metadata.labels), 'ServiceMonitor would scrape every pod twice');
  const np = one('NetworkPolicy');
  const fromNodes = np.spec.ingress.find((r: Obj) => r.from.some((f: Obj) => f.podSelector && !f.namespaceSelector && subsetOf(f.podSelector.matchLabels, podLabels)));
  assert.ok(fromNodes?.ports.some((p: Obj) => p.port === 'http'), 'ingress from the other nodes on http');
  const toNodes = np.spec.egress.find((r: Obj) => r.to.some((t: Obj) => t.podSelector && !t.namespaceSelector && subsetOf(t.podSelector.matchLabels, podLabels)));
  assert.ok(toNodes?.ports.some((p: Obj) => p.port === http.containerPort), 'egress to the other nodes on the container port');
});

const secretish = /SECRET|TOKEN|PASSWORD|PASS|HASH|KEYRING_KEY|ROLE_ID|DATABASE_URL|REDIS_URL|AMQP_URL|PRIVATE/;

test('no secret values inline: no Secret objects, secret-ish variables only through secretKeyRef', () => {
  assert.not.ok(docs.some((d) => d.obj.kind === 'Secret'), 'a Secret manifest with values is committed');
  const cm = one('ConfigMap');
  for (const [k, v] of Object.entries(cm.data as Record<string, string>)) {
    assert.not.ok(secretish.test(k), `ConfigMap carries ${k}`);
    assert.not.ok(/:\/\/[^/@\s]+:[^/@\s]+@/.test(v), `ConfigMap ${k} has credentials in a URL`);
  }
  for (const { obj } of docs) {
    for (const c of obj.spec?.template?.spec?.containers ?? []) {
      for (const e of c.env ?? []) {
        if (secretish.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef, `${e.name} must come from a Secret`);
      }
    }
  }
});

test('the ConfigMap and env only set variables the daemon reads', () => {
  const config = readFileSync(join(root, 'src/config.ts'), 'utf8');
  const d = one('Deployment');
  const names = [...Object.keys(one('ConfigMap').data), ...d.spec.template.spec.containers[0].env.map((e: Obj) => e.name)];
  // NODE_OPTIONS is Node's; POD_IP only feeds NODE_URL's $(POD_IP).
  const unknown = names.filter((n) => n !== 'NODE_OPTIONS' && n !== 'POD_IP' && !config.includes(`'${n}'`));
  assert.equal(unknown, [], `not read by src/config.ts: ${unknown.join(', ')}`);
});

test('the PrometheusRule carries exactly the rules of ops/prometheus/alerts.yml', () => {
  const fromAlerts = parse(readFileSync(join(root, 'ops/prometheus/alerts.yml'), 'utf8'));
  assert.equal(one('PrometheusRule').spec, fromAlerts, 'run node ops/k8s/gen-prometheusrule.mjs');
});

test('postgres_exporter: scraped as job postgres (as in compose), its password from a Secret, its selectors match', () => {
  const file = 'postgres-exporter.yaml';
  const d = one('Deployment', file);
  const labels = d.spec.template.metadata.labels;
  assert.ok(subsetOf(one('Service', file).spec.selector, labels), 'Service selector');
  const sm = one('ServiceMonitor', file);
  assert.ok(subsetOf(sm.spec.selector.matchLabels, one('Service', file).metadata.labels), 'ServiceMonitor selector');
  assert.is(sm.metadata.labels[sm.spec.jobLabel], 'postgres');
  assert.match(readFileSync(join(root, 'ops/prometheus/prometheus.yml'), 'utf8'), /job_name: postgres\b/);
  const env = d.spec.template.spec.containers[0].env as Obj[];
  assert.ok(env.find((e) => e.name === 'DATA_SOURCE_PASS')?.valueFrom?.secretKeyRef, 'password from a Secret');
  assert.is(d.spec.template.spec.securityContext.runAsNonRoot, true);
});

test.run();
