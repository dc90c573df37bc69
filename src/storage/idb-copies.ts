/**
 * Colliding copies in the `segments` store (core/copies.ts), on requests of the caller's
 * transaction like idb-segments.ts: finding the held record at a (replica, seq) through the
 * unique `slot` index, and taking held records that lost out of their segments.
 */
import { slotOf } from '../core/copies.ts';
import type { LocalRecord } from '../core/events.ts';
import {
  cursorAt,
  eventAt,
  packSegment,
  type Segment,
  type SegmentKey,
  segmentKey,
  unpackSegment,
} from '../core/segments.ts';
import { readSegments, request } from './idb-segments.ts';

/** The stored record at each `<replica>.<seq>` (core/copies.ts slotOf), in the order asked. */
export async function lookupSlots(
  store: IDBObjectStore,
  slots: readonly string[],
): Promise<(LocalRecord | undefined)[]> {
  const index = store.index('slot');
  const keys = (await Promise.all(slots.map((slot) => request(index.getKey(slot))))) as (
    | SegmentKey
    | undefined
  )[];
  const wanted = new Map<string, SegmentKey>();
  for (const key of keys) if (key !== undefined) wanted.set(key[0], key);
  if (wanted.size === 0) return keys.map(() => undefined);
  const segments = new Map<string, Segment>();
  for (const s of await readSegments(store, [...wanted.values()])) segments.set(s.first, s);
  return slots.map((slot, i) => {
    const key = keys[i];
    const s = key === undefined ? undefined : segments.get(key[0]);
    if (s === undefined) return undefined;
    for (let at = 0; at < s.n; at++) {
      if (slotOf({ cursor: cursorAt(s, at) }) === slot)
        return { event: eventAt(s, at), pos: s.pos + at };
    }
    return undefined;
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
  const index = store.index('id');
  const keys = (await Promise.all(records.map((r) => request(index.getKey(r.event.id))))) as (
    | SegmentKey
    | undefined
  )[];
  const byFirst = new Map<string, SegmentKey>();
  for (const key of keys) if (key !== undefined) byFirst.set(key[0], key);
  const gone = new Set(records.map((r) => r.pos));
  for (const segment of await readSegments(store, [...byFirst.values()])) {
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
