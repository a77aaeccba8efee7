// Kubernetes manifests in ops/k8s: every document parses, validates against the Kubernetes (and
// KEDA / Prometheus Operator) OpenAPI schemas shipped in kubernetes-models, and hangs together:
// selectors match the pod labels, probes hit the API's health paths, named ports exist, no secret
// value is inline, the ConfigMap only sets variables src/config.ts reads, and the PrometheusRule
// carries exactly the promtool-tested rules of ops/prometheus/alerts.yml.
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
const one = (kind: string): Obj => {
  const found = docs.filter((d) => d.obj.kind === kind);
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

test('deployment: one replica replaced with Recreate, probes on the health endpoints, sized resources', () => {
  const d = one('Deployment');
  // Two pods would log the same Telegram accounts in twice until shard leases exist.
  assert.is(d.spec.replicas, 1);
  assert.is(d.spec.strategy.type, 'Recreate');
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

test('KEDA scales the deployment, authenticated from a Secret, and not past one replica yet', () => {
  const so = one('ScaledObject');
  assert.is(so.spec.scaleTargetRef.name, one('Deployment').metadata.name);
  assert.is(so.spec.maxReplicaCount, 1);
  const auth = so.spec.triggers[0].authenticationRef.name;
  assert.is(one('TriggerAuthentication').metadata.name, auth);
  assert.ok(new RegExp(so.spec.triggers[0].metadata.queueName).test('integration.messages.s3.high'));
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
  const unknown = names.filter((n) => n !== 'NODE_OPTIONS' && !config.includes(`'${n}'`));
  assert.equal(unknown, [], `not read by src/config.ts: ${unknown.join(', ')}`);
});

test('the PrometheusRule carries exactly the rules of ops/prometheus/alerts.yml', () => {
  const fromAlerts = parse(readFileSync(join(root, 'ops/prometheus/alerts.yml'), 'utf8'));
  assert.equal(one('PrometheusRule').spec, fromAlerts, 'run node ops/k8s/gen-prometheusrule.mjs');
});

test.run();
