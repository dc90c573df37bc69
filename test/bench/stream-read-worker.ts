/**
 * The bench worker's part of `npm run bench -- streamreads` (stream-reads.ts): where the time of
 * `store.read({ stream })` goes on IndexedDB. A store holds the demo's mix (size-events.ts),
 * appended 100 an appendMany as a device writes it, signed by the background signer; then each
 * of a list of streams is read several ways, each timed on its own:
 * - `store.read({ stream })` (what an app calls, in the worker: no page round trip);
 * - the adapter's `readByCursor` as readWith asks it (one page, no signatures), on its own handle;
 * - the adapter's `horizon()` (the store reads it before and after each read);
 * - raw IndexedDB: the stream's segments by its `stream` index range, values (getAll) and keys
 *   only (getAllKeys), in a transaction of their own: what the segments cost to fetch and clone.
 * Loaded on first use.
 */
import { indexedDbStorage, openStore } from '../../src/index.ts';
import type { Signer } from '../../src/store/signing.ts';
import { syncFactory } from '../../src/sync/controller.ts';
import { DemoMix } from './size-events.ts';

const BATCH = 100;

/**
 * Appends `count` events of the mix to a new store `db` and signs them; the streams written, with
 * how many events each (the notes streams too).
 */
export async function streamReadSeed(
  db: string,
  count: number,
  seed: number,
): Promise<[string, number][]> {
  let signer: Signer | undefined;
  const store = await openStore({
    name: db,
    storage: indexedDbStorage(db),
    syncFactory: (internals) => {
      signer = internals.signer;
      return syncFactory()(internals);
    },
  });
  const mix = new DemoMix(seed);
  const streams = new Map<string, number>();
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, () => mix.next());
    for (const e of batch) streams.set(e.stream, (streams.get(e.stream) ?? 0) + 1);
    await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
  }
  await signer?.idle();
  await store.close();
  return [...streams];
}

/** IndexedDB calls made since the last reset, by kind (counted(): the prototypes wrapped). */
const calls = { transactions: 0, requests: 0, values: 0 };
let wrapped = false;

/**
 * Wraps the IndexedDB prototypes of this worker once, to count transactions, requests (each get,
 * getAll, getAllKeys, cursor open and continue) and the values getAll returns.
 */
function counted(): void {
  if (wrapped) return;
  wrapped = true;
  const wrap = <T extends object>(proto: T, name: string, after?: (r: unknown) => void) => {
    const target = proto as Record<string, unknown>;
    const original = target[name] as (...a: unknown[]) => unknown;
    target[name] = function (this: unknown, ...args: unknown[]) {
      const r = original.apply(this, args);
      after?.(r);
      return r;
    };
  };
  wrap(IDBDatabase.prototype, 'transaction', () => {
    calls.transactions += 1;
  });
  const request = () => {
    calls.requests += 1;
  };
  for (const proto of [IDBIndex.prototype, IDBObjectStore.prototype]) {
    for (const name of ['get', 'getKey', 'getAllKeys', 'openCursor', 'openKeyCursor', 'count']) {
      wrap(proto, name, request);
    }
    wrap(proto, 'getAll', (r) => {
      calls.requests += 1;
      (r as IDBRequest).addEventListener('success', () => {
        calls.values += ((r as IDBRequest).result as unknown[]).length;
      });
    });
  }
  wrap(IDBCursor.prototype, 'continue', () => {
    calls.requests += 1;
  });
}

export interface StreamReadProbe {
  /** Per stream, ms of each way of reading it (one call each, in this order). */
  store: number[];
  adapter: number[];
  horizon: number[];
  rawValues: number[];
  rawKeys: number[];
  /** Per store.read: IndexedDB transactions, requests, and values getAll returned. */
  transactions: number[];
  requests: number[];
  values: number[];
  /** Per stream: events returned, segments its index range lists, events those segments hold. */
  events: number[];
  segments: number[];
  segmentEvents: number[];
}

function idbOpen(db: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(db);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** The stream's segments as schema 8 lists them (idb-schema.ts invariant 10), one transaction. */
async function rawSegments(
  idb: IDBDatabase,
  stream: string,
  keysOnly: boolean,
): Promise<{ segments: number; events: number }> {
  const tx = idb.transaction(['segments', 'streams'], 'readonly');
  const row = (await req(tx.objectStore('streams').get(stream))) as { no?: number } | undefined;
  if (row?.no === undefined) return { segments: 0, events: 0 };
  const index = tx.objectStore('segments').index('stream');
  const range = IDBKeyRange.bound([row.no], [row.no, []]);
  if (keysOnly) return { segments: (await req(index.getAllKeys(range))).length, events: 0 };
  const values = (await req(index.getAll(range))) as { n: number }[];
  return { segments: values.length, events: values.reduce((sum, s) => sum + s.n, 0) };
}

const timed = async <T>(run: () => Promise<T>): Promise<[number, T]> => {
  const start = performance.now();
  const value = await run();
  return [performance.now() - start, value];
};

/** Reads each of `streams` of the store `db` each way (the module header), `rounds` times. */
export async function streamReadProbe(
  db: string,
  streams: readonly string[],
  rounds: number,
): Promise<StreamReadProbe> {
  const store = await openStore({ name: db, storage: indexedDbStorage(db) });
  const log = await indexedDbStorage(db).open();
  const idb = await idbOpen(db);
  const out: StreamReadProbe = {
    store: [],
    adapter: [],
    horizon: [],
    rawValues: [],
    rawKeys: [],
    transactions: [],
    requests: [],
    values: [],
    events: [],
    segments: [],
    segmentEvents: [],
  };
  counted();
  try {
    // A whole-log page first, as a projection's replay reads: it sets the segment-size hint
    // stream reads start from (idb-reads.ts keysFor).
    await store.read({ limit: 2000 });
    for (let round = 0; round < rounds; round++) {
      for (const stream of streams) {
        Object.assign(calls, { transactions: 0, requests: 0, values: 0 });
        const [storeMs, read] = await timed(() => store.read({ stream }));
        out.transactions.push(calls.transactions);
        out.requests.push(calls.requests);
        out.values.push(calls.values);
        const [adapterMs] = await timed(() =>
          log.readByCursor({ stream, limit: 500, withoutSignatures: true }),
        );
        const [horizonMs] = await timed(() => log.horizon?.() ?? Promise.resolve(undefined));
        const [valuesMs, held] = await timed(() => rawSegments(idb, stream, false));
        const [keysMs] = await timed(() => rawSegments(idb, stream, true));
        out.store.push(storeMs);
        out.adapter.push(adapterMs);
        out.horizon.push(horizonMs);
        out.rawValues.push(valuesMs);
        out.rawKeys.push(keysMs);
        out.events.push(read.length);
        out.segments.push(held.segments);
        out.segmentEvents.push(held.events);
      }
    }
  } finally {
    idb.close();
    await log.close();
    await store.close();
  }
  return out;
}
