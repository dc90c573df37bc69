/**
 * The Chromium bench worker: serves the store to the page (through-the-worker figures) and
 * exposes the in-worker benchmarks over comlink: a hand-written raw IndexedDB baseline (plain
 * IDB API, no library, no indexes, the same event objects) and the store in-process.
 */
import { expose } from 'comlink';
import { decodeEncryptionKey, indexedDbStorage, openStore } from '../../src/index.ts';
import { serveStore } from '../../worker/index.ts';
import {
  appendToStreams,
  type BenchDurability,
  type Board,
  board,
  boardNoSnapshot,
  type Card,
  fold,
  IN_WORKER_DB,
  type InWorkerBench,
  parseWorkerName,
  sampleEvent,
} from './browser-shared.ts';

const yjs = () => import('./browser-yjs.ts');
const compact = () => import('./compact-worker.ts');

const config = parseWorkerName((globalThis as unknown as { name: string }).name);
// The in-worker benchmarks' worker serves no store: serveStore opens its database at once.
if (config.db !== IN_WORKER_DB) {
  serveStore({
    name: config.db,
    durability: config.durability,
    projections: [board, boardNoSnapshot],
    pollIntervalMs: 0,
    ...(config.key !== undefined && { encryption: { key: decodeEncryptionKey(config.key) } }),
  });
}

/** Opens a raw database; a new one gets its stores from `create` (default: one `events` store). */
function rawOpen(
  db: string,
  create: (db: IDBDatabase) => void = (d) => d.createObjectStore('events', { keyPath: 'pos' }),
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(db, 1);
    request.onupgradeneeded = () => create(request.result);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** One raw readwrite transaction over `events`: `fill` issues its requests. */
function rawTransaction(
  db: IDBDatabase,
  durability: BenchDurability,
  fill: (store: IDBObjectStore) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction('events', 'readwrite', { durability });
    fill(tx.objectStore('events'));
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

const rawEvent = (i: number) => ({ id: `e${i}`, stream: `card-${i % 500}`, ...sampleEvent(i) });

/** Events from..from+n, one record each (what idb and Dexie users get). */
function rawWrite(
  db: IDBDatabase,
  from: number,
  n: number,
  durability: BenchDurability,
): Promise<void> {
  return rawTransaction(db, durability, (store) => {
    for (let i = from; i < from + n; i++) store.add({ pos: i + 1, event: rawEvent(i) });
  });
}

/** One record holding events from..from+n (the limit of a batch-record layout, no indexes). */
function rawWriteBatchRecord(
  db: IDBDatabase,
  from: number,
  n: number,
  durability: BenchDurability,
): Promise<void> {
  return rawTransaction(db, durability, (store) => {
    const events = [];
    for (let i = from; i < from + n; i++) events.push(rawEvent(i));
    store.add({ pos: from + 1, events });
  });
}

/**
 * A raw database laid out as Chronicle's (idb-schema.ts): segment records with the same five
 * indexes, beside a meta store. What a Chronicle append costs IndexedDB, without Chronicle's JS.
 */
function rawOpenShaped(db: string): Promise<IDBDatabase> {
  return rawOpen(db, (d) => {
    d.createObjectStore('meta');
    const segments = d.createObjectStore('segments', { keyPath: ['first', 'last', 'n'] });
    segments.createIndex('id', 'customIds', { unique: true, multiEntry: true });
    segments.createIndex('pos', 'pos', { unique: true });
    segments.createIndex('stream', 'streamKeys', { multiEntry: true });
    segments.createIndex('slot', 'slotRuns', { multiEntry: true });
    segments.createIndex('version', 'streamMax', { multiEntry: true });
  });
}

/**
 * Event i as one segment, with the requests of a Chronicle append the handle's memory covers
 * (idb-append.ts): a read of the counters, the segment (one entry in each of four indexes), the
 * counters written back.
 */
function rawWriteShaped(db: IDBDatabase, i: number, durability: BenchDurability): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(['meta', 'segments'], 'readwrite', { durability });
    const meta = tx.objectStore('meta');
    meta.get('counters');
    const cursor = `${String(1_000_000 + i)}-0000-replica`;
    const stream = `card-${i % 500}`;
    const version = Math.floor(i / 500) + 1;
    tx.objectStore('segments').add({
      first: cursor,
      last: cursor,
      n: 1,
      pos: i + 1,
      customIds: [],
      streamKeys: [[stream, cursor]],
      slotRuns: [[`replica.${i + 1}`, `replica.${i + 1}`]],
      streamMax: [[stream, version]],
      events: [rawEvent(i)],
    });
    meta.put(
      { seq: i + 1, pos: i + 1, clock: { wall: i, counter: 0 }, maxCursor: cursor },
      'counters',
    );
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

/** Rejects after `ms`: every wait of a benchmark has a deadline. */
function deadline(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`bench: ${what} took over ${ms} ms`)), ms),
  );
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

