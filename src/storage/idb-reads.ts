/**
 * Reads of the IndexedDB log's segments, on requests of the caller's transaction (or, for
 * minCursorAfterPos, transactions of its own): pages in the total order, whole or of one stream,
 * forward and backward, and pages in receive order. Every read holds at most `limit` events
 * beside the segments at its ends (adapter.ts invariant 5).
 */
import type { LocalRecord } from '../core/events.ts';
import {
  cursorAt,
  eventAt,
  indexAfter,
  type Segment,
  type SegmentKey,
  segmentKey,
  unpackSegment,
} from '../core/segments.ts';
import type { CursorQuery } from './adapter.ts';
import type { PosKey } from './idb-schema.ts';
import { indexEntries, orderIndex, request } from './idb-segments.ts';
import { readStreamNumber } from './idb-stream-keys.ts';
import { readStreamBackward, readStreamForward } from './idb-stream-reads.ts';

/** Index keys of the segments whose first cursor is <= / > `cursor` sort up to / after at(cursor). */
interface Ordering {
  store: IDBObjectStore;
  source: IDBIndex;
  at(cursor: string): IDBValidKey;
  min: IDBValidKey | undefined;
  max: IDBValidKey | undefined;
}

/** The whole log in the total order (a stream's reads are idb-stream-reads.ts). */
function ordering(store: IDBObjectStore): Ordering {
  // [c, []] sorts after every [c, last, n] (arrays sort after strings) and before [c', …] > c.
  return {
    store,
    source: orderIndex(store),
    at: (c) => [c, []],
    min: undefined,
    max: undefined,
  };
}

function range(
  lower: IDBValidKey | undefined,
  upper: IDBValidKey | undefined,
  lowerOpen: boolean,
  upperOpen: boolean,
): IDBKeyRange | null {
  if (lower !== undefined && upper !== undefined) {
    return IDBKeyRange.bound(lower, upper, lowerOpen, upperOpen);
  }
  if (lower !== undefined) return IDBKeyRange.lowerBound(lower, lowerOpen);
  if (upper !== undefined) return IDBKeyRange.upperBound(upper, upperOpen);
  return null;
}

/** (lower, upper]: undefined when empty (IndexedDB refuses a bound range open at equal ends). */
function rangeAfter(lower: IDBValidKey, upper: IDBValidKey | undefined): IDBKeyRange | undefined {
  if (upper === undefined) return IDBKeyRange.lowerBound(lower, true);
  try {
    return IDBKeyRange.bound(lower, upper, true, false);
  } catch {
    return undefined;
  }
}

/**
 * The segment that starts before position `from` and holds it, if any. Found by its `pos` key
 * ([pos, first, n]): its value is read only when it holds `from` (a read from a segment's start,
 * or past the head, reads none).
 */
async function holdingPos(index: IDBIndex, from: number): Promise<Segment | undefined> {
  const [entry] = await indexEntries<PosKey>(
    index,
    IDBKeyRange.upperBound([from], true),
    1,
    'prev',
  );
  if (entry === undefined) return undefined;
  const [pos, , n] = entry.key;
  if (pos + n <= from) return undefined;
  return (await request(index.objectStore.get(entry.primaryKey))) as Segment | undefined;
}

/**
 * Segment values a whole-log page asks for first (readForward): a few, whose sizes tell how many
 * more the page needs. A guess from other reads' sizes costs whole segments read for nothing
 * when it is wrong, where a wrong guess of keys cost only keys.
 */
const FIRST_VALUES = 2;

/** Forward: (after, until]; reverse: [until, after). At most `limit` records. */
export async function readCursorRange(
  store: IDBObjectStore,
  query: CursorQuery,
  limit: number,
): Promise<LocalRecord[]> {
  const { after, until } = query;
  if (after !== undefined && until !== undefined) {
    if (query.reverse ? after <= until : after >= until) return [];
  }
  if (query.stream !== undefined) {
    // A stream's number names it in the `stream` index (idb-schema.ts invariant 10); a stream
    // without one has no segment.
    const no = await readStreamNumber(store.transaction, query.stream);
    if (no === undefined) return [];
    const r = {
      index: store.index('stream'),
      no,
      stream: query.stream,
      signatures: wantsSignatures(query),
    };
    return query.reverse ? readStreamBackward(r, query, limit) : readStreamForward(r, query, limit);
  }
  const o = ordering(store);
  return query.reverse ? readBackward(o, query, limit) : readForward(o, query, limit);
}

/** Whether records need `$sig` as text (core/segments.ts invariant 8: a fold does not). */
const wantsSignatures = (query: CursorQuery): boolean => query.withoutSignatures !== true;

