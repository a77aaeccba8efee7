// The image, checked without Docker (none runs here) by reading the Dockerfile as Docker would: its
// stages, what the final stage copies and from where, and what the compiled daemon reads at run time.
// Non-root, no dev dependencies (nothing the daemon imports may be one), a healthcheck on a real route,
// one supported Node LTS in every stage, and every file the compiled code opens is in the image.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(root, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; dependencies: Record<string, string>; devDependencies: Record<string, string> };

interface Instruction { op: string; args: string; line: number }
interface Stage { from: string; name?: string; steps: Instruction[] }

/** Dockerfile → stages of instructions (continuation lines joined, comments dropped). */
function stagesOf(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op!.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: m[1]!, ...(m[2] && { name: m[2] }), steps: [] });
    } else stages.at(-1)?.steps.push({ op: op!.toUpperCase(), args, line: i + 1 });
  });
  return stages;
}

const stages = stagesOf(read('Dockerfile'));
const final = stages.at(-1)!;

/** Does `version` (major.minor) fall in an npm engines range made of `>=a.b <c || >=d.e` parts? */
function engineAllows(range: string, major: number, minor = 99): boolean {
  return range.split('||').some((part) => part.trim().split(/\s+/).every((c) => {
    const m = /^(>=|<|>|<=|\^)?(\d+)(?:\.(\d+))?/.exec(c);
    if (!m) return false;
    const v = major * 1000 + minor;
    const bound = Number(m[2]) * 1000 + Number(m[3] ?? 0);
    if (m[1] === '>=') return v >= bound;
    if (m[1] === '<') return v < Number(m[2]) * 1000 + (m[3] ? Number(m[3]) : 0);
    if (m[1] === '^') return major === Number(m[2]) && v >= bound;
    return false;
  }));
}

test('every stage runs one supported Node LTS (22 or 24, bookworm-slim) that package.json engines allow', () => {
  const images = new Set(stages.map((s) => s.from));
  assert.is(images.size, 1, `stages differ: ${[...images].join(', ')}`);
  const m = /^node:(\d+)-bookworm-slim$/.exec([...images][0]!);
  assert.ok(m, [...images][0]);
  assert.ok(['22', '24'].includes(m![1]!), `node ${m![1]} is not a supported LTS`);
  assert.ok(engineAllows(pkg.engines.node, Number(m![1])), `engines "${pkg.engines.node}" refuses the image's Node ${m![1]}`);
  assert.ok(engineAllows(pkg.engines.node, 20, 19), 'the Node these tests run on (20) stays allowed');
  assert.not.ok(engineAllows(pkg.engines.node, 18), 'Node 18 is refused');
  assert.not.ok(engineAllows(pkg.engines.node, 21), 'odd-numbered Node is refused');
});

test('the final stage runs as a non-root user, with a healthcheck on /health/live and an exec-form CMD', () => {
  const users = final.steps.filter((s) => s.op === 'USER');
  assert.equal(users.map((u) => u.args), ['node']);
  const userAt = final.steps.indexOf(users[0]!);
  assert.ok(final.steps.slice(userAt).every((s) => s.op !== 'RUN'), 'nothing runs as root after USER');
  const health = final.steps.find((s) => s.op === 'HEALTHCHECK');
  assert.ok(health, 'HEALTHCHECK');
  assert.match(health!.args, /\/health\/live/);
  assert.match(read('src/api/health.plugin.ts'), /'\/health\/live'/);
  const cmd = final.steps.find((s) => s.op === 'CMD')!;
  assert.equal(JSON.parse(cmd.args), ['node', 'dist/src/main.js']);
  assert.ok(existsSync(join(root, 'src/main.ts')));
  assert.match(read('tsconfig.build.json'), /"outDir": "dist"/);
});

test('no dev dependencies in the image: node_modules comes from a stage that ran npm ci --omit=dev', () => {
  const copies = final.steps.filter((s) => s.op === 'COPY' && /node_modules/.test(s.args));
  assert.is(copies.length, 1);
  const from = /--from=(\S+)/.exec(copies[0]!.args)?.[1];
  const stage = stages.find((s) => s.name === from);
  assert.ok(stage, `stage ${from}`);
  assert.ok(stage!.steps.some((s) => s.op === 'RUN' && /npm ci\b.*--omit=dev/.test(s.args)), `${from} installs dev dependencies`);
  assert.not.ok(final.steps.some((s) => s.op === 'RUN' && /npm (ci|install)/.test(s.args)), 'the final stage installs nothing itself');
});

const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => {
  const p = join(dir, n);
  return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
});
// The console's browser code is bundled by esbuild in the build stage; build.ts itself runs only there.
const runtimeSources = [...walk(join(root, 'src')), ...walk(join(root, 'machines'))]
  .filter((f) => !f.includes('/src/console/app/') && !f.endsWith('/src/console/build.ts'));

test('the daemon imports no dev dependency at run time (it would be missing from the image)', () => {
  const builtins = new Set(builtinModules);
  const bad: string[] = [];
  for (const file of runtimeSources) {
    const text = readFileSync(file, 'utf8');
    const specs = [
      ...[...text.matchAll(/^import\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!),
      ...[...text.matchAll(/^import\s+'([^']+)'/gm)].map((m) => m[1]!),
      ...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!),
    ];
    for (const spec of specs) {
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!pkg.dependencies[name]) bad.push(`${relative(root, file)}: ${spec}${pkg.devDependencies[name] ? ' (a devDependency)' : ' (not a dependency)'}`);
    }
  }
  assert.equal(bad, []);
});

test('every file the compiled code opens next to itself is in the image', () => {
  const workdir = final.steps.find((s) => s.op === 'WORKDIR')!.args;
  const provided = final.steps.filter((s) => s.op === 'COPY').map((s) => normalize(join(workdir, s.args.split(/\s+/).at(-1)!)));
  const missing: string[] = [];
  let found = 0;
  for (const file of runtimeSources) {
    const text = readFileSync(file, 'utf8');
    const refs = [
      ...[...text.matchAll(/new URL\('(\.[^']*)', import\.meta\.url\)/g)].map((m) => m[1]!),
      ...[...text.matchAll(/createRequire\(import\.meta\.url\)\('(\.[^']*)'\)/g)].map((m) => m[1]!),
    ];
    // src/x/y.ts compiles to dist/src/x/y.js: a reference resolves from there.
    const compiledDir = join(workdir, 'dist', dirname(relative(root, file)));
    for (const ref of refs) {
      found += 1;
      const target = normalize(join(compiledDir, ref)).replace(/\/$/, '');
      if (!provided.some((p) => target === p || target.startsWith(`${p}/`))) missing.push(`${relative(root, file)}: ${ref} → ${target}`);
    }
  }
  assert.ok(found >= 3, 'migrations, package.json and the console are read at run time');
  assert.equal(missing, []);
});

test('every COPY source exists and is in the build context (.dockerignore keeps data, secrets and node_modules out)', () => {
  const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const must of ['node_modules', 'data', '.env', 'ops/vault/.dev-keys', 'dist']) assert.ok(ignore.includes(must), `.dockerignore: ${must}`);
  for (const s of stages.flatMap((st) => st.steps).filter((x) => x.op === 'COPY' && !x.args.includes('--from='))) {
    const sources = s.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1);
    for (const src of sources) {
      assert.ok(existsSync(join(root, src)), `line ${s.line}: ${src} does not exist`);
      assert.not.ok(ignore.some((i) => src === i || src.startsWith(`${i}/`)), `line ${s.line}: ${src} is excluded by .dockerignore`);
    }
  }
});

test.run();
