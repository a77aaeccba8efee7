// The Vault policy is least privilege and still covers every call the transit adapter makes at run
// time. No Vault server can run here (LIBRARIES.md), so this reads the policy file itself: each
// `path "…" { capabilities = […] }` block, compared with the paths src/crypto/vault-keyring.ts uses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const hcl = readFileSync(join(root, 'ops/vault/integration-service.hcl'), 'utf8');

const policy = (text: string): Map<string, string[]> => {
  const body = text.replace(/#.*$/gm, '');
  const out = new Map<string, string[]>();
  for (const m of body.matchAll(/path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g)) {
    out.set(m[1]!, [...m[2]!.matchAll(/"([^"]+)"/g)].map((c) => c[1]!));
  }
  // Every block must have been understood: no path block this parser skipped.
  assert.is(out.size, [...body.matchAll(/\bpath\s+"/g)].length, 'unparsed path block');
  return out;
};

// Vault's matching: exact path, or a trailing `*` glob.
const allows = (p: Map<string, string[]>, path: string, cap: string) =>
  [...p].some(([pattern, caps]) => caps.includes(cap) && (pattern.endsWith('*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern));

test('the policy grants exactly the transit and KV operations of the daemon', () => {
  assert.equal(Object.fromEntries(policy(hcl)), {
    'transit/encrypt/integration-service': ['update'],
    'transit/decrypt/integration-service': ['update'],
    'transit/rewrap/integration-service': ['update'],
    'transit/keys/integration-service': ['read'],
    'secret/data/integration-service/*': ['read'],
    'secret/metadata/integration-service/*': ['read', 'list'],
  });
});

test('no key management, no sudo, no other key or secret', () => {
  const p = policy(hcl);
  for (const [path, caps] of p) {
    assert.not.ok(caps.some((c) => ['sudo', 'delete', 'create'].includes(c)), `${path}: ${caps}`);
    assert.ok(path.includes('integration-service'), `${path} is not scoped to the service`);
  }
  for (const denied of ['transit/keys/integration-service/rotate', 'transit/keys/integration-service/config',
    'transit/export/encryption-key/integration-service', 'transit/encrypt/other-service', 'secret/data/other/x', 'sys/policy/integration-service']) {
    assert.not.ok(allows(p, denied, 'update') || allows(p, denied, 'read'), `${denied} is allowed`);
  }
});

test('every transit path the adapter calls at run time is allowed', () => {
  const adapter = readFileSync(join(root, 'src/crypto/vault-keyring.ts'), 'utf8');
  const ops = [...adapter.matchAll(/`\$\{this\.mount\}\/(encrypt|decrypt|rewrap)\/\$\{this\.keyName\}`/g)].map((m) => m[1]!);
  assert.equal([...new Set(ops)].sort(), ['decrypt', 'encrypt', 'rewrap']);
  const p = policy(hcl);
  for (const op of ops) assert.ok(allows(p, `transit/${op}/integration-service`, 'update'), op);
  assert.ok(allows(p, 'transit/keys/integration-service', 'read'));
});

test('policy, setup script and Kubernetes config agree on the key name; the script parses', () => {
  const script = readFileSync(join(root, 'ops/vault/setup-approle.sh'), 'utf8');
  assert.match(script, /KEY=\$\{TRANSIT_KEY:-integration-service\}/);
  assert.match(script, /type=aes256-gcm96 derived=true auto_rotate_period=168h/);
  assert.match(script, /-wrap-ttl=10m/);
  const cm = parse(readFileSync(join(root, 'ops/k8s/configmap.yaml'), 'utf8')) as { data: Record<string, string> };
  assert.is(cm.data.VAULT_TRANSIT_KEY, 'integration-service');
  const syntax = spawnSync('bash', ['-n', join(root, 'ops/vault/setup-approle.sh')], { encoding: 'utf8' });
  assert.is(syntax.status, 0, syntax.stderr);
});

test.run();
