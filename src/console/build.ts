// Builds the web console into src/console/dist: app.js (one ES module bundled by esbuild, no
// runtime dependencies), styles.css and index.html. Runs offline. Usage:
//   npx tsx src/console/build.ts             always build
//   npx tsx src/console/build.ts --if-stale  only when dist is missing or older than a source (prestart/pretest)
import { build } from 'esbuild';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
export const defaultConsoleDir = join(here, 'dist');

export interface BuildOptions { outdir?: string; minify?: boolean }

export const buildConsole = async ({ outdir = defaultConsoleDir, minify = true }: BuildOptions = {}): Promise<string> => {
  // Built beside outdir, then each file renamed into place (atomic per file): a console being served
  // while another process rebuilds it (browser tests run two files at a time) never sees a missing or
  // half-written file; emptying outdir first failed every test of the file that was loading the page.
  await mkdir(outdir, { recursive: true });
  const stage = await mkdtemp(`${outdir}.build-`);
  try {
    await buildInto(stage, minify);
    for (const f of await readdir(stage)) await rename(join(stage, f), join(outdir, f));
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return outdir;
};

const buildInto = async (outdir: string, minify: boolean): Promise<void> => {
  await build({
    entryPoints: [join(here, 'app', 'main.ts')],
    outfile: join(outdir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Browsers from 2022 on: <dialog>, CSS.escape, aspect-ratio and ES2022 are all native there.
    target: ['es2022', 'chrome105', 'firefox104', 'safari16'],
    minify,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
  await copyFile(join(here, 'index.html'), join(outdir, 'index.html'));
  // One stylesheet: ours, then uPlot's (its legend and cursor rules), served from this origin (CSP style-src 'self').
  const uplotCss = await readFile(createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css'), 'utf8');
  await writeFile(join(outdir, 'styles.css'), `${await readFile(join(here, 'styles.css'), 'utf8')}\n/* uPlot 1.6.32 */\n${uplotCss}\n`);
};

// The newest source against the oldest output: a console edited since the last build is rebuilt,
// so `npm start` never serves yesterday's bundle.
export const consoleIsStale = (outdir: string = defaultConsoleDir): boolean => {
  const mtime = (p: string): number => statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const built = Math.min(...['index.html', 'app.js', 'styles.css'].map((f) => mtime(join(outdir, f))));
  if (built === 0) return true;
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  const sources = [join(here, 'index.html'), join(here, 'styles.css'), join(here, 'build.ts'), ...walk(join(here, 'app'))];
  return sources.some((s) => mtime(s) > built);
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // --if-missing is the older spelling of --if-stale.
  if ((process.argv.includes('--if-stale') || process.argv.includes('--if-missing')) && !consoleIsStale()) process.exit(0);
  const started = Date.now();
  await buildConsole();
  console.log(`console built into ${defaultConsoleDir} in ${Date.now() - started} ms`);
}
