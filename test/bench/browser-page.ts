/**
 * The Chromium bench page: reaches the bench worker's in-worker benchmarks over comlink, and
 * runs the same workloads through the worker with connectStore, as an app does.
 */
import { type Remote, wrap } from 'comlink';
import {
  connectStore,
  defineProjection,
  indexedDbStorage,
  type LooseEvents,
  openStore,
} from '../../src/index.ts';
import { coldWorkerName } from '../browser/fixtures/cold-shared.ts';
import {
  appendToStreams,
  type BenchDurability,
  type BenchWorkerConfig,
  type Board,
  type Card,
  fold,
  IN_WORKER_DB,
  type InWorkerBench,
  type StreamsMode,
  sampleEvent,
  workerName,
} from './browser-shared.ts';

function startWorker(config: BenchWorkerConfig): Worker {
  return new Worker(new URL('./browser-worker.ts', import.meta.url), {
    type: 'module',
    name: workerName(config),
  });
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

let inWorker: Remote<InWorkerBench> | undefined;

const page = {
  /** Calls an in-worker benchmark (one bench worker for the whole run). */
  callInWorker(method: keyof InWorkerBench, args: unknown[]): Promise<unknown> {
    inWorker ??= wrap<InWorkerBench>(startWorker({ db: IN_WORKER_DB, durability: 'strict' }));
    return (inWorker[method] as unknown as (...a: unknown[]) => Promise<unknown>)(...args);
  },
  async throughBatched(
    db: string,
    count: number,
    batch: number,
    durability: BenchDurability,
    key?: string,
  ) {
    const worker = startWorker({ db, durability, ...(key !== undefined && { key }) });
    const store = await connectStore(worker, { persist: false });
    const ms = await timed(async () => {
      for (let i = 0; i < count; i += batch) {
        await store.append(
          `card-${i % 500}`,
          Array.from({ length: batch }, (_, k) => sampleEvent(i + k)),
        );
      }
    });
    await store.close();
    worker.terminate();
    return ms;
  },
  async throughStreams(
    db: string,
    count: number,
    width: number,
    durability: BenchDurability,
    mode: StreamsMode,
  ) {
    const worker = startWorker({ db, durability });
    const store = await connectStore(worker, { persist: false });
    const ms = await timed(() => appendToStreams(store, count, width, mode));
    await store.close();
    worker.terminate();
    return ms;
  },
  async throughSingle(db: string, count: number, durability: BenchDurability, key?: string) {
    const worker = startWorker({ db, durability, ...(key !== undefined && { key }) });
    const store = await connectStore(worker, { persist: false });
    const ms = await timed(async () => {
      for (let i = 0; i < count; i++) await store.append(`card-${i % 500}`, sampleEvent(i));
    });
    await store.close();
    worker.terminate();
    return ms;
  },
  /**
   * From before the worker starts to the first projected state (the store opened in it), with
   * the lean cold-start worker (serveStore and the projections, nothing else), as apps ship.
   */
  async throughColdStart(db: string, projection: string) {
    const start = performance.now();
    const worker = new Worker(new URL('../browser/fixtures/cold.worker.ts', import.meta.url), {
      type: 'module',
      name: coldWorkerName({ db }),
    });
    const store = await connectStore(worker, { persist: false });
    const state = await store.state<Board>(projection);
    const end = performance.now();
    await store.close();
    worker.terminate();
    return { ms: end - start, count: state.count };
  },
  /**
   * Issue 14 (scale): opens the store on this page and folds every event of `db` into a
   * projection without snapshots, sampling the JS heap (Chromium's performance.memory, precise
   * with --enable-precise-memory-info) every 10,000 events: ms, events, the heap before and
   * its peak during the fold, in bytes.
   */
  async replayOnPage(db: string) {
    const heap = () =>
      (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ??
      0;
    let peak = 0;
    const sampled = defineProjection<Board, LooseEvents<Card>>({
      name: 'scale-sampled',
      version: 1,
      snapshotEvery: 0,
      initial: () => ({ count: 0, columns: {} }),
      apply: (state, event) => {
        const next = fold(state, event.data);
        if (next.count % 10_000 === 0) peak = Math.max(peak, heap());
        return next;
      },
    });
    const before = heap();
    const start = performance.now();
    const store = await openStore({
      name: db,
      storage: indexedDbStorage(db),
      projections: [sampled],
    });
    const state = await store.state<Board>('scale-sampled');
    const ms = performance.now() - start;
    await store.close();
    return { ms, count: state.count, heapBefore: before, heapPeak: Math.max(peak, heap()) };
  },
  async throughWatchLatency(db: string, samples: number) {
    const worker = startWorker({ db, durability: 'strict' });
    const store = await connectStore(worker, { persist: false });
    const initial = (await store.state<Board>('board')).count;
    const out: number[] = [];
    let check: ((n: number) => void) | undefined;
    const off = store.watch<Board>('board', (s) => check?.(s.count));
    for (let i = 0; i < samples; i++) {
      const seen = new Promise<void>((resolve) => {
        check = (n) => {
          if (n >= initial + i + 1) resolve();
        };
      });
      const start = performance.now();
      await store.append('latency', sampleEvent(i));
      await seen;
      out.push(performance.now() - start);
    }
    off();
    await store.close();
    worker.terminate();
    return out;
  },
  /**
   * `store.read({ stream })` from this page through the worker serving `db` (connectStore, as an
   * app reads), once its projections have folded the log: ms per read, each stream in turn,
   * `rounds` times (stream-reads.ts).
   */
  async throughStreamReads(db: string, streams: string[], rounds: number) {
    const worker = startWorker({ db, durability: 'strict' });
    const store = await connectStore(worker, { persist: false });
    await store.state('board-nosnap');
    const out: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const stream of streams) out.push(await timed(() => store.read({ stream })));
    }
    await store.close();
    worker.terminate();
    return out;
  },
};

(window as unknown as { bench: typeof page }).bench = page;

document.title = 'ready';
