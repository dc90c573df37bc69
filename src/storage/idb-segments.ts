import { slotOf } from '../core/copies.ts';
import type { LocalRecord } from '../core/events.ts';
import { EventId } from '../core/ids.ts';
import {
  cursorAt,
  cursorsToPlace,
  eventAt,
  indexAfter,
  type Neighbours,
  neighboursFromKeys,
  planWrite,
  type Segment,
  type SegmentKey,
  segmentsToSplit,
  streamAt,
  streamFirst,
  unpackSegment,
  type WritePlan,
} from '../core/segments.ts';
import type { CursorQuery } from './adapter.ts';

/** A request as a promise (the transaction stays active in its callbacks). */
export function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Index keys of the segments whose first cursor is <= / > `cursor` sort up to / after at(cursor). */
interface Ordering {
  store: IDBObjectStore;
  source: IDBObjectStore | IDBIndex;
  at(cursor: string): IDBValidKey;
  min: IDBValidKey | undefined;
  max: IDBValidKey | undefined;
}

function ordering(store: IDBObjectStore, stream: string | undefined): Ordering {
  if (stream === undefined) {
    // [c, []] sorts after every [c, last, n] (arrays sort after strings) and before [c', …] > c.
    return {
      store,
      source: store,
      at: (c) => [c, []],
      min: undefined,
      max: undefined,
    };
  }
  return {
    store,
    source: store.index('stream'),
    at: (c) => [stream, c],
    // [stream] sorts before every [stream, first], [stream, []] after them.
    min: [stream],
    max: [stream, []],
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
 * The segment that starts before position `from` and holds it, if any. Found by key: its value is
 * read only when it holds `from` (a read from a segment's start, or past the head, reads none).
 */
async function holdingPos(index: IDBIndex, from: number): Promise<Segment | undefined> {
  const cursor = await request(index.openKeyCursor(IDBKeyRange.upperBound(from, true), 'prev'));
  if (cursor === null) return undefined;
  const pos = cursor.key as number;
  if (pos + (cursor.primaryKey as SegmentKey)[2] <= from) return undefined;
  return (await request(index.get(pos))) as Segment | undefined;
}

/**
 * Events per segment in recent forward reads: a hint for how many segment keys a page asks for
 * (a batch of 100 appended in one call is one segment, a single append one of its own). A hint
 * too large costs a few more requests (each asks for four times as many keys as the one
 * before), one too small reads keys the page does not use; never a wrong page.
 */
let eventsPerSegment = 8;

function noteSegmentSize(observed: number): void {
  eventsPerSegment = Math.max(1, (eventsPerSegment + observed) / 2);
}

/** Keys to ask for first: enough for `limit` events at the hinted size, and one to spare. */
function keysFor(limit: number): number {
  return Math.max(1, Math.min(limit, Math.ceil(limit / eventsPerSegment) + 1));
}

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
  const o = ordering(store, query.stream);
  if (query.reverse) return readBackward(o, query, limit);
  return query.stream === undefined
    ? readForward(o, query, limit)
    : readStreamForward(o, query, limit);
}

/** The whole log forward (readStreamForward reads one stream). */
async function readForward(o: Ordering, query: CursorQuery, limit: number) {
  const { after, until } = query;
  // The segment holding `after` may hold later events too; it sorts before the main range. Keys
  // first: its value is read only when it does (a page often ends where a segment ends).
  const holdingKey =
    after === undefined
      ? undefined
      : request(o.source.openKeyCursor(range(o.min, o.at(after), false, false), 'prev'));
  const upper = until === undefined ? o.max : o.at(until);
  const main = range(after === undefined ? o.min : o.at(after), upper, after !== undefined, false);
  // Only the segment keys the page needs (a key says how many events its segment holds): as many
  // as the last pages' segment size suggests, then more after the last one while short.
  let want = keysFor(limit);
  const keysRequest = request(o.source.getAllKeys(main, want)) as Promise<SegmentKey[]>;
  const holding = (await holdingKey)?.primaryKey as SegmentKey | undefined;
  const keys = await keysRequest;
  // Counting the holding segment as no events: the page is never short, at worst a segment long.
  let needed = 0;
  let events = 0;
  let got = keys.length;
  for (;;) {
    while (needed < keys.length && events < limit) events += keys[needed++]![2];
    if (events >= limit || got < want) break;
    want = Math.min(limit, want * 4);
    const next = rangeAfter(keys[keys.length - 1]!, upper);
    // The last key was the upper bound itself: nothing lies after it in the range.
    if (next === undefined) break;
    const more = (await request(o.source.getAllKeys(next, want))) as SegmentKey[];
    got = more.length;
    for (const key of more) keys.push(key);
  }
  if (needed > 0) noteSegmentSize(events / needed);
  const [first, values] = await Promise.all([
    holding !== undefined && after !== undefined && holding[1] > after
      ? (request(o.store.get(holding)) as Promise<Segment | undefined>)
      : undefined,
    needed === 0
      ? []
      : (request(
          o.source.getAll(IDBKeyRange.bound(keys[0]!, keys[needed - 1]!), needed),
        ) as Promise<Segment[]>),
  ]);
  const out: LocalRecord[] = [];
  for (const s of first === undefined ? values : [first, ...values]) {
    if (out.length >= limit) break;
    const from = after === undefined ? 0 : indexAfter(s, after);
    const to = until === undefined ? s.n : indexAfter(s, until);
    for (const r of unpackSegment(s, from, Math.min(to, from + limit - out.length))) out.push(r);
  }
  return out;
}

/** Segments a stream read asks for at most at once: a segment may hold mostly other streams. */
const STREAM_PAGE_SEGMENTS = 64;

/**
 * One stream forward: the segments that list it in the `stream` index, in the order of their
 * [stream, first cursor of it] keys (the total order), each filtered to that stream. A segment
 * may hold other streams' events too, so a page reads segment values until it has `limit`
 * events or the range ends: never a short page before the end.
 */
async function readStreamForward(o: Ordering, query: CursorQuery, limit: number) {
  const { after, until } = query;
  const stream = query.stream!;
  const out: LocalRecord[] = [];
  const take = (s: Segment) => {
    const from = after === undefined ? 0 : indexAfter(s, after);
    const to = until === undefined ? s.n : indexAfter(s, until);
    for (let i = from; i < to && out.length < limit; i++) {
      if (streamAt(s, i) === stream) out.push({ event: eventAt(s, i), pos: s.pos + i });
    }
  };
  const upper = until === undefined ? o.max : o.at(until);
  // The segment listing the stream at or before `after` may hold its later events; it sorts
  // before every other segment of the range.
  if (after !== undefined) {
    const holding = await request(
      o.source.openCursor(range(o.min, o.at(after), false, false), 'prev'),
    );
    if (holding !== null) take(holding.value as Segment);
  }
  let next: IDBKeyRange | null | undefined =
    after === undefined ? range(o.min, upper, false, false) : rangeAfter(o.at(after), upper);
  let want = Math.min(STREAM_PAGE_SEGMENTS, keysFor(limit));
  while (next !== undefined && out.length < limit) {
    const segments = (await request(o.source.getAll(next, want))) as Segment[];
    for (const s of segments) take(s);
    if (segments.length < want) break;
    const last = segments[segments.length - 1]!;
    next = rangeAfter([stream, streamFirst(last, stream)!], upper);
    want = Math.min(STREAM_PAGE_SEGMENTS, want * 4);
  }
  return out;
}

async function readBackward(o: Ordering, query: CursorQuery, limit: number) {
  const { after, until, stream } = query;
  // Segments whose first cursor is < after, walked from the last; one is held at a time.
  const upper = after === undefined ? o.max : stream === undefined ? [after] : o.at(after);
  const out: LocalRecord[] = [];
  let cursor = await request(o.source.openCursor(range(o.min, upper, false, true), 'prev'));
  while (cursor !== null && out.length < limit) {
    const s = cursor.value as Segment;
    const to = after === undefined ? s.n : indexAfter(s, after, true);
    const from = until === undefined ? 0 : indexAfter(s, until, true);
    for (let i = to - 1; i >= from && out.length < limit; i--) {
      // A segment may hold several streams (core/segments.ts invariant 3).
      if (stream !== undefined && streamAt(s, i) !== stream) continue;
      out.push({ event: eventAt(s, i), pos: s.pos + i });
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
    request(index.getAll(IDBKeyRange.bound(from, afterPos + limit))) as Promise<Segment[]>,
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
    const next = await request(index.openKeyCursor(IDBKeyRange.lowerBound(from)));
    if (next === null) return out;
    from = next.key as number;
    segments = (await request(
      index.getAll(IDBKeyRange.bound(from, from + limit - out.length - 1)),
    )) as Segment[];
  }
}

/**
 * The stored record of each id, in the order asked. A custom id is found through the `id` index,
 * a canonical id through the `slot` index (core/segments.ts customIds): an id of canonical form
 * is looked up both ways, and the slot's event counts only if its id is the one asked.
 */
export async function lookupIds(
  store: IDBObjectStore,
  ids: readonly string[],
): Promise<(LocalRecord | undefined)[]> {
  const slots: string[] = [];
  const asked: number[] = [];
  ids.forEach((id, i) => {
    const slot = EventId.canonicalSlot(id);
    if (slot === undefined) return;
    slots.push(slot);
    asked.push(i);
  });
  const [custom, canonical] = await Promise.all([
    lookupThrough(store, 'id', ids, (s, id) => s.ids.indexOf(id as never)),
    slots.length === 0
      ? []
      : lookupThrough(store, 'slot', slots, (s, slot) => {
          for (let at = 0; at < s.n; at++)
            if (slotOf({ cursor: cursorAt(s, at) }) === slot) return at;
          return -1;
        }),
  ]);
  const out = custom.slice();
  canonical.forEach((record, k) => {
    const i = asked[k]!;
    if (out[i] === undefined && record !== undefined && record.event.id === ids[i]) out[i] = record;
  });
  return out;
}

/**
 * The keys of the segments holding `records` (held records, by their own id or slot, whichever
 * index lists them: core/segments.ts customIds), each once.
 */
export async function segmentKeysOf(
  store: IDBObjectStore,
  records: readonly LocalRecord[],
): Promise<SegmentKey[]> {
  const byId = store.index('id');
  const bySlot = store.index('slot');
  const keys = (await Promise.all(
    records.map((r) => {
      const slot = slotOf(r.event);
      return request(
        EventId.canonicalSlot(r.event.id) === slot ? bySlot.getKey(slot) : byId.getKey(r.event.id),
      );
    }),
  )) as (SegmentKey | undefined)[];
  const byFirst = new Map<string, SegmentKey>();
  for (const key of keys) if (key !== undefined) byFirst.set(key[0], key);
  return [...byFirst.values()];
}

/**
 * The stored record of each key of `indexName` (an index whose entries name segments), in the
 * order asked: each key's segment is read once, and `indexIn` finds the key's event in it (-1
 * when it is not there).
 */
export async function lookupThrough(
  store: IDBObjectStore,
  indexName: string,
  wantedKeys: readonly string[],
  indexIn: (segment: Segment, key: string) => number,
): Promise<(LocalRecord | undefined)[]> {
  const index = store.index(indexName);
  const keys = (await Promise.all(wantedKeys.map((k) => request(index.getKey(k))))) as (
    | SegmentKey
    | undefined
  )[];
  const wanted = new Map<string, SegmentKey>();
  for (const key of keys) if (key !== undefined) wanted.set(key[0], key);
  if (wanted.size === 0) return keys.map(() => undefined);
  // A segment's key starts with its first cursor.
  const segments = new Map<string, Segment>();
  for (const s of await readSegments(store, [...wanted.values()])) segments.set(s.first, s);
  return wantedKeys.map((k, i) => {
    const key = keys[i];
    const s = key === undefined ? undefined : segments.get(key[0]);
    const at = s === undefined ? -1 : indexIn(s, k);
    return s === undefined || at < 0 ? undefined : { event: eventAt(s, at), pos: s.pos + at };
  });
}

/** Per cursor, the stored keys read for a batch at most: more, and per-cursor reads are cheaper. */
const NEIGHBOUR_KEYS_PER_CURSOR = 4;

/**
 * The segments around each cursor (core/segments.ts Neighbours), from keys alone: the keys of
 * the batch's cursor range in three requests (neighboursFromKeys), or, when that range holds
 * many more stored segments than the batch has cursors, two requests per cursor.
 */
export async function lookupNeighbours(
  store: IDBObjectStore,
  cursors: readonly string[],
): Promise<Map<string, Neighbours>> {
  if (cursors.length === 0) return new Map();
  let lo = cursors[0]!;
  let hi = lo;
  for (const c of cursors) {
    if (c < lo) lo = c;
    if (c > hi) hi = c;
  }
  const limit = NEIGHBOUR_KEYS_PER_CURSOR * cursors.length + 16;
  const [first, inside, next] = await Promise.all([
    request(store.openKeyCursor(IDBKeyRange.upperBound([lo, []]), 'prev')),
    // An empty range (one cursor) is not a valid IDBKeyRange: nothing lies strictly inside it.
    lo === hi
      ? []
      : (request(
          store.getAllKeys(IDBKeyRange.bound([lo, []], [hi, []], true, false), limit),
        ) as Promise<SegmentKey[]>),
    request(store.getKey(IDBKeyRange.lowerBound([hi, []], true))) as Promise<
      SegmentKey | undefined
    >,
  ]);
  if (inside.length >= limit) return neighboursOneByOne(store, cursors);
  const keys: SegmentKey[] = [];
  if (first !== null) keys.push(first.key as SegmentKey);
  keys.push(...inside);
  if (next !== undefined) keys.push(next);
  return neighboursFromKeys(cursors, keys);
}

async function neighboursOneByOne(
  store: IDBObjectStore,
  cursors: readonly string[],
): Promise<Map<string, Neighbours>> {
  const out = new Map<string, Neighbours>();
  await Promise.all(
    cursors.map(async (c) => {
      const [before, after] = await Promise.all([
        request(store.openKeyCursor(IDBKeyRange.upperBound([c, []]), 'prev')),
        request(store.getKey(IDBKeyRange.lowerBound([c, []], true))),
      ]);
      const around: Neighbours = {};
      if (before !== null) around.before = before.key as SegmentKey;
      if (after !== undefined) around.after = after as SegmentKey;
      out.set(c, around);
    }),
  );
  return out;
}

export async function readSegments(
  store: IDBObjectStore,
  keys: readonly SegmentKey[],
): Promise<Segment[]> {
  const values = await Promise.all(keys.map((k) => request(store.get(k))));
  return values.filter((s): s is Segment => s !== undefined);
}

/**
 * Where new records go among the stored segments (invariant 6): packed directly when they all sort
 * after maxCursor, else after looking up their neighbours and reading the segments to split.
 */
export async function placeRecords(
  store: IDBObjectStore,
  records: readonly LocalRecord[],
  maxCursor: string,
): Promise<WritePlan> {
  const cursors = cursorsToPlace(records, maxCursor);
  if (cursors.length === 0) {
    return planWrite({ records, maxCursor, neighbours: new Map(), split: [] });
  }
  const neighbours = await lookupNeighbours(store, cursors);
  const split = await readSegments(store, segmentsToSplit(neighbours));
  return planWrite({ records, maxCursor, neighbours, split });
}

/** Issues the plan's deletes, then its adds; failures abort the transaction (invariant 3). */
export function applyWrite(store: IDBObjectStore, plan: WritePlan): void {
  for (const key of plan.remove) store.delete(key);
  for (const segment of plan.add) store.add(segment);
}

/** Smallest cursor among positions > pos (pages of keys, each in its own transaction). */
export async function minCursorAfterPos(
  db: IDBDatabase,
  pos: number,
  page: number,
): Promise<string | undefined> {
  let min: string | undefined;
  let from = pos + 1;
  // Keys only: a segment's smallest cursor is its first, the head of its key. Positions are
  // dense, so the next page starts where this one's events end. The segment holding pos + 1,
  // if it starts before it, is looked up beside the first page.
  // With holes (adapter.ts invariant 3) `from` lags the true positions: a page may then re-read
  // keys, which the minimum does not mind, and `from` still grows by a page each time.
  for (let firstPage = true; ; firstPage = false) {
    const index = db.transaction('segments').objectStore('segments').index('pos');
    const [holding, keys] = await Promise.all([
      firstPage ? holdingPos(index, from) : undefined,
      request(index.getAllKeys(IDBKeyRange.lowerBound(from), page)) as Promise<SegmentKey[]>,
    ]);
    if (holding !== undefined) {
      min = cursorAt(holding, from - holding.pos);
      from = holding.pos + holding.n;
    }
    for (const [first, , n] of keys) {
      if (min === undefined || first < min) min = first;
      from += n;
    }
    if (keys.length < page) return min;
  }
}
