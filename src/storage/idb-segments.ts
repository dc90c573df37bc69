/**
 * Lookups and writes of the IndexedDB log's segments, on requests of the caller's transaction:
 * records by id and by index key, the keys of held records' segments, where new records go among
 * the stored segments and the plan's writes (reads of pages are idb-reads.ts).
 *
 * Since schema 6 a segment's primary key is a number (idb-schema.ts invariant 8): positive for a
 * segment, negative for a husk, so that an `id` or `slot` index entry tells a husk by its primary
 * key alone. Where a segment lies in the total order is its [first, last, n] in the `order` index.
 */
import { slotOf } from '../core/copies.ts';
import type { LocalRecord } from '../core/events.ts';
import {
  huskIndexOfSlot,
  huskSize,
  huskTraceAt,
  huskTraceOfId,
  huskWithout,
} from '../core/husks.ts';
import { EventId } from '../core/ids.ts';
import { planWrite, type WritePlan } from '../core/segment-plan.ts';
import {
  cursorAt,
  cursorsToPlace,
  eventAt,
  foundBySlot,
  type Neighbours,
  neighboursFromKeys,
  type Segment,
  type SegmentKey,
  type SlotRun,
  segmentsToSplit,
  slotRunHolds,
} from '../core/segments.ts';

import type { TrimmedTrace } from '../core/trimmed-copies.ts';
import { request } from './idb-request.ts';
import { storedForm, streamNumbers, streamPositions } from './idb-stream-keys.ts';
import { writtenForm } from './idb-written-form.ts';

export { request };

/** A segment's primary key (idb-schema.ts invariant 8). */
export type RecordKey = number;

/** Whether a primary key is a husk's (idb-schema.ts invariant 8). */
export const isHuskRecord = (key: RecordKey): boolean => key < 0;

/** The segments in the total order, by [first, last, n] (idb-schema.ts invariant 8). */
export const orderIndex = (store: IDBObjectStore): IDBIndex => store.index('order');

/** An index entry read by a key cursor: its key and the segment's primary key. */
export interface IndexEntry<K> {
  key: K;
  primaryKey: RecordKey;
}

/**
 * The entries of `index` in `range`, in `direction`, at most `limit`. A key cursor: getAllKeys
 * on an index gives only primary keys, and these walks need what the index key says.
 */
export function indexEntries<K>(
  index: IDBIndex,
  range: IDBKeyRange | null,
  limit: number,
  direction: IDBCursorDirection = 'next',
): Promise<IndexEntry<K>[]> {
  return new Promise((resolve, reject) => {
    const out: IndexEntry<K>[] = [];
    if (limit <= 0) {
      resolve(out);
      return;
    }
    const walk = index.openKeyCursor(range, direction);
    walk.onsuccess = () => {
      const cursor = walk.result;
      if (cursor === null) {
        resolve(out);
        return;
      }
      out.push({ key: cursor.key as K, primaryKey: cursor.primaryKey as RecordKey });
      if (out.length >= limit) resolve(out);
      else cursor.continue();
    };
    walk.onerror = () => reject(walk.error);
  });
}

/** The key of the first entry of `index` in `range`, walking in `direction`, if any. */
async function firstKey<K>(
  index: IDBIndex,
  range: IDBKeyRange | null,
  direction: IDBCursorDirection,
): Promise<K | undefined> {
  const cursor = await request(index.openKeyCursor(range, direction));
  return cursor === null ? undefined : (cursor.key as K);
}

/** The largest cursor stored ('' when the log is empty): the last key of the `order` index. */
export async function lastCursor(store: IDBObjectStore): Promise<string> {
  return (await firstKey<SegmentKey>(orderIndex(store), null, 'prev'))?.[1] ?? '';
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
    lookupThrough(store, ids, byIdKey(store), (s, id) => s.ids.indexOf(id as never)),
    slots.length === 0 ? [] : lookupSlots(store, slots),
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
): Promise<RecordKey[]> {
  const byId = byIdKey(store);
  const bySlot = bySlotKey(store);
  const keys = await Promise.all(
    records.map(({ event }) => {
      const slot = slotOf(event);
      return foundBySlot(event.id, event.replica, event.seq, slot) ? bySlot(slot) : byId(event.id);
    }),
  );
  const out = new Set<RecordKey>();
  // A husk holds no record (core/husks.ts): a record found there was trimmed meanwhile.
  for (const key of keys) if (key !== undefined && !isHuskRecord(key)) out.add(key);
  return [...out];
}

