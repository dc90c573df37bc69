/**
 * Where new records go among the stored segments (core/segments.ts invariant 5): the plan of
 * which stored segments (plain or husks, core/husks.ts) are split and which segments are
 * written. Apart from segments.ts so that husks.ts, which builds on segments, is not imported by
 * it.
 */
import type { LocalRecord } from './events.ts';
import { huskSize, splitHuskAround } from './husks.ts';
import {
  cursorAt,
  duplicateCursor,
  indexAfter,
  MAX_SEGMENT_EVENTS,
  type Neighbours,
  packSegment,
  type Segment,
  unpackSegment,
} from './segments.ts';

export interface WritePlan {
  /** Stored segments to delete (they are split: their events are in `add`). */
  remove: Segment[];
  add: Segment[];
  /** The largest cursor in the log afterwards. */
  maxCursor: string;
}

/**
 * How to store new records (in receive order, positions consecutive) among the stored segments.
 * `neighbours` holds an entry for every cursor that cursorsToPlace named, `split` the stored
 * segments segmentsToSplit named.
 */
export function planWrite(input: {
  records: readonly LocalRecord[];
  maxCursor: string;
  neighbours: ReadonlyMap<string, Neighbours>;
  split: readonly Segment[];
}): WritePlan {
  const { records } = input;
  if (records.length === 0) return { remove: [], add: [], maxCursor: input.maxCursor };
  const sorted = records.map((r) => r.event.cursor).sort();
  const nextNew = new Map<string, string>();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw duplicateCursor(sorted[i]!);
    nextNew.set(sorted[i - 1]!, sorted[i]!);
  }
  // The smallest stored cursor after each placed new cursor.
  const nextStored = new Map<string, string>();
  const add: Segment[] = [];
  const remove: Segment[] = [];
  for (const segment of input.split) {
    remove.push(segment);
    if (huskSize(segment) > 0) {
      add.push(...splitHuskAround(segment, sorted, nextStored, duplicateCursor));
      continue;
    }
    let start = 0;
    for (const cursor of sorted) {
      if (cursor <= segment.first || cursor >= segment.last) continue;
      const cut = indexAfter(segment, cursor, true);
      if (cursorAt(segment, cut) === cursor) throw duplicateCursor(cursor);
      nextStored.set(cursor, cursorAt(segment, cut));
      if (cut > start) add.push(packSegment(unpackSegment(segment, start, cut)));
      start = cut;
    }
    add.push(packSegment(unpackSegment(segment, start)));
  }
  for (const cursor of sorted) {
    if (cursor > input.maxCursor || nextStored.has(cursor)) continue;
    const around = input.neighbours.get(cursor);
    if (around === undefined) throw new Error(`no neighbours were looked up for ${cursor}`);
    if (around.after !== undefined) nextStored.set(cursor, around.after[0]);
  }
  let run: LocalRecord[] = [];
  for (const record of records) {
    const previous = run[run.length - 1];
    if (previous !== undefined && !joins(previous, record, nextNew, nextStored, run.length)) {
      add.push(packSegment(run));
      run = [];
    }
    run.push(record);
  }
  add.push(packSegment(run));
  const last = sorted[sorted.length - 1]!;
  // Strings: Math.max does not apply.
  let maxCursor = input.maxCursor;
  if (last > maxCursor) maxCursor = last;
  return { remove, add, maxCursor };
}

/** Whether `record` may follow `previous` in one segment (invariants 1–3). */
function joins(
  previous: LocalRecord,
  record: LocalRecord,
  nextNew: ReadonlyMap<string, string>,
  nextStored: ReadonlyMap<string, string>,
  runLength: number,
): boolean {
  if (runLength >= MAX_SEGMENT_EVENTS) return false;
  if (record.pos !== previous.pos + 1) return false;
  const cursor = record.event.cursor;
  if (nextNew.get(previous.event.cursor) !== cursor) return false;
  const stored = nextStored.get(previous.event.cursor);
  return stored === undefined || stored > cursor;
}
