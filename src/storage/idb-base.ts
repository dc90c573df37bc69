/**
 * A server snapshot laid under an empty IndexedDB log (adapter.ts invariant 7,
 * core/space-join.ts), on requests of the caller's transaction.
 *
 * Invariants:
 * 1. The base's version vector is kept in `meta` (KEY_BASE_VECTOR), not as a husk: a husk keeps
 *    the cursor of every event it stands for (core/husks.ts invariant 2), which a snapshot does
 *    not carry. Every ingest reads it in its transaction and drops the events it covers before
 *    anything else (idb-ingest.ts), so no index is asked about them.
 * 2. Each stream's version and conflict flag become its `streams` row, the floor that every
 *    append and ingest reads (idb-streams.ts); no segment holds them.
 * 3. All of it (horizon, vector, rows, clock, snapshots, app meta) is written in one transaction,
 *    and only when the counters say the log never held an event and no horizon is set.
 */
import { clockAfterBase } from '../core/space-join.ts';
import type { LogBase } from './adapter.ts';
import { appKey, asCounters, KEY_COUNTERS, type StreamRow } from './idb-schema.ts';
import { request } from './idb-segments.ts';
import { KEY_HORIZON } from './idb-trim.ts';

/** The installed base's version vector (invariant 1). */
export const KEY_BASE_VECTOR = 'sys:baseVector';

/** The stores installInTransaction writes. */
export const BASE_STORES = ['segments', 'meta', 'streams', 'snapshots'] as const;

export async function installInTransaction(tx: IDBTransaction, base: LogBase): Promise<boolean> {
  const meta = tx.objectStore('meta');
  const [rawCounters, horizon] = await Promise.all([
    request(meta.get(KEY_COUNTERS)),
    request(meta.get(KEY_HORIZON)),
  ]);
  const counters = asCounters(rawCounters);
  // Invariant 3 (core/space-join.ts invariant 1).
  if (counters.pos > 0 || horizon !== undefined) return false;
  meta.put(base.horizon, KEY_HORIZON);
  meta.put({ ...base.vector }, KEY_BASE_VECTOR);
  meta.put({ ...counters, clock: clockAfterBase(counters.clock, base.horizon) }, KEY_COUNTERS);
  const streams = tx.objectStore('streams');
  for (const { stream, version, conflict } of base.streams) {
    const row: StreamRow = { stream, version };
    if (conflict) row.conflicted = true;
    streams.put(row);
  }
  const snapshots = tx.objectStore('snapshots');
  for (const snapshot of base.snapshots) snapshots.put(snapshot);
  for (const [key, value] of Object.entries(base.meta)) meta.put(value, appKey(key));
  return true;
}

/** The vector read in the caller's transaction (undefined: no base). */
export async function readBaseVector(
  meta: IDBObjectStore,
): Promise<Readonly<Record<string, number>> | undefined> {
  const value = (await request(meta.get(KEY_BASE_VECTOR))) as
    | Record<string, number>
    | undefined
    | null;
  return value === null || typeof value !== 'object' ? undefined : value;
}
