/**
 * Store benchmarks in Node, on memory and on fake-indexeddb, each beside a raw baseline run in the
 * same process: (1) 10,000 appends, 100 per call; (2) 1,000 single appends; (3) replay of 100,000
 * events into a projection, with peak heap; (4) opening a store of 100,000 events with and
 * without a snapshot; (5) commands beside plain appends. Medians of RUNS runs.
 */
// idb needs the IDB classes (IDBRequest, ...) as globals; in Node they come from fake-indexeddb.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import {
  defineProjection,
  indexedDbStorage,
  type LooseEvents,
  memoryStorage,
  openStore,
} from '../../src/index.ts';
import type { StorageAdapter } from '../../src/storage/adapter.ts';
import { type AccountEvents, account } from '../store/fixtures/account.ts';
import { sampleEvent } from './browser-shared.ts';
import { type BenchResult, median, result } from './results.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REPLAY_EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);

// One event shape for every benchmark (Node and Chromium): ~300 bytes of JSON.
export { sampleEvent } from './browser-shared.ts';

type Card = ReturnType<typeof sampleEvent>['data'];
const board = defineProjection<
  { count: number; columns: Record<string, number> },
  LooseEvents<Card>
>({
  name: 'board',
  version: 1,
  snapshotEvery: 1000,
  initial: () => ({ count: 0, columns: {} }),
  apply: (s, e) => {
    s.count += 1;
    s.columns[e.data.column] = (s.columns[e.data.column] ?? 0) + 1;
    return s;
  },
});
const foldRaw = (s: { count: number; columns: Record<string, number> }, data: Card) => {
  s.count += 1;
  s.columns[data.column] = (s.columns[data.column] ?? 0) + 1;
  return s;
};

interface Backend {
  label: string;
  storage: () => StorageAdapter;
  /** Appends `count` events in batches of `batch` with no library: the baseline. */
  rawAppend: (count: number, batch: number) => Promise<void>;
}

function fakeIdbBackend(): Backend {
  return {
    label: 'fake-indexeddb',
    storage: () => indexedDbStorage(`bench-${Math.random()}`, { indexedDB: new IDBFactory() }),
    rawAppend: async (count, batch) => {
      const factory = new IDBFactory();
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = factory.open('raw', 1);
        req.onupgradeneeded = () => req.result.createObjectStore('events', { autoIncrement: true });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      for (let i = 0; i < count; i += batch) {
        await new Promise<void>((resolve, reject) => {
          const tx = db.transaction('events', 'readwrite');
          const store = tx.objectStore('events');
          for (let j = i; j < Math.min(count, i + batch); j++) store.put(sampleEvent(j));
          tx.oncomplete = () => resolve();
          tx.onerror = () => reject(tx.error);
        });
      }
      db.close();
    },
  };
}

function memoryBackend(): Backend {
  return {
    label: 'memory',
    storage: () => memoryStorage(),
    rawAppend: async (count, batch) => {
      const log: unknown[] = [];
      for (let i = 0; i < count; i += batch) {
        for (let j = i; j < Math.min(count, i + batch); j++)
          log.push(structuredClone(sampleEvent(j)));
        await Promise.resolve();
      }
    },
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function appendBench(b: Backend, count: number, batch: number): Promise<BenchResult> {
  const ours: number[] = [];
  const raw: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    raw.push(await timed(() => b.rawAppend(count, batch)));
    const store = await openStore({ name: 'bench', storage: b.storage() });
    ours.push(
      await timed(async () => {
        for (let i = 0; i < count; i += batch) {
          const events = [];
          for (let j = i; j < Math.min(count, i + batch); j++) events.push(sampleEvent(j));
          await store.append(`stream-${i % 50}`, events);
        }
      }),
    );
    await store.close();
  }
  const label = batch === 1 ? `single appends (${count})` : `appends ${count}, ${batch} per call`;
  return result(
    `node/${b.label}/${label}`,
    'events/s',
    (count * 1000) / median(ours),
    (count * 1000) / median(raw),
  );
}

/** Fills a storage with `count` events quickly (batches of 1,000). */
async function fill(storage: StorageAdapter, count: number): Promise<void> {
  const store = await openStore({ name: 'fill', storage });
  for (let i = 0; i < count; i += 1000) {
    const events = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) events.push(sampleEvent(j));
    await store.append(`stream-${(i / 1000) % 50}`, events);
  }
  await store.close();
}

