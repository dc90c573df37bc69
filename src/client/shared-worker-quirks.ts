/**
 * Which kind of worker a page can start.
 *
 * Chrome on Android (and Android WebView) has no SharedWorker at all: `SharedWorker` is
 * undefined there, so every tab must run its own dedicated worker over the same IndexedDB
 * database (the fallback mode: BroadcastChannel notices, a Web Locks leader for sync). Safari
 * removed SharedWorker in 6.1 and brought it back in 16, so feature detection, never user-agent
 * sniffing, decides.
 */

export type WorkerMode = 'auto' | 'shared' | 'dedicated';

export function hasSharedWorker(): boolean {
  return typeof (globalThis as { SharedWorker?: unknown }).SharedWorker === 'function';
}

/**
 * Starts the store's worker: a SharedWorker where the browser has one (mode 'auto'), else a
 * dedicated Worker; `mode: 'dedicated'` forces the fallback (for tests, or to keep one worker
 * per tab). The factories keep the `new SharedWorker(new URL(...))` literals in the app's code,
 * where bundlers (Vite, webpack) recognise and bundle them.
 *
 * @example
 * const worker = startWorker({
 *   shared: () => new SharedWorker(new URL('./store.worker.ts', import.meta.url), { type: 'module' }),
 *   dedicated: () => new Worker(new URL('./store.worker.ts', import.meta.url), { type: 'module' }),
 * });
 * const store = await connectStore(worker);
 */
export function startWorker(options: {
  shared: () => SharedWorker;
  dedicated: () => Worker;
  mode?: WorkerMode;
}): SharedWorker | Worker {
  const mode = options.mode ?? 'auto';
  if (mode === 'shared' || (mode === 'auto' && hasSharedWorker())) return options.shared();
  return options.dedicated();
}
