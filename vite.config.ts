/**
 * The demo's Vite config (demo/ is the app root; `npm run build:demo` writes dist/demo).
 * vitest.config.ts is separate and takes precedence for tests, so nothing here affects them.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const SW_FILE = 'sw.js';

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path) : [path];
  });
}

/**
 * Writes the precache list into the built service worker (demo/src/sw.ts). It runs once every
 * file is on disk (writeBundle of the last output), so that it sees what Vite emitted from
 * every source: pages, chunks, the worker's own bundle, CSS and the copied public/ files.
 */
function precacheManifest(): Plugin {
  let outDir = '';
  return {
    name: 'chronicle-demo-precache',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    writeBundle() {
      const files = listFiles(outDir)
        .map((path) => `/${relative(outDir, path).split(sep).join('/')}`)
        .filter((path) => path !== `/${SW_FILE}` && !path.endsWith('.map'))
        .sort();
      const hash = createHash('sha256');
      for (const file of files) hash.update(file).update(readFileSync(join(outDir, file)));
      const swPath = join(outDir, SW_FILE);
      const source = readFileSync(swPath, 'utf8');
      if (!source.includes('__PRECACHE_FILES__')) return; // already filled in
      const list = Buffer.from(JSON.stringify(files)).toString('base64');
      writeFileSync(
        swPath,
        source
          .replaceAll('__PRECACHE_FILES__', list)
          .replaceAll('__PRECACHE_VERSION__', hash.digest('hex').slice(0, 16)),
      );
    },
  };
}

export default defineConfig(({ command }) => ({
  root: join(here, 'demo'),
  base: '/',
  // Imports of the package by its own name build from the sources (package.json exports).
  resolve: { conditions: ['@chronicle-es/source', ...defaultClientConditions] },
  // Only the production build has a service worker (dev serves modules one by one).
  define: { __DEMO_SERVICE_WORKER__: JSON.stringify(command === 'build') },
  // The store's worker is an ES module worker (it imports comlink and idb).
  worker: { format: 'es' },
  build: {
    outDir: join(here, 'dist/demo'),
    emptyOutDir: true,
    rolldownOptions: {
      input: {
        index: join(here, 'demo/index.html'),
        sw: join(here, 'demo/src/sw.ts'),
      },
      output: {
        // The service worker keeps one URL across builds: the browser re-checks it for updates.
        entryFileNames: (chunk) => (chunk.name === 'sw' ? SW_FILE : 'assets/[name]-[hash].js'),
      },
    },
  },
  plugins: [precacheManifest()],
}));
