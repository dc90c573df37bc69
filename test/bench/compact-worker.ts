/**
 * The bench worker's part of `npm run bench -- compact` (compact-ab.ts): a store on IndexedDB
 * whose database keeps the compact form of its segments (the default) or the plain form
 * (storage/idb-written-form.ts storePlainSegments), through the public API otherwise. Loaded on
 * first use, like size-worker.ts.
 */
import {
  defineProjection,
  type EventStore,
  indexedDbStorage,
  type JsonObject,
  type LooseEvents,
  openStore,
} from '../../src/index.ts';
import { storePlainSegments } from '../../src/storage/idb-written-form.ts';
import type { Signer } from '../../src/store/signing.ts';
import { syncFactory } from '../../src/sync/controller.ts';
import { DemoMix, type SizeEvent } from './size-events.ts';

const BATCH = 100;
const DEADLINE_MS = 10 * 60_000;

/** What the replay folds: every event of the demo's mix, by type and by column. */
export interface DemoBoard {
  count: number;
  types: Record<string, number>;
  columns: Record<string, number>;
}

/** Never snapshotted: every open folds the whole log (the replay of `board-nosnap`). */
const demoNoSnapshot = defineProjection<DemoBoard, LooseEvents<JsonObject>>({
  name: 'demo-nosnap',
  version: 1,
  snapshotEvery: 0,
  initial: () => ({ count: 0, types: {}, columns: {} }),
  apply: (s, e) => {
    s.count += 1;
    s.types[e.type] = (s.types[e.type] ?? 0) + 1;
    const column = e.data.column;
    if (typeof column === 'string') s.columns[column] = (s.columns[column] ?? 0) + 1;
    return s;
  },
});

/** The mix, generated once per worker (Yjs updates take a while): not part of any timing. */
let generated: { seed: number; events: SizeEvent[] } | undefined;
export function demoEvents(seed: number, count: number): SizeEvent[] {
  if (generated?.seed !== seed || generated.events.length < count) {
    generated = { seed, events: DemoMix.range(seed, 0, count) };
  }
  return generated.events.slice(0, count);
}

/** Opens `db` on IndexedDB, in the form `plain` says; `signer` is its background signer. */
async function open(
  db: string,
  plain: boolean,
  projections = false,
): Promise<{ store: EventStore; signer: Signer | undefined }> {
  storePlainSegments(db, plain);
  let signer: Signer | undefined;
  const store = await openStore({
    name: db,
    storage: indexedDbStorage(db),
    ...(projections && { projections: [demoNoSnapshot] }),
    syncFactory: (internals) => {
      signer = internals.signer;
      return syncFactory()(internals);
    },
  });
  return { store, signer };
}

/**
 * (a) `count` events of the mix appended to a fresh `db`, 100 an appendMany (signing on, the
 * default): ms of the appends, then ms until the background signer (store/signing.ts invariant
 * 5) had signed them all and written the signed copies back.
 */
export async function compactAppends(
  db: string,
  plain: boolean,
  count: number,
  seed: number,
): Promise<{ appendMs: number; signMs: number }> {
  const events = demoEvents(seed, count);
  const { store, signer } = await open(db, plain);
  if (signer === undefined) throw new Error('bench: the store has no signer (signing off?)');
  const started = performance.now();
  for (let i = 0; i < count; i += BATCH) {
    const batch = events.slice(i, i + BATCH);
    await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
  }
  const appended = performance.now();
  await signer.idle();
  const signed = performance.now();
  await store.close();
  return { appendMs: appended - started, signMs: signed - appended };
}

/** (b) A fresh open of `db` and the whole log folded into `demo-nosnap`: ms and the count. */
export async function compactReplay(
  db: string,
  plain: boolean,
): Promise<{ ms: number; count: number }> {
  const started = performance.now();
  const { store, signer } = await open(db, plain, true);
  const { count } = await store.state<DemoBoard>('demo-nosnap');
  const ms = performance.now() - started;
  await signer?.idle();
  await store.close();
  return { ms, count };
}

/**
 * (c) A fresh `db` catching up from the sync server at `url` until `count` events (another
 * replica's) reached it: ms.
 */
export async function compactCatchUp(
  db: string,
  plain: boolean,
  url: string,
  count: number,
): Promise<number> {
  const { store } = await open(db, plain);
  const ms = await timedCatchUp(store, db, url, count);
  await store.close();
  return ms;
}

/** Ms from connecting `store` (`db`) to the sync server at `url` until `count` events reached it. */
export async function timedCatchUp(
  store: EventStore,
  db: string,
  url: string,
  count: number,
): Promise<number> {
  let connection: { close(): Promise<void> } | undefined;
  let unsubscribe = () => {};
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bench: ${db} caught up too slowly`)),
      DEADLINE_MS,
    );
    let seen = 0;
    unsubscribe = store.subscribe((events) => {
      seen += events.length;
      if (seen >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
    connection = store.sync.connect({ url });
  });
  const ms = performance.now() - started;
  unsubscribe();
  await connection?.close();
  return ms;
}

/** Deletes `db` (the profile would otherwise grow by every variant of every pair). */
export function compactDrop(db: string): Promise<void> {
  storePlainSegments(db, false);
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(db);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error(`bench: deleting ${db} is blocked`));
  });
}
