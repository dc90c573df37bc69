/**
 * Pages of one stream of the IndexedDB log, forward and backward, through the `stream` index of
 * schema 8 (idb-schema.ts invariant 10): a stream's segments are listed under [its number, the
 * rank of the cursor of its first event there] (idb-stream-keys.ts), in the total order but for
 * ties, which the index orders by primary key.
 *
 * Invariants:
 * 1. Segments of one rank are read as a whole group and ordered by the cursor of the stream's
 *    first event in each before any is used: a page of segments is used up to its last rank, and
 *    the next page starts at that rank again; a page all of one rank reads that rank's group
 *    whole, and the next page starts after it.
 * 2. Ordered so, a stream's segments are in the total order: segments partition it (core/segments.ts
 *    invariant 2), so of two segments holding a stream the one whose first event of it comes
 *    first holds only earlier events. Only the last segment whose first event of the stream is at
 *    or before `after` can hold its events past `after`; a read from there reads the groups of
 *    rank(after) and, when none of those starts at or before it, the last group below.
 * 3. Each segment is filtered to the stream and to (after, until] (forward) or [until, after)
 *    (backward), so a segment read that holds none of them adds nothing.
 * 4. How many segments a forward read asks for first is learned from the stream reads before it
 *    (events of the stream per segment used), not from whole-log pages: a stream's events are
 *    spread over other streams' segments as much as the streams were written together. The hint
 *    changes only how many requests a read makes and how many segment values they bring.
 */
import type { LocalRecord } from '../core/events.ts';
import { eventAt, indexAfter, type Segment, streamAt } from '../core/segments.ts';
import type { CursorQuery } from './adapter.ts';
import { request } from './idb-request.ts';
import {
  cursorRank,
  firstOfStream,
  type StoredSegment,
  type StreamIndexKey,
} from './idb-stream-keys.ts';

/** Segments a stream read asks for at most at once: a segment may hold mostly other streams. */
const STREAM_PAGE_SEGMENTS = 64;

/**
 * Events of the read stream per segment in recent forward stream reads (invariant 4): a hint for
 * how many of its segments a read asks for first. A stream written among others (a card's events
 * between the rest of a board's, a synced batch of many streams) has about one in each, whatever
 * the whole log's segments hold; one appended in batches of its own has a batch in each. Too
 * large, a read asks again (each time for four times as many); too small, it reads segments
 * the page does not use; never a wrong page.
 */
let eventsPerSegment = 8;

/** Segments to ask for first: enough for `limit` events at the hinted size, and one to spare. */
function segmentsFor(limit: number): number {
  return Math.max(1, Math.min(limit, Math.ceil(limit / eventsPerSegment) + 1));
}

/** A stream read: its segments' index, its number and name, and what it returns. */
export interface StreamRead {
  index: IDBIndex;
  no: number;
  stream: string;
  signatures: boolean;
}

/** (lower, upper]: undefined when empty (IndexedDB refuses a bound range open at equal ends). */
function rangeAfter(lower: IDBValidKey, upper: IDBValidKey): IDBKeyRange | undefined {
  try {
    return IDBKeyRange.bound(lower, upper, true, false);
  } catch {
    return undefined;
  }
}

/** The segment's rank in the stream's index key (the key it is listed under). */
function rankIn(r: StreamRead, s: StoredSegment): number {
  for (const [no, rank] of s.streamIx ?? []) if (no === r.no) return rank;
  // Not listed under this number: cannot be read from its range.
  throw new Error(`segment ${s.key} is not listed under stream ${r.no}`);
}

