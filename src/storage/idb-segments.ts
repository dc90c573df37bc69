/**
 * Lookups and writes of the IndexedDB log's segments, on requests of the caller's transaction:
 * records by id and by index key, the keys of held records' segments, where new records go among
 * the stored segments and the plan's writes (reads of pages are idb-reads.ts).
 */
import { slotOf } from '../core/copies.ts';
import type { LocalRecord } from '../core/events.ts';
import { isHuskKey } from '../core/husks.ts';
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

/** A request as a promise (the transaction stays active in its callbacks). */
export function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
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
): Promise<SegmentKey[]> {
  const byId = byIdKey(store);
  const bySlot = bySlotKey(store);
  const keys = await Promise.all(
    records.map(({ event }) => {
      const slot = slotOf(event);
      return foundBySlot(event.id, event.replica, event.seq, slot) ? bySlot(slot) : byId(event.id);
    }),
  );
  const byFirst = new Map<string, SegmentKey>();
  // A husk holds no record (core/husks.ts): a record found there was trimmed meanwhile.
  for (const key of keys) if (key !== undefined && !isHuskKey(key)) byFirst.set(key[0], key);
  return [...byFirst.values()];
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
  const isHusk = (key: SegmentKey | undefined) => key !== undefined && isHuskKey(key);
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

/** Finds the key of the segment an index lists under `key`, or undefined. */
type SegmentFinder = (key: string) => Promise<SegmentKey | undefined>;

/** The segment whose custom ids hold `id` (the unique `id` index). */
function byIdKey(store: IDBObjectStore): SegmentFinder {
  const index = store.index('id');
  return (id) => request(index.getKey(id)) as Promise<SegmentKey | undefined>;
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
            ? (cursor.primaryKey as SegmentKey)
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

/**
 * Writes the segments `keys` again with `records` (every record they held, some changed), placed
 * among the others as a new write is: a re-stamp's moved events, a signer's signed copies.
 */
export async function rewriteSegments(
  store: IDBObjectStore,
  keys: readonly SegmentKey[],
  records: LocalRecord[],
): Promise<WritePlan> {
  records.sort((a, b) => a.pos - b.pos);
  for (const key of keys) store.delete(key);
  // Requests run in order: this read sees the deletes.
  const last = await request(store.openKeyCursor(null, 'prev'));
  const placed = await placeRecords(
    store,
    records,
    last === null ? '' : (last.key as SegmentKey)[1],
  );
  applyWrite(store, placed);
  return placed;
}

/** Issues the plan's deletes, then its adds; failures abort the transaction (invariant 3). */
export function applyWrite(store: IDBObjectStore, plan: WritePlan): void {
  for (const key of plan.remove) store.delete(key);
  for (const segment of plan.add) store.add(segment);
}
