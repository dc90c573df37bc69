/**
 * The bench worker's part of `npm run bench -- storage` (size-browser.ts): a store on IndexedDB
 * appends the demo's mix (size-events.ts) through the public API, 100 events an appendMany, and
 * syncs to a real server until nothing is pending, so that its log holds the signed copies as a
 * synced device's does (signing happens on the way out: store/signing.ts). Another store, on a
 * profile of its own, receives those events from the server (storageReceive). Loaded on first
 * use.
 */
import { indexedDbStorage, openStore } from '../../src/index.ts';
import { DemoMix } from './size-events.ts';

const BATCH = 100;

/** The mix where the last call left it: the next call of a run goes on without regenerating. */
let kept: { seed: number; at: number; mix: DemoMix } | undefined;

function mixAt(seed: number, from: number): DemoMix {
  if (kept?.seed !== seed || kept.at !== from) {
    const mix = new DemoMix(seed);
    for (let i = 0; i < from; i++) mix.next();
    kept = { seed, at: from, mix };
  }
  return kept.mix;
}
const DEADLINE_MS = 20 * 60_000;

/** `navigator.storage.estimate()`'s usage, in bytes. */
async function usage(): Promise<number> {
  return (await navigator.storage.estimate()).usage ?? 0;
}

/** Appends events `from`..`to` of the seeded mix to `db` and syncs them to `url`. */
export async function storageSeed(
  db: string,
  url: string,
  from: number,
  to: number,
  seed: number,
): Promise<{ ms: number; usageBefore: number; usageOpened: number; usageAfter: number }> {
  const usageBefore = await usage();
  const started = performance.now();
  const store = await openStore({ name: db, storage: indexedDbStorage(db) });
  // Chromium's usage need not count a database this session has not opened yet.
  const usageOpened = await usage();
  const connection = store.sync.connect({ url });
  const mix = mixAt(seed, from);
  for (let i = from; i < to; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, to - i) }, () => mix.next());
    await store.appendMany(batch.map((e) => ({ stream: e.stream, events: e.event })));
  }
  if (kept !== undefined) kept.at = to;
  const deadline = performance.now() + DEADLINE_MS;
  while (store.sync.status().pending > 0) {
    if (performance.now() > deadline) throw new Error(`bench: ${db} still has events pending`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await connection.close();
  await store.close();
  const ms = performance.now() - started;
  return { ms, usageBefore, usageOpened, usageAfter: await usage() };
}

/** What a receiving store's session measured (storageReceive). */
export interface ReceiveOutcome {
  ms: number;
  usageBefore: number;
  usageOpened: number;
  usageAfter: number;
  /** Records its log holds, and how many of them have no `$sig` (none, as every event is signed). */
  held: number;
  unsigned: number;
  /** UTF-8 bytes of the JSON of the records as held. */
  heldJson: number;
}

/**
 * Opens the store `db` holding `from` events received before, syncs from `url` until `to - from`
 * more reached it, and closes it; then counts what its log holds, from the storage adapter (the
 * records as stored, `meta` whole). With `to === from` it only opens and closes (estimate()
 * after a restart), and counts nothing.
 */
export async function storageReceive(
  db: string,
  url: string,
  from: number,
  to: number,
): Promise<ReceiveOutcome> {
  const usageBefore = await usage();
  const started = performance.now();
  const store = await openStore({ name: db, storage: indexedDbStorage(db) });
  const usageOpened = await usage();
  if (to > from) {
    let seen = 0;
    let unsubscribe = () => {};
    const received = new Promise<void>((resolve) => {
      unsubscribe = store.subscribe((events) => {
        seen += events.length;
        if (seen >= to - from) resolve();
      });
    });
    const connection = store.sync.connect({ url });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`bench: ${db} received ${seen} of ${to - from} events`)),
        DEADLINE_MS,
      );
    });
    try {
      await Promise.race([received, late]);
    } finally {
      clearTimeout(timer);
      unsubscribe();
      await connection.close();
    }
  }
  await store.close();
  const ms = performance.now() - started;
  const usageAfter = await usage();
  const count = { held: 0, unsigned: 0, heldJson: 0 };
  if (to > from) {
    const log = await indexedDbStorage(db).open();
    const encoder = new TextEncoder();
    try {
      for (let pos = 0; ; ) {
        const records = await log.readByPos(pos, 1000);
        if (records.length === 0) break;
        for (const { event } of records) {
          count.held += 1;
          if (event.meta?.$sig === undefined) count.unsigned += 1;
          count.heldJson += encoder.encode(JSON.stringify(event)).byteLength;
        }
        pos = records.at(-1)!.pos;
      }
    } finally {
      await log.close();
    }
  }
  return { ms, usageBefore, usageOpened, usageAfter, ...count };
}
