/**
 * Builds the demo when its build is missing or older than its sources, so that `npm start` on a
 * fresh clone (or after a `git pull`) serves what the sources say, without a separate step.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';

export const ROOT = join(import.meta.dirname, '../..');
export const DEFAULT_DIST = join(ROOT, 'dist/demo');
const STAMP = '.built';

/** Everything the bundle is made of: the demo page, the library it imports, the config. */
const SOURCES = [
  'demo/index.html',
  'demo/src',
  'demo/public',
  'src',
  'worker',
  'vite.config.ts',
  'package-lock.json',
];

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce(
    (max, name) => Math.max(max, newest(join(path, name))),
    stat.mtimeMs,
  );
}

export function isBuildCurrent(distDir: string): boolean {
  const stamp = join(distDir, STAMP);
  if (!existsSync(stamp) || !existsSync(join(distDir, 'index.html'))) return false;
  const built = statSync(stamp).mtimeMs;
  return SOURCES.every((source) => newest(join(ROOT, source)) <= built);
}

/** Runs `vite build` with the root vite.config.ts into `distDir`. */
export async function buildDemo(distDir: string = DEFAULT_DIST): Promise<void> {
  await build({
    configFile: join(ROOT, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir: distDir, emptyOutDir: true },
  });
  writeFileSync(join(distDir, STAMP), new Date().toISOString());
}

export async function ensureBuilt(distDir: string = DEFAULT_DIST): Promise<'built' | 'current'> {
  if (isBuildCurrent(distDir)) return 'current';
  await buildDemo(distDir);
  return 'built';
}

// `npm run build:demo`: always builds (and stamps the build, so that `npm start` reuses it).
if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  await buildDemo();
  console.log(`Built the demo into ${DEFAULT_DIST}`);
}