async function replayBenches(b: Backend): Promise<BenchResult[]> {
  const storage = b.storage();
  await fill(storage, REPLAY_EVENTS);
  const replay: number[] = [];
  const rawReplay: number[] = [];
  const withSnapshot: number[] = [];
  const withoutSnapshot: number[] = [];
  let peakHeap = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let run = 0; run < RUNS; run++) {
    // Baseline: the storage's own paged read in the total order and the same fold, with none of
    // the projection engine (catch-up decisions, upcasting, snapshots).
    const log = await storage.open();
    rawReplay.push(
      await timed(async () => {
        let state = { count: 0, columns: {} as Record<string, number> };
        for (let after: string | undefined; ; ) {
          const page = await log.readByCursor(
            after === undefined ? { limit: 500 } : { after, limit: 500 },
          );
          for (const r of page) state = foldRaw(state, r.event.data as Card);
          if (page.length < 500) break;
          after = page[page.length - 1]!.event.cursor;
        }
      }),
    );
    await log.close();

    const store = await openStore({ name: 'fill', storage, projections: [board] });
    replay.push(await timed(() => store.rebuild('board')));
    // Memory, apart from timing: the live heap after a GC at every page of the replay, against
    // the heap before it. Garbage awaiting collection is not what a replay holds.
    if (run === 0 && gc !== undefined) {
      gc();
      const before = process.memoryUsage().heapUsed;
      await store.rebuild('board', () => {
        gc();
        peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - before);
      });
    }
    await store.close();

    // Cold open: with the snapshots rebuild left behind, then with none.
    withSnapshot.push(
      await timed(async () => {
        const s = await openStore({ name: 'fill', storage, projections: [board] });
        await s.state('board');
        await s.close();
      }),
    );
    const noSnap: typeof board = defineProjection({
      ...board,
      name: 'board-nosnap',
      snapshotEvery: 0,
    });
    withoutSnapshot.push(
      await timed(async () => {
        const s = await openStore({ name: 'fill', storage, projections: [noSnap] });
        await s.state('board-nosnap');
        await s.close();
      }),
    );
  }
  const n = REPLAY_EVENTS;
  return [
    result(
      `node/${b.label}/replay ${n} events into a projection`,
      'events/s',
      (n * 1000) / median(replay),
      (n * 1000) / median(rawReplay),
    ),
    result(
      `node/${b.label}/replay ${n} events: peak live heap growth`,
      'MB',
      peakHeap / 2 ** 20,
      undefined,
      'after a GC at every page, vs before the replay',
    ),
    result(
      `node/${b.label}/open ${n} events with snapshot`,
      'ms',
      median(withSnapshot),
      median(withoutSnapshot),
      'baseline: the same open without a snapshot',
    ),
  ];
}

const COMMAND_STREAMS = 100;
const COMMANDS = 1000;

/**
 * (5) Commands (issue 19): 1,000 awaited `execute` calls, round robin over 100 account streams
 * of 10 events each, beside the same events appended with their expectedVersion (what a command
 * costs beyond its append: reading the stream's version and events, and deciding).
 */
async function commandBench(b: Backend): Promise<BenchResult> {
  const executes: number[] = [];
  const appends: number[] = [];
  const seed = async (store: Awaited<ReturnType<typeof openStore<AccountEvents>>>) => {
    for (let s = 0; s < COMMAND_STREAMS; s++) {
      await store.append(
        `acct-${s}`,
        Array.from({ length: 10 }, () => ({ type: 'Deposited' as const, data: { cents: 100 } })),
      );
    }
  };
  for (let run = 0; run < RUNS; run++) {
    const viaCommands = await openStore<AccountEvents>({
      name: 'commands',
      storage: b.storage(),
      aggregates: [account],
    });
    await seed(viaCommands);
    executes.push(
      await timed(async () => {
        for (let i = 0; i < COMMANDS; i++) {
          await viaCommands.execute(account, `acct-${i % COMMAND_STREAMS}`, 'withdraw', {
            cents: 1,
          });
        }
      }),
    );
    await viaCommands.close();
    const viaAppends = await openStore<AccountEvents>({ name: 'appends', storage: b.storage() });
    await seed(viaAppends);
    appends.push(
      await timed(async () => {
        for (let i = 0; i < COMMANDS; i++) {
          await viaAppends.append(
            `acct-${i % COMMAND_STREAMS}`,
            { type: 'Withdrawn', data: { cents: 1 } },
            { expectedVersion: 10 + Math.floor(i / COMMAND_STREAMS) },
          );
        }
      }),
    );
    await viaAppends.close();
  }
  return result(
    `node/${b.label}/${COMMANDS} commands on ${COMMAND_STREAMS} aggregates, awaited`,
    'commands/s',
    (COMMANDS * 1000) / median(executes),
    (COMMANDS * 1000) / median(appends),
    'baseline: the same events appended with expectedVersion, no read or decision',
  );
}

export async function runStoreNodeBenches(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const backend of [memoryBackend(), fakeIdbBackend()]) {
    out.push(await appendBench(backend, 10_000, 100));
    out.push(await appendBench(backend, 1_000, 1));
    out.push(await commandBench(backend));
    out.push(...(await replayBenches(backend)));
  }
  return out;
}
