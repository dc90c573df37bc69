/**
 * The bench worker's part of `npm run bench -- securitybrowsers` (security-browsers.ts): a store
 * on IndexedDB, signing or not (a store that signs requires signed events), catching up from the
 * sync server or pushing its own events to it. Loaded on first use, like compact-worker.ts.
 */
import { indexedDbStorage, openStore } from '../../src/index.ts';
import type { Signer } from '../../src/store/signing.ts';
import { syncFactory } from '../../src/sync/controller.ts';
import { demoEvents, timedCatchUp } from './compact-worker.ts';

const BATCH = 100;
const DEADLINE_MS = 10 * 60_000;

/**
 * `count` events of the demo's mix appended to a fresh `db`, 100 an appendMany, and signed by the
 * background signer unless `signing` is false (neither timed: a device that paused before it
 * reconnects); then, the store opened again, ms from connecting to the sync server at `url`
 * until the server acknowledged every one (durable there, each verified when signed).
 */
export async function securityUpload(
  db: string,
  signing: boolean,
  url: string,
  count: number,
  seed: number,
): Promise<number> {
  const events = demoEvents(seed, count);
  let signer: Signer | undefined;
  const store = await openStore({
    name: db,
    storage: indexedDbStorage(db),
    ...(!signing && { signing: false }),
    syncFactory: (internals) => {
      signer = internals.signer;
      return syncFactory()(internals);
    },
  });
  for (let i = 0; i < count; i += BATCH) {
    const batch = events.slice(i, i + BATCH);
    await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
  }
  if (signing && signer === undefined) throw new Error('bench: the store has no signer');
  await signer?.idle();
  await store.close();
  // Opened again, as after the pause: no work of the appends' is still going on beside the push
  // (the unsigned store had nothing to wait for, and connected while it was).
  const reopened = await openStore({
    name: db,
    storage: indexedDbStorage(db),
    ...(!signing && { signing: false }),
  });
  const started = performance.now();
  const connection = reopened.sync.connect({ url });
  for (;;) {
    const status = connection.status();
    if (status.pending === 0 && status.lastSyncedAt !== undefined) break;
    if (performance.now() - started > DEADLINE_MS) throw new Error(`bench: ${db} upload too slow`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const ms = performance.now() - started;
  await connection.close();
  await reopened.close();
  return ms;
}

/** A fresh `db`, signing or not, catching up `count` events from the server at `url`: ms. */
export async function securityCatchUp(
  db: string,
  signing: boolean,
  url: string,
  count: number,
): Promise<number> {
  const store = await openStore({
    name: db,
    storage: indexedDbStorage(db),
    ...(!signing && { signing: false }),
  });
  const ms = await timedCatchUp(store, db, url, count);
  await store.close();
  return ms;
}
