/**
 * Bundle sizes of what a browser app ships (CONVENTIONS: a bundle-size report for the client and
 * worker entries): each entry bundled by Vite for the browser, minified, with its dependencies
 * (idb, comlink, yjs where used), then measured raw, gzip and brotli.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'vite';
import { type BenchResult, result } from './results.ts';

const root = resolve(import.meta.dirname, '../..');

/** Each entry as an app imports it: only what the import pulls in is measured. */
const entries: Record<string, string> = {
  'page: connectStore': `export { connectStore, startWorker } from '${root}/src/index.ts';`,
  'page: connectStore + peekState': `export { connectStore, startWorker, peekState } from '${root}/src/index.ts';`,
  'worker: serveStore': `import { serveStore } from '${root}/worker/index.ts'; serveStore({ name: 'app' });`,
  'in-process: openStore + indexedDbStorage': `export { openStore, defineProjection, indexedDbStorage } from '${root}/src/index.ts';`,
  'yjs: bindYDoc (with yjs)': `export { bindYDoc } from '${root}/src/yjs/index.ts';`,
};

async function sizeOf(code: string): Promise<{ raw: number; gzip: number; brotli: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-size-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, code);
    await build({
      configFile: false,
      logLevel: 'silent',
      root: dir,
      build: {
        outDir: join(dir, 'out'),
        emptyOutDir: true,
        minify: true,
        target: 'es2022',
        lib: { entry, formats: ['es'], fileName: 'bundle' },
        rollupOptions: { output: { inlineDynamicImports: true } },
      },
    });
    const file = readdirSync(join(dir, 'out')).find((f) => /\.m?js$/.test(f));
    const bytes = readFileSync(join(dir, 'out', file ?? 'bundle.js'));
    return {
      raw: bytes.length,
      gzip: gzipSync(bytes, { level: 9 }).length,
      brotli: brotliCompressSync(bytes, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
      }).length,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runBundleSizeBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const [label, code] of Object.entries(entries)) {
    const size = await sizeOf(code);
    out.push(
      result(`bundle/${label}: minified`, 'kB', size.raw / 1000),
      result(`bundle/${label}: gzip`, 'kB', size.gzip / 1000),
      result(`bundle/${label}: brotli`, 'kB', size.brotli / 1000),
    );
  }
  return out;
}
