/**
 * Trimming the IndexedDB log below a horizon (adapter.ts invariant 6), on requests of the caller's
 * transaction: segments at or below the horizon become husks (core/husks.ts), in the order of the
 * `order` index (the total order), at most `limit` events per call.
 *
 * Invariants:
 * 1. A segment that the horizon cuts is written again as its husk and the segment of the events
 *    above it; both are added after the old one is deleted (indexeddb.ts invariant 3), in the same
 *    transaction, so the indexes never miss a held id or slot.
 * 3. Only events at positions <= maxPos are trimmed (adapter.ts trim): in a segment they are a
 *    prefix (core/segments.ts invariant 1), the rest stays whole.
 * 2. The horizon is kept in `meta` (KEY_HORIZON) in that transaction, and only grows: every handle
 *    (every tab) reads it there.
 */
import { huskOf, isHuskKey } from '../core/husks.ts';
import {
  indexAfter,
  packSegment,
  type Segment,
  type SegmentKey,
  unpackSegment,
} from '../core/segments.ts';
import type { TrimResult } from './adapter.ts';
import { addSegments, indexEntries, orderIndex, request } from './idb-segments.ts';

export const KEY_HORIZON = 'sys:horizon';
/** The largest position trimmed (adapter.ts trimmedPos). */
export const KEY_TRIMMED_POS = 'sys:trimmedPos';
/** Segment keys read per request while looking for segments to trim. */
const KEY_PAGE = 64;

export async function trimInTransaction(
  tx: IDBTransaction,
  horizon: string,
  limit: number,
  maxPos: number,
): Promise<TrimResult> {
  const segments = tx.objectStore('segments');
  const meta = tx.objectStore('meta');
  const stored = (await request(meta.get(KEY_HORIZON))) as string | undefined;
  const upper: IDBValidKey = [horizon, []];
  let trimmed = 0;
  let last: string | undefined;
  let lastPos = 0;
  let more = false;
  let after: SegmentKey | undefined;
  walk: for (;;) {
    const range =
      after === undefined
        ? IDBKeyRange.upperBound(upper)
        : IDBKeyRange.bound(after, upper, true, false);
    const keys = await indexEntries<SegmentKey>(orderIndex(segments), range, KEY_PAGE);
    for (const { key, primaryKey } of keys) {
      after = key;
      if (isHuskKey(key)) continue;
      const segment = (await request(segments.get(primaryKey))) as Segment;
      // Positions follow one another in a segment: those <= maxPos are a prefix.
      const below = Math.min(indexAfter(segment, horizon), maxPos - segment.pos + 1);
      if (below <= 0) continue;
      if (trimmed >= limit) {
        more = true;
        break walk;
      }
      const cut = Math.min(below, limit - trimmed);
      const records = unpackSegment(segment);
      // Invariant 1.
      segments.delete(primaryKey);
      const parts = [huskOf(records.slice(0, cut))];
      if (cut < records.length) parts.push(packSegment(records.slice(cut)));
      await addSegments(segments, parts);
      trimmed += cut;
      last = records[cut - 1]!.event.cursor;
      lastPos = Math.max(lastPos, records[cut - 1]!.pos);
      if (cut < below) {
        more = true;
        break walk;
      }
    }
    if (keys.length < KEY_PAGE) break;
  }
  const next = last !== undefined && (stored === undefined || last > stored) ? last : stored;
  if (next !== stored && next !== undefined) meta.put(next, KEY_HORIZON);
  if (lastPos > 0) {
    const before = (await request(meta.get(KEY_TRIMMED_POS))) as number | undefined;
    if (lastPos > (before ?? 0)) meta.put(lastPos, KEY_TRIMMED_POS);
  }
  return { trimmed, horizon: next, more };
}