/**
 * The ids and slots among those asked that trimmed events hold (adapter.ts invariant 6): the
 * index lists them in a husk, whose key alone says so (core/husks.ts invariant 1). An id of
 * canonical form counts as held when its slot is.
 */
export async function heldByHusks(
  store: IDBObjectStore,
  ids: readonly string[],
  slots: readonly string[],
): Promise<{ ids: Set<string>; slots: Set<string> }> {
  const byId = byIdKey(store);
  const bySlot = bySlotKey(store);
  const isHusk = (key: RecordKey | undefined) => key !== undefined && isHuskRecord(key);
  const [idKeys, slotKeys, canonicalKeys] = await Promise.all([
    Promise.all(ids.map(byId)),
    Promise.all(slots.map(bySlot)),
    Promise.all(
      ids.map((id) => {
        const slot = EventId.canonicalSlot(id);
        return slot === undefined ? undefined : bySlot(slot);
      }),
    ),
  ]);
  return {
    ids: new Set(ids.filter((_, i) => isHusk(idKeys[i]) || isHusk(canonicalKeys[i]))),
    slots: new Set(slots.filter((_, i) => isHusk(slotKeys[i]))),
  };
}

/** A husk read for an ingest's meeting with trimmed copies, by its primary key. */
export type HuskReads = Map<RecordKey, Promise<Segment>>;

/**
 * The traces (core/trimmed-copies.ts) of the trimmed events holding each id and each slot, in
 * the order asked, read from the husks the `id` and `slot` indexes list them in. An id of
 * canonical form is met through its slot, whose trace says whose it is. `husks` keeps the husks
 * read, for evictHusked.
 */
export async function huskTraces(
  store: IDBObjectStore,
  ids: readonly string[],
  slots: readonly string[],
  husks: HuskReads,
): Promise<{ byId: (TrimmedTrace | undefined)[]; bySlot: (TrimmedTrace | undefined)[] }> {
  const byId = byIdKey(store);
  const bySlot = bySlotKey(store);
  const husk = (key: RecordKey): Promise<Segment> => {
    let read = husks.get(key);
    if (read === undefined) {
      read = request(store.get(key)) as Promise<Segment>;
      husks.set(key, read);
    }
    return read;
  };
  const atSlot = async (slot: string | undefined): Promise<TrimmedTrace | undefined> => {
    if (slot === undefined) return undefined;
    const key = await bySlot(slot);
    if (key === undefined || !isHuskRecord(key)) return undefined;
    const h = await husk(key);
    const i = huskIndexOfSlot(h, slot);
    return i < 0 ? undefined : huskTraceAt(h, i);
  };
  const ofId = async (id: string): Promise<TrimmedTrace | undefined> => {
    const key = await byId(id);
    if (key !== undefined && isHuskRecord(key)) return huskTraceOfId(await husk(key), id);
    const trace = await atSlot(EventId.canonicalSlot(id));
    return trace !== undefined && (trace.id === id || trace.cursor === undefined)
      ? trace
      : undefined;
  };
  const [idTraces, slotTraces] = await Promise.all([
    Promise.all(ids.map(ofId)),
    Promise.all(slots.map(atSlot)),
  ]);
  return { byId: idTraces, bySlot: slotTraces };
}

/**
 * Drops the events of trimmed copies that lost from their husks (core/husks.ts invariant 6):
 * each husk touched is written again without them under a new key, or deleted when none is left.
 * `husks` holds every husk an evicted trace was read from (huskTraces).
 */
export async function evictHusked(
  store: IDBObjectStore,
  evict: readonly { cursor: string }[],
  husks: HuskReads,
): Promise<void> {
  if (evict.length === 0) return;
  const gone = new Set(evict.map((e) => e.cursor));
  const rewritten: Segment[] = [];
  for (const [key, read] of husks) {
    const h = await read;
    const drop = new Set<number>();
    for (let i = 0; i < huskSize(h); i++) if (gone.has(cursorAt(h, i))) drop.add(i);
    if (drop.size === 0) continue;
    store.delete(key);
    const rest = huskWithout(h, drop);
    if (rest !== undefined) rewritten.push(rest);
  }
  await addSegments(store, rewritten);
}

/** Finds the key of the segment an index lists under `key`, or undefined. */
type SegmentFinder = (key: string) => Promise<RecordKey | undefined>;