/** Invariant 1: by rank, then by the cursor of the stream's first event. */
function inOrder(r: StreamRead, segments: StoredSegment[]): StoredSegment[] {
  const keyed = segments.map((s) => ({
    s,
    rank: rankIn(r, s),
    first: firstOfStream(s, r.stream)!,
  }));
  keyed.sort((a, b) => a.rank - b.rank || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  return keyed.map((k) => k.s);
}

const getAll = (r: StreamRead, range: IDBKeyRange, count?: number) =>
  request(r.index.getAll(range, count)) as Promise<StoredSegment[]>;

const group = (r: StreamRead, rank: number) =>
  getAll(r, IDBKeyRange.only([r.no, rank] satisfies StreamIndexKey));

/**
 * Invariant 2: the segments that may hold the stream's events just after `after`, in order: the
 * group of its rank, and the last group below it unless one of those starts at or before it.
 */
async function aroundAfter(r: StreamRead, after: string): Promise<StoredSegment[]> {
  const rank = cursorRank(after);
  const [tied, below] = await Promise.all([
    group(r, rank),
    request(r.index.openKeyCursor(IDBKeyRange.bound([r.no], [r.no, rank], false, true), 'prev')),
  ]);
  const holds = tied.some((s) => firstOfStream(s, r.stream)! <= after);
  const lower = holds || below === null ? [] : await group(r, (below.key as StreamIndexKey)[1]);
  return inOrder(r, [...lower, ...tied]);
}

/** One stream forward: (after, until], at most `limit` records. */
export async function readStreamForward(
  r: StreamRead,
  query: CursorQuery,
  limit: number,
): Promise<LocalRecord[]> {
  const { after, until } = query;
  const out: LocalRecord[] = [];
  // Invariant 4: the segments this read used, for the hint.
  let used = 0;
  const take = (s: Segment) => {
    if (out.length >= limit) return;
    used += 1;
    const from = after === undefined ? 0 : indexAfter(s, after);
    const to = until === undefined ? s.n : indexAfter(s, until);
    for (let i = from; i < to && out.length < limit; i++) {
      if (streamAt(s, i) === r.stream) {
        out.push({ event: eventAt(s, i, r.signatures), pos: s.pos + i });
      }
    }
  };
  const upper: IDBValidKey = until === undefined ? [r.no, []] : [r.no, cursorRank(until)];
  let next: IDBKeyRange | undefined;
  if (after === undefined) next = IDBKeyRange.bound([r.no], upper);
  else {
    for (const s of await aroundAfter(r, after)) take(s);
    next = rangeAfter([r.no, cursorRank(after)], upper);
  }
  let ask = Math.min(STREAM_PAGE_SEGMENTS, segmentsFor(limit));
  while (next !== undefined && out.length < limit) {
    let batch = await getAll(r, next, ask);
    if (batch.length < ask) next = undefined;
    else {
      // Invariant 1: the last rank's group may go on past this page.
      const last = rankIn(r, batch[batch.length - 1]!);
      const whole = rankIn(r, batch[0]!) === last;
      batch = batch.filter((s) => rankIn(r, s) !== last);
      if (whole) {
        batch.push(...(await group(r, last)));
        next = rangeAfter([r.no, last], upper);
      } else next = IDBKeyRange.bound([r.no, last], upper);
    }
    for (const s of inOrder(r, batch)) take(s);
    ask = Math.min(STREAM_PAGE_SEGMENTS, ask * 4);
  }
  // A segment of none of the range's events (the one holding `after`, say) counts as one.
  if (used > 0) eventsPerSegment = Math.max(1, (eventsPerSegment + out.length / used) / 2);
  return out;
}

/** One stream backward: [until, after), at most `limit` records, the latest first. */
export async function readStreamBackward(
  r: StreamRead,
  query: CursorQuery,
  limit: number,
): Promise<LocalRecord[]> {
  const { after, until } = query;
  const out: LocalRecord[] = [];
  // Segments of rank(after) may start before `after` (invariant 3 drops what they hold past it).
  const upper: IDBValidKey = after === undefined ? [r.no, []] : [r.no, cursorRank(after)];
  let cursor = await request(r.index.openCursor(IDBKeyRange.bound([r.no], upper), 'prev'));
  while (cursor !== null && out.length < limit) {
    // Invariant 1: the whole group of this rank, then the latest first.
    const rank = rankIn(r, cursor.value as StoredSegment);
    const tied: StoredSegment[] = [];
    while (cursor !== null && rankIn(r, cursor.value as StoredSegment) === rank) {
      tied.push(cursor.value as StoredSegment);
      cursor.continue();
      cursor = await request(cursor.request as IDBRequest<IDBCursorWithValue | null>);
    }
    for (const s of inOrder(r, tied).reverse()) {
      const to = after === undefined ? s.n : indexAfter(s, after, true);
      const from = until === undefined ? 0 : indexAfter(s, until, true);
      for (let i = to - 1; i >= from && out.length < limit; i--) {
        if (streamAt(s, i) !== r.stream) continue;
        out.push({ event: eventAt(s, i, r.signatures), pos: s.pos + i });
      }
      // Every segment after this one in the walk holds only events before its first.
      if ((until !== undefined && s.first <= until) || out.length >= limit) return out;
    }
  }
  return out;
}
