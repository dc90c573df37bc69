/**
 * Colliding copies in the `segments` store (core/copies.ts), on requests of the caller's
 * transaction like idb-segments.ts: finding the held record at a (replica, seq) through the
 * unique `slot` index, and taking held records that lost out of their segments.
 */
import { slotOf } from '../core/copies.ts';
import type { LocalRecord } from '../core/events.ts';
import { cursorAt, packSegment, segmentKey, unpackSegment } from '../core/segments.ts';
import { lookupThrough, readSegments, segmentKeysOf } from './idb-segments.ts';

/** The stored record at each `<replica>.<seq>` (core/copies.ts slotOf), in the order asked. */
export function lookupSlots(
  store: IDBObjectStore,
  slots: readonly string[],
): Promise<(LocalRecord | undefined)[]> {
  return lookupThrough(store, 'slot', slots, (s, slot) => {
    for (let at = 0; at < s.n; at++) if (slotOf({ cursor: cursorAt(s, at) }) === slot) return at;
    return -1;
  });
}

/**
 * Takes held records out of their segments (copies that lost: core/copies.ts invariant 3): each
 * segment holding one is deleted and written again as the runs of what remains, which keeps the
 * segment invariants (a part of a run is a run). Resolves once the requests are issued.
 */
export async function removeRecords(
  store: IDBObjectStore,
  records: readonly LocalRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const gone = new Set(records.map((r) => r.pos));
  for (const segment of await readSegments(store, await segmentKeysOf(store, records))) {
    store.delete(segmentKey(segment));
    let run: LocalRecord[] = [];
    for (const record of unpackSegment(segment)) {
      if (gone.has(record.pos)) {
        if (run.length > 0) store.add(packSegment(run));
        run = [];
      } else run.push(record);
    }
    if (run.length > 0) store.add(packSegment(run));
  }
}