/** The segment whose custom ids hold `id` (the unique `id` index). */
function byIdKey(store: IDBObjectStore): SegmentFinder {
  const index = store.index('id');
  return (id) => request(index.getKey(id)) as Promise<RecordKey | undefined>;
}

/**
 * The segment holding `slot`: the run with the greatest first slot <= `slot`, if it reaches it
 * (idb-schema.ts invariant 7; runs of stored segments do not overlap, so no other can).
 * Arrays sort after strings, so [slot, []] bounds every run that starts at `slot`.
 */
function bySlotKey(store: IDBObjectStore): SegmentFinder {
  const index = store.index('slot');
  return (slot) =>
    new Promise((resolve, reject) => {
      const walk = index.openKeyCursor(IDBKeyRange.upperBound([slot, []]), 'prev');
      walk.onsuccess = () => {
        const cursor = walk.result;
        const run = cursor?.key as SlotRun | undefined;
        resolve(
          cursor && run !== undefined && slotRunHolds(run, slot)
            ? (cursor.primaryKey as RecordKey)
            : undefined,
        );
      };
      walk.onerror = () => reject(walk.error);
    });
}

/**
 * Whether a stored segment holds a slot of `run` (a run of slots about to be written): the run
 * with the greatest first slot <= its last, if that one reaches its first (idb-schema.ts
 * invariant 7: stored runs do not overlap, and runs of two replicas never interleave).
 */
export function slotRunTaken(index: IDBIndex, run: SlotRun): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const walk = index.openKeyCursor(IDBKeyRange.upperBound([run[1], []]), 'prev');
    walk.onsuccess = () => {
      const stored = walk.result?.key as SlotRun | undefined;
      resolve(stored !== undefined && stored[1] >= run[0]);
    };
    walk.onerror = () => reject(walk.error);
  });
}

/** The stored record at each `<replica>.<seq>` (core/copies.ts slotOf), in the order asked. */
export function lookupSlots(
  store: IDBObjectStore,
  slots: readonly string[],
): Promise<(LocalRecord | undefined)[]> {
  return lookupThrough(store, slots, bySlotKey(store), (s, slot) => {
    for (let at = 0; at < s.n; at++) if (slotOf({ cursor: cursorAt(s, at) }) === slot) return at;
    return -1;
  });
}

/** Whether a husk (a trimmed run, idb-schema.ts invariant 8: a key below zero) holds each slot. */
export function slotsInHusks(store: IDBObjectStore, slots: readonly string[]): Promise<boolean[]> {
  const find = bySlotKey(store);
  return Promise.all(
    slots.map(async (slot) => {
      const key = await find(slot);
      return key !== undefined && isHuskRecord(key);
    }),
  );
}

/**
 * The stored record of each key, in the order asked: `find` names the segment an index lists
 * the key under, each segment is read once, and `indexIn` finds the key's event in it (-1 when
 * it is not there).
 */