/** The whole log forward (readStreamForward reads one stream). */
async function readForward(o: Ordering, query: CursorQuery, limit: number) {
  const { after, until } = query;
  const signatures = wantsSignatures(query);
  // The segment holding `after` may hold later events too; it sorts before the main range. Its
  // key first: its value is read only when it does (a page often ends where a segment ends).
  const holdingKey =
    after === undefined
      ? undefined
      : indexEntries<SegmentKey>(o.source, range(o.min, o.at(after), false, false), 1, 'prev');
  const upper = until === undefined ? o.max : o.at(until);
  // The `order` index gives primary keys only to getAllKeys, not the [first, last, n] a page
  // would count with: the values are read at once, a few first, then as many more after the
  // last one as the sizes read so far say the page needs.
  let want = Math.min(limit, FIRST_VALUES);
  let next: IDBKeyRange | null | undefined = range(
    after === undefined ? o.min : o.at(after),
    upper,
    after !== undefined,
    false,
  );
  const valuesRequest = request(o.source.getAll(next, want)) as Promise<Segment[]>;
  const [holding] = (await holdingKey) ?? [];
  const values: Segment[] = [];
  let events = 0;
  for (let batch = await valuesRequest; ; ) {
    for (const s of batch) {
      values.push(s);
      events += s.n;
    }
    if (events >= limit || batch.length < want) break;
    next = rangeAfter(segmentKey(batch[batch.length - 1]!), upper);
    // The last key was the upper bound itself: nothing lies after it in the range.
    if (next === undefined) break;
    want = Math.min(limit, Math.ceil((limit - events) / Math.max(1, events / values.length)));
    batch = (await request(o.source.getAll(next, want))) as Segment[];
  }
  const first =
    holding !== undefined && after !== undefined && holding.key[1] > after
      ? ((await request(o.store.get(holding.primaryKey))) as Segment | undefined)
      : undefined;
  const out: LocalRecord[] = [];
  for (const s of first === undefined ? values : [first, ...values]) {
    if (out.length >= limit) break;
    const from = after === undefined ? 0 : indexAfter(s, after);
    const to = until === undefined ? s.n : indexAfter(s, until);
    const end = Math.min(to, from + limit - out.length);
    for (const r of unpackSegment(s, from, end, signatures)) out.push(r);
  }
  return out;
}

/** The whole log backward (idb-stream-reads.ts reads one stream). */
async function readBackward(o: Ordering, query: CursorQuery, limit: number) {
  const { after, until } = query;
  const signatures = wantsSignatures(query);
  // Segments whose first cursor is < after, walked from the last; one is held at a time.
  const upper = after === undefined ? o.max : [after];
  const out: LocalRecord[] = [];
  let cursor = await request(o.source.openCursor(range(o.min, upper, false, true), 'prev'));
  while (cursor !== null && out.length < limit) {
    const s = cursor.value as Segment;
    const to = after === undefined ? s.n : indexAfter(s, after, true);
    const from = until === undefined ? 0 : indexAfter(s, until, true);
    for (let i = to - 1; i >= from && out.length < limit; i--) {
      out.push({ event: eventAt(s, i, signatures), pos: s.pos + i });
    }
    if (until !== undefined && s.first <= until) break;
    if (out.length < limit) {
      cursor.continue();
      cursor = await request(cursor.request as IDBRequest<IDBCursorWithValue | null>);
    }
  }
  return out;
}

/**
 * Up to `limit` records with positions > afterPos, in receive order. Positions are dense but for
 * the holes of copies that lost (adapter.ts invariant 3): a range that comes back short is
 * continued from the next stored position, so a short page still means the head was reached.
 */
export async function readPosRange(
  store: IDBObjectStore,
  afterPos: number,
  limit: number,
): Promise<LocalRecord[]> {
  const index = store.index('pos');
  let from = afterPos + 1;
  const [first, rest] = await Promise.all([
    holdingPos(index, from),
    request(index.getAll(IDBKeyRange.bound([from], [afterPos + limit, []]))) as Promise<Segment[]>,
  ]);
  const out: LocalRecord[] = [];
  let segments = rest;
  if (first !== undefined) {
    out.push(...unpackSegment(first, from - first.pos, from - first.pos + limit));
    from = first.pos + first.n;
  }
  for (;;) {
    for (const s of segments) {
      if (out.length >= limit) return out;
      out.push(...unpackSegment(s, 0, limit - out.length));
      from = s.pos + s.n;
    }
    if (out.length >= limit) return out;
    // A hole, or the head: the next stored position, if any, says which.
    const next = await request(index.openKeyCursor(IDBKeyRange.lowerBound([from])));
    if (next === null) return out;
    from = (next.key as PosKey)[0];
    segments = (await request(
      index.getAll(IDBKeyRange.bound([from], [from + limit - out.length - 1, []])),
    )) as Segment[];
  }
}

/** Smallest cursor among positions > pos (pages of keys, each in its own transaction). */
export async function minCursorAfterPos(
  db: IDBDatabase,
  pos: number,
  page: number,
): Promise<string | undefined> {
  let min: string | undefined;
  let from = pos + 1;
  // Keys only: a segment's smallest cursor is its first, in its `pos` key. Positions are
  // dense, so the next page starts where this one's events end. The segment holding pos + 1,
  // if it starts before it, is looked up beside the first page.
  // With holes (adapter.ts invariant 3) `from` lags the true positions: a page may then re-read
  // keys, which the minimum does not mind, and `from` still grows by a page each time.
  for (let firstPage = true; ; firstPage = false) {
    const index = db.transaction('segments').objectStore('segments').index('pos');
    const [holding, keys] = await Promise.all([
      firstPage ? holdingPos(index, from) : undefined,
      indexEntries<PosKey>(index, IDBKeyRange.lowerBound([from]), page),
    ]);
    if (holding !== undefined) {
      min = cursorAt(holding, from - holding.pos);
      from = holding.pos + holding.n;
    }
    for (const {
      key: [, first, n],
    } of keys) {
      if (min === undefined || first < min) min = first;
      from += n;
    }
    if (keys.length < page) return min;
  }
}
