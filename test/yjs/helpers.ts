/**
 * Yjs test helpers: replicas on memory storage whose logs are exchanged through the store's
 * ingest seam (the same path synced events take), so that tests choose exactly who syncs with
 * whom and when.
 */
import { afterEach } from 'vitest';
import { openStore } from '../../src/index.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import type { StoreInternals } from '../../src/store/internal.ts';
import type { EventStore } from '../../src/store/types.ts';
import type { YDocBinding } from '../../src/yjs/index.ts';
import { asRecords, captureInternals, manualClock } from '../store/helpers.ts';

export interface Replica {
  name: string;
  store: EventStore;
  internals: StoreInternals;
  clock: ReturnType<typeof manualClock>;
}

export async function openReplica(name: string, start?: number): Promise<Replica> {
  const captured = captureInternals();
  const clock = manualClock(start);
  const store = await openStore({
    name,
    storage: memoryStorage(),
    now: clock.now,
    syncFactory: captured.factory,
  });
  return { name, store, internals: captured.internals(), clock };
}

/**
 * One-way sync: `to` ingests every event `from` holds, in `from`'s receive order (which keeps
 * each origin's seq order, as the sync protocol does).
 */
export async function pull(to: Replica, from: Replica): Promise<void> {
  const records = await from.internals.log.readByPos(0, Number.MAX_SAFE_INTEGER);
  if (records.length === 0) return;
  await to.internals.ingest(asRecords(records.map((r) => r.event)));
}

/** Every replica ends with every event. */
export async function syncAll(replicas: Replica[]): Promise<void> {
  for (const to of replicas) for (const from of replicas) if (to !== from) await pull(to, from);
  for (const to of replicas) for (const from of replicas) if (to !== from) await pull(to, from);
}

/** Lets queued microtasks and the stores' change feeds run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Replicas and bindings that the calling test file's afterEach cleans up: it destroys every
 * tracked binding, lets their background work (the cache write) settle, then closes every store
 * `replica` opened. Call once, at the top of the file.
 */
export function replicasPerFile(): {
  replica(name: string, start?: number): Promise<Replica>;
  track(binding: YDocBinding): YDocBinding;
} {
  const opened: Replica[] = [];
  const bindings: YDocBinding[] = [];
  afterEach(async () => {
    for (const b of bindings.splice(0)) b.destroy();
    await settle();
    for (const r of opened.splice(0)) await r.store.close();
  });
  return {
    async replica(name, start) {
      const r = await openReplica(name, start);
      opened.push(r);
      return r;
    },
    track(binding) {
      bindings.push(binding);
      return binding;
    },
  };
}

/**
 * Types `chars` at the end of the binding's 'notes' text, one character an event: the replica's
 * clock advances a second before each, and each is flushed (appended) before the next.
 */
export async function typeChars(r: Replica, b: YDocBinding, chars: string): Promise<void> {
  for (const c of chars) {
    r.clock.advance(1000);
    const text = b.doc.getText('notes');
    text.insert(text.length, c);
    await b.flush();
  }
}
