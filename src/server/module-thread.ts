/**
 * Starts a worker thread running one of this package's TypeScript modules. The package ships its
 * sources (package.json "exports" point at .ts files), which Node 20 cannot load by itself, and a
 * worker does not inherit the loader the process was started with when that process is a test
 * runner or registered tsx through its API (bin/chronicle-server.js). So the thread starts from a
 * few lines of plain JavaScript that register tsx's loader in the thread, then import the module.
 *
 * The module reads `workerData` as usual; the two keys starting with "chronicleThread" are the
 * bootstrap's own.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.chronicleThreadLoader)
  .then((tsx) => {
    tsx.register();
    return import(workerData.chronicleThreadEntry);
  })
  .catch((error) => {
    // The thread's 'error' event tells the parent; this only makes the stack visible.
    setImmediate(() => {
      throw error;
    });
  });
`;

let loaderUrl: string | undefined;

/** tsx's ESM register API, as a file URL: the "import" condition of its "./esm/api" export. */
function tsxLoaderUrl(): string {
  if (loaderUrl !== undefined) return loaderUrl;
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    exports: Record<string, { import?: { default?: string } } | string>;
  };
  const api = manifest.exports['./esm/api'];
  const relative = typeof api === 'object' ? api.import?.default : undefined;
  if (relative === undefined) throw new Error('tsx has no ESM register API ("./esm/api")');
  loaderUrl = pathToFileURL(join(dirname(manifestPath), relative)).href;
  return loaderUrl;
}

/**
 * A worker thread running `entry` (a module of this package) with `data` as its workerData.
 * Throws if tsx cannot be found; a module that fails to load ends the thread with an 'error'.
 */
export function startModuleThread(entry: URL, data: Record<string, unknown>): Worker {
  return new Worker(BOOTSTRAP, {
    eval: true,
    workerData: {
      ...data,
      chronicleThreadLoader: tsxLoaderUrl(),
      chronicleThreadEntry: entry.href,
    },
  });
}
