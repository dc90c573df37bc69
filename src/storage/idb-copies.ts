/**
 * Colliding copies in the `segments` store (core/copies.ts), on requests of the caller's
 * transaction like idb-segments.ts: taking held records that lost out of their segments (finding
 * the held record at a (replica, seq) is idb-segments.ts lookupSlots).
 */
import type { LocalRecord } from '../core/events.ts';
import { packSegment, type Segment, unpackSegment } from '../core/segments.ts';
import { addSegments, readSegments, segmentKeysOf } from './idb-segments.ts';

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
  const runs: Segment[] = [];
  for (const segment of await readSegments(store, await segmentKeysOf(store, records))) {
    store.delete(segment.key!);
    let run: LocalRecord[] = [];
    for (const record of unpackSegment(segment)) {
      if (gone.has(record.pos)) {
        if (run.length > 0) runs.push(packSegment(run));
        run = [];
      } else run.push(record);
    }
    if (run.length > 0) runs.push(packSegment(run));
  }
  // In the stored form, with its `stream` index keys (idb-schema.ts invariant 10).
  await addSegments(store, runs);
}
