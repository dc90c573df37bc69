/**
 * Which form of a segment IndexedDB writes: the compact form (core/segment-codec.ts
 * compactSegment), always, except in a database a benchmark named with storePlainSegments.
 *
 * Invariants:
 * 1. Unless a database is named here, every write is compact, exactly as before this module:
 *    nothing outside the benchmark names one, and it is not part of the public API.
 * 2. The plain form is always valid to write: core/segments.ts eventAt reads both forms (its
 *    invariant 7), and segments written before compact segments existed are plain. So a
 *    database written partly in each form reads back the same records.
 */
import { compactSegment } from '../core/segment-codec.ts';
import type { Segment } from '../core/segments.ts';

/** Databases (by name) whose new segments are written plain (invariant 1). */
const plain = new Set<string>();

/**
 * @internal For test/bench/compact-ab.ts only, which measures what the compact form costs
 * against the plain one in the same run (issue 18's bound on time): segments written from now on
 * into the database named `dbName`, in this realm (a worker has its own), keep the plain form;
 * `false` goes back to compact.
 */
export function storePlainSegments(dbName: string, on = true): void {
  if (on) plain.add(dbName);
  else plain.delete(dbName);
}

/** The form in which `segment` is written to `store`'s database (invariant 1). */
export function writtenForm(store: IDBObjectStore, segment: Segment): Segment {
  if (plain.size > 0 && plain.has(store.transaction.db.name)) return segment;
  return compactSegment(segment);
}
