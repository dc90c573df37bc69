/**
 * Reads what a document is made of from its stream: the latest snapshot (up to a bound) plus
 * the update events it does not cover. Shared by bindYDoc (no bound) and docAt (a prefix of the
 * total order).
 *
 * Invariants:
 * 1. The result includes every well-formed update event of the stream within the bound: covered
 *    ones through the snapshot's state, the others one by one (events.ts invariants 1-2).
 * 2. Update events after the snapshot are all uncovered (events.ts invariant 3), so only the
 *    events before it are filtered by `covers`; those are read but not decoded unless uncovered.
 *    They must be read: a late update can sort anywhere before the snapshot, and the EventStore
 *    interface reads only in the total order (no receive-order read that would find it in
 *    O(new events)). Decoding and applying, the expensive part, stays O(uncovered).
 * 3. Updates come out in the total order, snapshot state first: Yjs would converge in any order,
 *    but the same order on every replica keeps replays reproducible.
 * 4. A malformed snapshot is reported and the one before it is used; a malformed update is
 *    reported and skipped.
 */
import type { StoredEvent } from '../core/events.ts';
import { Cursor } from '../core/ids.ts';
import type { EventStore, ReadQuery } from '../store/types.ts';
import {
  type Covers,
  cover,
  isCovered,
  parseYEvent,
  SNAPSHOT_TYPE,
  UPDATE_TYPE,
} from './events.ts';

/** A prefix of the total order: events up to a wall time, or up to and including an event. */
export type LoadBound = { to: number } | { through: StoredEvent } | undefined;

export interface LoadedDoc {
  /** Yjs updates to apply in this order: the snapshot's state first, if any. */
  updates: Uint8Array[];
  /** What the loaded updates include, for the next snapshot and to skip live duplicates. */
  covers: Covers;
  /** Ids of the update events loaded one by one (not those inside the snapshot). */
  applied: Set<string>;
  snapshot: StoredEvent | undefined;
}

type Store = Pick<EventStore<unknown>, 'read'>;

function within(bound: LoadBound, event: StoredEvent): boolean {
  if (bound === undefined || 'to' in bound) return true; // `to` is applied by the read itself
  return Cursor.compare(event.cursor as Cursor, bound.through.cursor as Cursor) <= 0;
}

function boundQuery(bound: LoadBound, query: ReadQuery): ReadQuery {
  if (bound === undefined) return query;
  // An event's HLC wall time is its `time`: everything up to `through` has time <= through.time,
  // so `to` narrows the read and `within` cuts the rest of that millisecond.
  return { ...query, to: 'to' in bound ? bound.to : bound.through.time };
}

async function latestSnapshot(
  store: Store,
  stream: string,
  bound: LoadBound,
  onError: (error: unknown) => void,
): Promise<{ event: StoredEvent; state: Uint8Array; covers: Covers } | undefined> {
  const through = bound !== undefined && 'through' in bound ? bound.through : undefined;
  let candidate: StoredEvent | undefined =
    through?.stream === stream && through.type === SNAPSHOT_TYPE ? through : undefined;
  let before = through?.cursor;
  for (;;) {
    if (candidate === undefined) {
      const query: ReadQuery = { stream, types: [SNAPSHOT_TYPE], reverse: true, limit: 1 };
      if (before !== undefined) query.after = before;
      if (bound !== undefined && 'to' in bound) query.to = bound.to;
      [candidate] = await store.read(query);
      if (candidate === undefined) return undefined;
    }
    try {
      const parsed = parseYEvent(candidate);
      if (parsed?.kind === 'snapshot') return parsed;
    } catch (error) {
      onError(error);
    }
    before = candidate.cursor;
    candidate = undefined;
  }
}

function decodeUpdates(events: StoredEvent[], loaded: LoadedDoc, onError: (e: unknown) => void) {
  for (const event of events) {
    try {
      const parsed = parseYEvent(event);
      if (parsed?.kind !== 'update') continue;
      loaded.updates.push(parsed.update);
      loaded.applied.add(event.id);
      cover(loaded.covers, event.replica, event.seq);
    } catch (error) {
      onError(error);
    }
  }
}

/** Loads the document of `stream` within `bound` (the whole stream when undefined). */
export async function loadDoc(
  store: Store,
  stream: string,
  bound: LoadBound,
  onError: (error: unknown) => void,
): Promise<LoadedDoc> {
  const snapshot = await latestSnapshot(store, stream, bound, onError);
  const loaded: LoadedDoc = {
    updates: [],
    covers: { ...snapshot?.covers },
    applied: new Set(),
    snapshot: snapshot?.event,
  };
  const updates: ReadQuery = { stream, types: [UPDATE_TYPE] };
  if (snapshot === undefined) {
    const all = await store.read(boundQuery(bound, updates));
    decodeUpdates(
      all.filter((e) => within(bound, e)),
      loaded,
      onError,
    );
    return loaded;
  }
  loaded.updates.push(snapshot.state);
  // Late updates: ordered before the snapshot, yet not in it (invariant 2).
  const older = await store.read({ ...updates, reverse: true, after: snapshot.event.cursor });
  const late = older.filter((e) => !isCovered(e, snapshot.covers)).reverse();
  const newer = await store.read(boundQuery(bound, { ...updates, after: snapshot.event.cursor }));
  decodeUpdates([...late, ...newer.filter((e) => within(bound, e))], loaded, onError);
  return loaded;
}
