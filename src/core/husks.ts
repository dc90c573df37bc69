/**
 * Husks: what a segment (core/segments.ts) leaves when a partial replica trims its events
 * (docs/storage-growth.md, storage/adapter.ts invariant 6), pure. A husk keeps what the log's
 * indexes need to keep answering for trimmed events, and nothing a read returns.
 *
 * Invariants:
 * 1. A husk's key is [first, last, 0]: `n` is 0, so every reader that counts or unpacks events
 *    by `n` sees none, and a key alone tells a husk (n = 0) from a segment (n >= 1). `trimmed`
 *    holds how many events it stands for.
 * 2. It keeps the cursors of its events (their hlc, replica and seq columns, or `cursors`,
 *    sliced as the segment stored them), so a late event that sorts inside it splits it
 *    exactly, and segments keep partitioning the total order (segments.ts invariant 2).
 * 3. It keeps `slotRuns` (the `slot` index: a trimmed (replica, seq) is still held), `customIds`
 *    (the unique `id` index: a trimmed custom id is still held) and `streamMax` (the `version`
 *    index: a stream's version never goes back). It has no `pos` and no `streamKeys`: the `pos`
 *    and `stream` indexes, which only reads use, do not list it.
 * 4. Splitting a husk gives its custom ids and stream maxima to its first part only: the unique
 *    `id` index must list an id once, and a stream maximum may be kept by any part.
 */
import { slotOf } from './copies.ts';
import type { LocalRecord } from './events.ts';
import type { Cursor, EventId, Hlc, ReplicaId, Seq } from './ids.ts';
import { cursorAt, foundBySlot, type Segment, slotRunsOf } from './segments.ts';

/** How many trimmed events a stored segment stands for (0: a segment holding its events). */
export const huskSize = (s: Segment): number => s.trimmed ?? 0;

/** Whether a segment key (or segment) is a husk's (invariant 1). */
export const isHuskKey = (key: readonly [string, string, number]): boolean => key[2] === 0;

/** The husk of `records` (a run of one stored segment, in its order: segments.ts invariant 1). */
export function huskOf(records: readonly LocalRecord[]): Segment {
  const head = records[0]!.event;
  const n = records.length;
  const cursors: Cursor[] = new Array(n);
  const custom: EventId[] = [];
  const maxVersion = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = records[i]!.event;
    cursors[i] = e.cursor;
    if (!foundBySlot(e.id, e.replica, e.seq, slotOf(e))) custom.push(e.id);
    if (e.version > (maxVersion.get(e.stream) ?? 0)) maxVersion.set(e.stream, e.version);
  }
  return withCursors(cursors, head, custom, [...maxVersion]);
}

/** Parts of a husk cut before each index of `cuts` (ascending, inside 1..trimmed-1). */
export function splitHusk(husk: Segment, cuts: readonly number[]): Segment[] {
  const bounds = [0, ...cuts, huskSize(husk)];
  const out: Segment[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const cursors: Cursor[] = [];
    for (let i = bounds[k]!; i < bounds[k + 1]!; i++) cursors.push(cursorAt(husk, i));
    // Invariant 4.
    out.push(
      withCursors(
        cursors,
        husk,
        k === 0 ? (husk.customIds ?? []) : [],
        k === 0 ? (husk.streamMax ?? []) : [],
      ),
    );
  }
  return out;
}

/**
 * A husk split where new cursors fall inside it (segments.ts planWrite): its parts, and for each
 * such cursor the first trimmed cursor after it (the stored neighbour a new run must not pass).
 */
export function splitHuskAround(
  husk: Segment,
  cursors: readonly string[],
  nextStored: Map<string, string>,
  duplicate: (cursor: string) => Error,
): Segment[] {
  const cuts = new Set<number>();
  for (const cursor of cursors) {
    if (cursor <= husk.first || cursor >= husk.last) continue;
    const cut = huskIndexAfter(husk, cursor);
    if (cursorAt(husk, cut) === cursor) throw duplicate(cursor);
    nextStored.set(cursor, cursorAt(husk, cut));
    cuts.add(cut);
  }
  return splitHusk(
    husk,
    [...cuts].sort((a, b) => a - b),
  );
}

/** Index of the first trimmed event whose cursor is >= `cursor` (the husk's size when none). */
export function huskIndexAfter(husk: Segment, cursor: string): number {
  let lo = 0;
  let hi = huskSize(husk);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cursorAt(husk, mid) < cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A husk with explicit cursors (segments.ts cursorAt reads `cursors` first). */
function withCursors(
  cursors: Cursor[],
  source: { replica: ReplicaId | ReplicaId[]; seq: Seq | Seq[]; hlc: Hlc | Hlc[] },
  customIds: readonly EventId[],
  streamMax: readonly [string, number][],
): Segment {
  // Unused beside explicit cursors (invariant 2), but typed: the first event's, as stored.
  const first = <T>(column: T | T[]): T => (Array.isArray(column) ? column[0]! : column);
  // No `pos` (invariant 3): the type says every segment has one, the `pos` index must not list it.
  const husk = {
    first: cursors[0]!,
    last: cursors[cursors.length - 1]!,
    n: 0,
    trimmed: cursors.length,
    stream: '',
    streamMax: streamMax.map(([s, v]) => [s, v]),
    ids: [],
    types: [],
    data: [],
    replica: first(source.replica),
    seq: first(source.seq),
    version: 0,
    hlc: first(source.hlc),
    cursors,
    slotRuns: slotRunsOf(cursors.map((cursor) => slotOf({ cursor }))),
  } as Omit<Segment, 'pos'> as Segment;
  if (customIds.length > 0) husk.customIds = [...customIds];
  return husk;
}