/** ms to write `count` events `batch` at a time with `write` into a fresh raw database. */
async function rawBatches(
  name: string,
  count: number,
  batch: number,
  write: (db: IDBDatabase, from: number) => Promise<void>,
): Promise<number> {
  const db = await rawOpen(name);
  const ms = await timed(async () => {
    for (let i = 0; i < count; i += batch) await write(db, i);
  });
  db.close();
  return ms;
}

const bench: InWorkerBench = {
  rawBatched: (name, count, batch, durability) =>
    rawBatches(name, count, batch, (db, i) => rawWrite(db, i, batch, durability)),
  rawBatchRecords: (name, count, batch, durability) =>
    rawBatches(name, count, batch, (db, i) => rawWriteBatchRecord(db, i, batch, durability)),
  async rawSingle(name, count, durability) {
    const db = await rawOpen(name);
    const ms = await timed(async () => {
      for (let i = 0; i < count; i++) await rawWrite(db, i, 1, durability);
    });
    db.close();
    return ms;
  },
  async rawSingleShaped(name, count, durability) {
    const db = await rawOpenShaped(name);
    const ms = await timed(async () => {
      for (let i = 0; i < count; i++) await rawWriteShaped(db, i, durability);
    });
    db.close();
    return ms;
  },
  async rawSeed(name, count) {
    const db = await rawOpen(name);
    for (let i = 0; i < count; i += 1000)
      await rawWrite(db, i, Math.min(1000, count - i), 'relaxed');
    db.close();
  },
  async rawReplay(name) {
    const db = await rawOpen(name);
    let state: Board = { count: 0, columns: {} };
    const ms = await timed(async () => {
      let after = 0;
      for (;;) {
        const page = await new Promise<{ pos: number; event: { data: Card } }[]>(
          (resolve, reject) => {
            const request = db
              .transaction('events')
              .objectStore('events')
              .getAll(IDBKeyRange.lowerBound(after, true), 1000);
            request.onsuccess = () =>
              resolve(request.result as { pos: number; event: { data: Card } }[]);
            request.onerror = () => reject(request.error);
          },
        );
        for (const r of page) state = fold(state, r.event.data);
        if (page.length < 1000) break;
        after = page[page.length - 1]!.pos;
      }
    });
    db.close();
    return { ms, count: state.count };
  },
  async rawCatchUp(name, url, count) {
    const db = await rawOpen(name);
    let socket: WebSocket | undefined;
    const ms = await timed(() =>
      Promise.race([
        new Promise<void>((resolve, reject) => {
          socket = new WebSocket(url);
          let stored = 0;
          let chain = Promise.resolve();
          socket.onerror = () => reject(new Error('bench: the raw catch-up socket failed'));
          socket.onmessage = (message) => {
            chain = chain
              .then(
                () =>
                  new Promise<void>((done, fail) => {
                    const events = JSON.parse(message.data as string) as unknown[];
                    const tx = db.transaction('events', 'readwrite', { durability: 'strict' });
                    const store = tx.objectStore('events');
                    for (const event of events) store.add({ pos: ++stored, event });
                    tx.oncomplete = () => done();
                    tx.onerror = () => fail(tx.error);
                  }),
              )
              .then(() => {
                if (stored >= count) resolve();
              })
              .catch(reject);
          };
        }),
        deadline(120_000, 'the raw catch-up'),
      ]),
    );
    socket?.close();
    db.close();
    return ms;
  },
  async storeCatchUp(name, url, count, localFirst) {
    const store = await openStore({ name, storage: indexedDbStorage(name), projections: [board] });
    if (localFirst) await store.append('local', sampleEvent(0));
    let connection: { close(): Promise<void> } | undefined;
    let unsubscribe = () => {};
    const ms = await timed(() =>
      Promise.race([
        new Promise<void>((resolve) => {
          let seen = 0;
          unsubscribe = store.subscribe((events) => {
            seen += events.length;
            if (seen >= count) resolve();
          });
          connection = store.sync.connect({ url });
        }),
        deadline(120_000, 'the store catch-up'),
      ]),
    );
    unsubscribe();
    await connection?.close();
    await store.close();
    return ms;
  },
  async storeBatched(name, count, batch, durability) {
    const store = await openStore({ name, storage: indexedDbStorage(name), durability });
    const ms = await timed(async () => {
      for (let i = 0; i < count; i += batch) {
        await store.append(
          `card-${i % 500}`,
          Array.from({ length: batch }, (_, k) => sampleEvent(i + k)),
        );
      }
    });
    await store.close();
    return ms;
  },
  async storeStreams(name, count, width, durability, mode) {
    const store = await openStore({ name, storage: indexedDbStorage(name), durability });
    const ms = await timed(() => appendToStreams(store, count, width, mode));
    await store.close();
    return ms;
  },
  async storeScaleSeed(name, total, block) {
    const store = await openStore({ name, storage: indexedDbStorage(name), durability: 'strict' });
    const blocks: number[] = [];
    let start = performance.now();
    for (let i = 0; i < total; i += 100) {
      await store.append(
        `card-${(i / 100) % 500}`,
        Array.from({ length: 100 }, (_, k) => sampleEvent(i + k)),
      );
      if ((i + 100) % block === 0) {
        const now = performance.now();
        blocks.push(now - start);
        start = now;
      }
    }
    await store.close();
    return blocks;
  },
  async storeSingle(name, count, durability) {
    const store = await openStore({ name, storage: indexedDbStorage(name), durability });
    const ms = await timed(async () => {
      for (let i = 0; i < count; i++) await store.append(`card-${i % 500}`, sampleEvent(i));
    });
    await store.close();
    return ms;
  },
  async storeSeed(name, count) {
    const store = await openStore({ name, storage: indexedDbStorage(name), durability: 'relaxed' });
    for (let i = 0; i < count; i += 1000) {
      await store.append(
        `card-${i % 500}`,
        Array.from({ length: Math.min(1000, count - i) }, (_, k) => sampleEvent(i + k)),
      );
    }
    await store.close();
  },
  async storeOpenAndFold(name, projection) {
    let count = 0;
    const ms = await timed(async () => {
      const store = await openStore({
        name,
        storage: indexedDbStorage(name),
        projections: [board, boardNoSnapshot],
      });
      count = (await store.state<Board>(projection)).count;
      await store.close();
    });
    return { ms, count };
  },
  async storeWatchLatency(name, samples) {
    const store = await openStore({ name, storage: indexedDbStorage(name), projections: [board] });
    const out: number[] = [];
    let resolveState: ((n: number) => void) | undefined;
    const off = store.watch<Board>('board', (s) => resolveState?.(s.count));
    const initial = (await store.state<Board>('board')).count;
    for (let i = 0; i < samples; i++) {
      const seen = new Promise<number>((resolve) => {
        resolveState = (n) => {
          if (n >= initial + i + 1) resolve(n);
        };
      });
      const start = performance.now();
      await store.append('latency', sampleEvent(i));
      await seen;
      out.push(performance.now() - start);
    }
    off();
    await store.close();
    return out;
  },
  // Issue 18 (storage sizes, compact against plain) and issue 6 benchmarks, from chunks of their own: yjs and
  // y-indexeddb are loaded only when asked for, so that cold starts time a lean worker.
  storageSeed: async (...a) => (await import('./size-worker.ts')).storageSeed(...a),
  storageReceive: async (...a) => (await import('./size-worker.ts')).storageReceive(...a),
  streamReadSeed: async (...a) => (await import('./stream-read-worker.ts')).streamReadSeed(...a),
  streamReadProbe: async (...a) => (await import('./stream-read-worker.ts')).streamReadProbe(...a),
  compactAppends: async (...a) => (await compact()).compactAppends(...a),
  compactReplay: async (...a) => (await compact()).compactReplay(...a),
  compactCatchUp: async (...a) => (await compact()).compactCatchUp(...a),
  compactDrop: async (...a) => (await compact()).compactDrop(...a),
  securityCatchUp: async (...a) => (await import('./security-worker.ts')).securityCatchUp(...a),
  securityUpload: async (...a) => (await import('./security-worker.ts')).securityUpload(...a),
  yjsSeed: async (...a) => (await yjs()).yjsSeed(...a),
  yjsSnapshot: async (...a) => (await yjs()).yjsSnapshot(...a),
  yjsOpen: async (...a) => (await yjs()).yjsOpen(...a),
  yjsBytes: async (...a) => (await yjs()).yjsBytes(...a),
  yIndexedDbSeed: async (...a) => (await yjs()).yIndexedDbSeed(...a),
  yIndexedDbOpen: async (...a) => (await yjs()).yIndexedDbOpen(...a),
  yIndexedDbBytes: async (...a) => (await yjs()).yIndexedDbBytes(...a),
};

expose(bench);
