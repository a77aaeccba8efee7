// Builds the web console into src/console/dist: app.js (one ES module bundled by esbuild, no
// runtime dependencies), styles.css and index.html. Runs offline. Usage:
//   npx tsx src/console/build.ts             always build
//   npx tsx src/console/build.ts --if-stale  only when dist is missing or older than a source (prestart/pretest)
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
export const defaultConsoleDir = join(here, 'dist');

export interface BuildOptions { outdir?: string; minify?: boolean }

export const buildConsole = async ({ outdir = defaultConsoleDir, minify = true }: BuildOptions = {}): Promise<string> => {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
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
  await copyFile(join(here, 'styles.css'), join(outdir, 'styles.css'));
  return outdir;
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
