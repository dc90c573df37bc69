/**
 * The bench worker's part of `npm run bench -- storage` (size-browser.ts): a store on IndexedDB
 * appends the demo's mix (size-events.ts) through the public API, 100 events an appendMany, and
 * syncs to a real server until nothing is pending, so that its log holds the signed copies as a
 * synced device's does (signing happens on the way out: store/signing.ts). Loaded on first use.
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