async function lookupThrough(
  store: IDBObjectStore,
  wantedKeys: readonly string[],
  find: SegmentFinder,
  indexIn: (segment: Segment, key: string) => number,
): Promise<(LocalRecord | undefined)[]> {
  const keys = await Promise.all(wantedKeys.map(find));
  const wanted = new Set<RecordKey>();
  for (const key of keys) if (key !== undefined) wanted.add(key);
  if (wanted.size === 0) return keys.map(() => undefined);
  const segments = new Map<RecordKey, Segment>();
  for (const s of await readSegments(store, [...wanted])) segments.set(s.key!, s);
  return wantedKeys.map((k, i) => {
    const key = keys[i];
    const s = key === undefined ? undefined : segments.get(key);
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
  const order = orderIndex(store);
  const [first, inside, next] = await Promise.all([
    firstKey<SegmentKey>(order, IDBKeyRange.upperBound([lo, []]), 'prev'),
    // An empty range (one cursor) is not a valid IDBKeyRange: nothing lies strictly inside it.
    lo === hi
      ? []
      : indexEntries<SegmentKey>(order, IDBKeyRange.bound([lo, []], [hi, []], true, false), limit),
    firstKey<SegmentKey>(order, IDBKeyRange.lowerBound([hi, []], true), 'next'),
  ]);
  if (inside.length >= limit) return neighboursOneByOne(order, cursors);
  const keys: SegmentKey[] = [];
  if (first !== undefined) keys.push(first);
  for (const entry of inside) keys.push(entry.key);
  if (next !== undefined) keys.push(next);
  return neighboursFromKeys(cursors, keys);
}

async function neighboursOneByOne(
  order: IDBIndex,
  cursors: readonly string[],
): Promise<Map<string, Neighbours>> {
  const out = new Map<string, Neighbours>();
  await Promise.all(
    cursors.map(async (c) => {
      const [before, after] = await Promise.all([
        firstKey<SegmentKey>(order, IDBKeyRange.upperBound([c, []]), 'prev'),
        firstKey<SegmentKey>(order, IDBKeyRange.lowerBound([c, []], true), 'next'),
      ]);
      const around: Neighbours = {};
      if (before !== undefined) around.before = before;
      if (after !== undefined) around.after = after;
      out.set(c, around);
    }),
  );
  return out;
}

/** The stored segments of these primary keys (a key no longer stored is left out). */
export async function readSegments(
  store: IDBObjectStore,
  keys: readonly RecordKey[],
): Promise<Segment[]> {
  const values = await Promise.all(keys.map((k) => request(store.get(k))));
  return values.filter((s): s is Segment => s !== undefined);
}

/** The stored segments at these places in the total order (`order` index keys). */
async function readByOrder(store: IDBObjectStore, keys: readonly SegmentKey[]): Promise<Segment[]> {
  const order = orderIndex(store);
  const values = await Promise.all(keys.map((k) => request(order.get(k))));
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
  const split = await readByOrder(store, segmentsToSplit(neighbours));
  return planWrite({ records, maxCursor, neighbours, split });
}

/**
 * Writes the stored `segments` again with `records` (every record they held, some changed),
 * placed among the others as a new write is: a re-stamp's moved events, a signer's signed copies.
 * A segment written again over the same [first, last, n] keeps its key: LevelDB (Chromium) then
 * overwrites its record and index entries in place rather than keep the old ones, deleted, until
 * it compacts (a signer rewrites every segment it sends once).
 */
export async function rewriteSegments(
  store: IDBObjectStore,
  segments: readonly Segment[],
  records: LocalRecord[],
): Promise<WritePlan> {
  records.sort((a, b) => a.pos - b.pos);
  const keys = new Map<string, RecordKey>();
  for (const s of segments) {
    store.delete(s.key!);
    keys.set(orderId(s), s.key!);
  }
  // Requests run in order: this read sees the deletes.
  const placed = await placeRecords(store, records, await lastCursor(store));
  await applyWrite(store, placed, keys);
  return placed;
}

/** A segment's place in the total order, as a map key. */
const orderId = (s: Segment): string => `${s.first} ${s.last} ${s.n}`;

/**
 * Issues the plan's deletes, then its adds; failures abort the transaction (indexeddb.ts
 * invariant 3). Resolves once the requests are issued. `reuse` gives the keys of deleted
 * segments that a new one at the same place takes again (rewriteSegments).
 */
export async function applyWrite(
  store: IDBObjectStore,
  plan: WritePlan,
  reuse?: ReadonlyMap<string, RecordKey>,
): Promise<void> {
  for (const segment of plan.remove) store.delete(segment.key!);
  await addSegments(store, plan.add, reuse);
}

/**
 * Adds new segments (never read back: they carry no key). A segment takes the key `reuse` gives
 * its place, else the next key of the store's generator; a husk a negative one below every stored
 * key (idb-schema.ts invariant 8), found by one read, only when there is a husk to add.
 */
export async function addSegments(
  store: IDBObjectStore,
  segments: readonly Segment[],
  reuse?: ReadonlyMap<string, RecordKey>,
): Promise<void> {
  if (segments.length === 0) return;
  let next = 0;
  const positions = new Map<string, number>();
  for (const s of segments) {
    for (const [name, pos] of streamPositions(s))
      if (!positions.has(name)) positions.set(name, pos);
  }
  const [lowest, numbers] = await Promise.all([
    segments.some((s) => s.n === 0) ? request(store.openKeyCursor(null, 'next')) : null,
    streamNumbers(store.transaction, positions),
  ]);
  if (lowest !== null) next = Math.min(0, lowest.key as RecordKey);
  for (const stored of segments) {
    // The stored form (core/segment-codec.ts): shorter, and read back by eventAt as it is.
    const segment = storedForm(writtenForm(store, stored), numbers);
    const key = reuse?.get(orderId(segment));
    if (key !== undefined) store.add({ ...segment, key });
    else if (segment.n === 0) store.add({ ...segment, key: --next });
    else store.add(segment);
  }
}
