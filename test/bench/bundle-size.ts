/**
 * Bundle sizes of what a browser app ships (CONVENTIONS: a bundle-size report for the client and
 * worker entries): each entry bundled by Vite for the browser, minified, with its dependencies
 * (idb, comlink, yjs where used), then measured raw, gzip and brotli. What an entry loads with
 * import() only when asked (the worker's sync module) is a separate chunk, measured apart: the
 * entry's figure is what every app ships and runs, `lazy chunks` what only some load.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

interface Size {
  raw: number;
  gzip: number;
  brotli: number;
}

function measure(bytes: Buffer): Size {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
    }).length,
  };
}

function sum(sizes: Size[]): Size {
  return sizes.reduce((a, b) => ({
    raw: a.raw + b.raw,
    gzip: a.gzip + b.gzip,
    brotli: a.brotli + b.brotli,
  }));
}

interface Chunk {
  type: 'chunk' | 'asset';
  fileName: string;
  code?: string;
  isEntry?: boolean;
  imports?: string[];
}

/**
 * What the entry loads at once (its chunk and the chunks it imports statically), and what it
 * loads only through import() (each chunk compressed on its own, then summed).
 */
async function sizeOf(code: string): Promise<{ entry: Size; lazy: Size | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'chronicle-size-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, code);
    const built = await build({
      configFile: false,
      logLevel: 'silent',
      root: dir,
      build: {
        write: false,
        minify: true,
        target: 'es2022',
        lib: { entry, formats: ['es'], fileName: 'bundle' },
      },
    });
    const outputs = (Array.isArray(built) ? built : [built]) as { output: Chunk[] }[];
    const chunks = new Map<string, Chunk>();
    for (const { output } of outputs) {
      for (const chunk of output) if (chunk.type === 'chunk') chunks.set(chunk.fileName, chunk);
    }
    const eager = new Set<string>();
    const visit = (name: string) => {
      if (eager.has(name)) return;
      eager.add(name);
      for (const next of chunks.get(name)?.imports ?? []) visit(next);
    };
    for (const chunk of chunks.values()) if (chunk.isEntry === true) visit(chunk.fileName);
    const sizes = (names: string[]) =>
      names.map((name) => measure(Buffer.from(chunks.get(name)?.code ?? '')));
    const lazy = [...chunks.keys()].filter((name) => !eager.has(name));
    return {
      entry: sum(sizes([...eager])),
      lazy: lazy.length === 0 ? undefined : sum(sizes(lazy)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runBundleSizeBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const [label, code] of Object.entries(entries)) {
    const { entry, lazy } = await sizeOf(code);
    const report = (name: string, size: Size) =>
      out.push(
        result(`${name}: minified`, 'kB', size.raw / 1000),
        result(`${name}: gzip`, 'kB', size.gzip / 1000),
        result(`${name}: brotli`, 'kB', size.brotli / 1000),
      );
    report(`bundle/${label}`, entry);
    if (lazy !== undefined) report(`bundle/${label}, lazy chunks`, lazy);
  }
  return out;
}
