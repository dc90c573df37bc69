/**
 * The IndexedDB schema of the log and its upgrades (see the header of indexeddb.ts for the
 * layout and its invariants). Only the upgrade transaction runs here.
 *
 * Invariants:
 * 1. A new database gets its replica id, epoch and zeroed counters in the transaction that creates
 *    it, so every handle (every tab) reads the same ones.
 * 2. Upgrading from version 1 moves every event into segments inside the upgrade transaction: it
 *    commits whole or the database stays at version 1 (the open fails and can be retried).
 * 3. Version 3 adds the unique `slot` index ((replica, seq): core/copies.ts). Upgrading writes
 *    every segment's `slots`; a slot that an older log holds twice (stored before the index
 *    existed) is indexed for the copy first in the total order only, so such a file still opens
 *    and both copies stay readable (the next collision on that slot is resolved on ingest).
 * 4. Version 4 indexes in `id` only the ids the `slot` index cannot find (core/segments.ts
 *    customIds): a local append without ids then takes no `id` entries. Ids stay unique: a custom
 *    id of canonical form ("invoice.42") is looked up in both indexes before it is written, and
 *    once one is stored (the counters' shapedIds, set with it) canonical ids are looked up in
 *    the `id` index before they are written (idb-ingest.ts writeRecords). Upgrades from
 *    versions 1 and 2 set shapedIds without looking.
 * 5. Version 4's `stream` index is multi-entry on each segment's `streamKeys` ([stream, cursor of
 *    its first event there]): a segment may hold several streams (core/segments.ts invariant 3),
 *    and is listed once under each. (Versions 4 to 7; version 8 keys it by number: invariant 10.)
 * 7. Version 5's `slot` index is multi-entry on each segment's `slotRuns` (core/segments.ts): one
 *    entry per run of consecutive seqs of one replica, not one per event, and not unique: the
 *    writers keep (replica, seq) unique (an append takes fresh seqs behind the counters; an ingest
 *    looks for a stored run overlapping its own before it writes: idb-ingest.ts). Upgrading turns
 *    each segment's `slots` into runs, so a slot listed once stays listed once (invariant 3).
 * 6. (Versions 4 to 6; version 7 replaced it: invariant 9.) Version 4's `version` index is multi-entry on each segment's `streamMax` ([stream, largest
 *    version there]): a stream's version is the greater of its largest key there and its row in
 *    `streams`, which is only a floor now (written by an ingest that flags a conflict or takes a
 *    held copy out), so an append writes no row (idb-streams.ts).
 * 8. Version 6 keys a segment by a number, `key`: the store's generator gives a segment the next
 *    positive one, a husk (core/husks.ts) takes a negative one below every stored key
 *    (idb-segments.ts addSegments), so an index entry tells a husk by its primary key alone.
 *    Chromium writes the primary key into every index entry twice (in the entry's key and its
 *    value) as UTF-16: [first, last, n] cost about 200 bytes each time, and the `stream` and
 *    `version` indexes hold about two entries per event. The total order is the unique `order`
 *    index on [first, last, n] (one entry per segment; husks have n = 0, invariant 1 there),
 *    which every walk in that order reads; the unique `pos` index is on [pos, first, n], so a
 *    walk in receive order reads where each segment lies and how many events it holds from keys
 *    alone, as the old primary key told. Upgrading moves every segment (and husk) into the new
 *    store in one walk of the old one in key order, inside the upgrade transaction, so it commits
 *    whole or the database stays at its version (as invariant 2); from versions 2 to 4 that walk
 *    also gives each segment the fields of version 5 (invariants 3 to 7).
 * 9. Version 7 has no `version` index: each stream's row in `streams` holds its version (the
 *    largest of its events here) and its conflict flag, written by every append and ingest that
 *    grows the version (idb-streams.ts). The index held one entry per stream of each segment,
 *    about one per event of a synced log; a row is one per stream, overwritten. Upgrading writes
 *    every stream's row from the largest key of the index (or, from versions 1 to 5, from the
 *    segments' `streamMax` as the walk of invariant 8 writes them), keeping each row that holds
 *    more and every conflict flag, then deletes the index, inside the upgrade transaction.
 *    A segment holding events is stored without `streamMax` (core/segment-codec.ts invariant 5;
 *    a discard works a stream's version out from its events: idb-streams.ts invariant 1); a husk
 *    keeps it (core/husks.ts).
 * 10. Version 8's `stream` index is multi-entry on each segment's `streamIx`: [stream number,
 *    rank of the cursor of its first event of that stream] per stream it holds (husks: none).
 *    Firefox keeps every index key twice, uncompressed (in the index and beside the record's
 *    value): a [name, cursor] key cost about 100 bytes each time, about 0.5 entries per event of
 *    the demo's mix. A stream's number is in its `streams` row (`no`), given by the first write
 *    of a segment listing it (the position of one of its events, so it is never given twice) and
 *    kept by every writer of the row; a rank sorts as cursors do but may tie, and a stream read
 *    orders tied segments by cursor (idb-stream-keys.ts, idb-stream-reads.ts). The stored form
 *    drops what the index keys and the events already say: `streamKeys` keeps only the names
 *    (none for a segment of one stream), and `streamOf` is a Uint8Array. Upgrading (from 7, or
 *    at the end of the chain from 1 to 6) writes every segment in that form in one walk, numbers
 *    each stream with events in its row, and builds the index anew (from 6 and 7, whose index
 *    was on `streamKeys`), inside the upgrade transaction: it commits whole or the database
 *    stays at its version.
 */
import type { DBSchema } from 'idb';
import type { ReplicaCounters } from '../core/append.ts';
import { StorageError } from '../core/errors.ts';
import type { JsonValue, LocalRecord } from '../core/events.ts';
import { EventId, ReplicaId } from '../core/ids.ts';
import {
  MAX_SEGMENT_EVENTS,
  packSegment,
  type Segment,
  type SegmentKey,
  slotRunsOf,
  slotsOf,
  unpackSegment,
} from '../core/segments.ts';
import type { SnapshotRecord } from './adapter.ts';
import type { StreamIndexKey, StreamRow } from './idb-stream-keys.ts';
import { createStreamIndex, numberStreams } from './idb-upgrade-v8.ts';

export type { StreamRow };

export const SCHEMA_VERSION = 8;
export const KEY_REPLICA = 'sys:replicaId';
export const KEY_EPOCH = 'sys:epoch';
export const KEY_COUNTERS = 'sys:counters';
/** The signing identity (core/integrity.ts StoredIdentity), once adopted. */
export const KEY_IDENTITY = 'sys:identity';
export const appKey = (key: string) => `app:${key}`;

/** The counters, and the largest cursor in the log ('' when empty): see indexeddb.ts. */
export interface StoredCounters extends ReplicaCounters {
  maxCursor: string;
  /**
   * Some stored event has a custom id of canonical form ("invoice.42", invariant 4): from then
   * on a write looks its canonical ids up in the `id` index before it stores them.
   */
  shapedIds?: true;
}

/** A key of the `pos` index (invariant 8): the first position, first cursor and event count. */
export type PosKey = [pos: number, first: string, n: number];

export interface ChronicleSchema extends DBSchema {
  segments: {
    key: number;
    value: Segment;
    indexes: {
      order: SegmentKey;
      id: string;
      pos: PosKey;
      stream: StreamIndexKey;
      slot: string;
    };
  };
  meta: { key: string; value: JsonValue | StoredCounters };
  streams: { key: string; value: StreamRow };
  snapshots: { key: [string, number, string]; value: SnapshotRecord };
}

export function asCounters(value: unknown): StoredCounters {
  if (value !== null && typeof value === 'object' && 'pos' in value && 'seq' in value) {
    const c = value as StoredCounters;
    return typeof c.maxCursor === 'string' ? c : { ...c, maxCursor: '' };
  }
  throw new StorageError('STORAGE', 'the replica counters are missing from the database');
}

/** The stored replica id (idb-open.ts reads it at open; a transaction reads it again). */
export function asReplicaId(value: unknown): ReplicaId {
  if (ReplicaId.isValid(value)) return value;
  throw new StorageError('STORAGE', 'the replica id is missing from the database');
}

/** A plain copy: the stored value must not share objects with what callers hold. */
export function plainCounters(
  c: ReplicaCounters,
  maxCursor: string,
  shapedIds?: boolean,
): StoredCounters {
  const out: StoredCounters = {
    seq: c.seq,
    pos: c.pos,
    clock: { wall: c.clock.wall, counter: c.clock.counter },
    maxCursor,
  };
  if (shapedIds === true) out.shapedIds = true;
  return out;
}

/** The `segments` store of version 8 (invariants 8 to 10) and its indexes. */
function createSegments(db: IDBDatabase): IDBObjectStore {
  const segments = db.createObjectStore('segments', { keyPath: 'key', autoIncrement: true });
  segments.createIndex('order', ['first', 'last', 'n'], { unique: true });
  segments.createIndex('id', 'customIds', { unique: true, multiEntry: true });
  segments.createIndex('pos', ['pos', 'first', 'n'], { unique: true });
  createStreamIndex(segments);
  segments.createIndex('slot', 'slotRuns', { multiEntry: true });
  return segments;
}

/**
 * The segment's slot runs without the slots already `seen` (invariant 3), which it marks seen:
 * walked in key order, a slot held twice is indexed for its first copy in the total order.
 */
function uniqueSlots(segment: Segment, seen: Set<string>): Segment {
  const slots = slotsOf(segment).filter((slot) => !seen.has(slot));
  for (const slot of slots) seen.add(slot);
  return { ...segment, slotRuns: slotRunsOf(slots) };
}

export function upgrade(db: IDBDatabase, oldVersion: number, tx: IDBTransaction): void {
  if (oldVersion < 1) {
    createSegments(db);
    db.createObjectStore('meta');
    db.createObjectStore('streams', { keyPath: 'stream' });
    db.createObjectStore('snapshots', { keyPath: ['projection', 'version', 'cursor'] });
    const meta = tx.objectStore('meta');
    meta.put(ReplicaId.make(), KEY_REPLICA);
    meta.put(ReplicaId.make(), KEY_EPOCH);
    const counters: StoredCounters = {
      seq: 0,
      pos: 0,
      clock: { wall: 0, counter: 0 },
      maxCursor: '',
    };
    meta.put(counters, KEY_COUNTERS);
    return;
  }
  // Invariant 10 comes last, once the steps before it have written every row they write.
  const numbered = () => numberStreams(tx, oldVersion >= 6);
  if (oldVersion < 2) {
    migrateEventsToSegments(db, tx, numbered);
    return;
  }
  if (oldVersion === 7) {
    numbered();
    return;
  }
  if (oldVersion === 6) {
    versionIndexToRows(tx, numbered);
    return;
  }
  // Invariant 8: the old store is walked into a new one under its name, then deleted.
  const old = tx.objectStore('segments');
  old.name = OLD_SEGMENTS;
  // An upgrade from version 2 packs every segment again, which writes customIds too; whether some
  // custom id has canonical form is not worked out there: the counters say so, to be safe
  // (invariant 4).
  if (oldVersion < 3) markShapedIds(tx);
  walkToVersion6(db, old, tx, oldVersion, numbered);
}

/** The name of the version-5 (or older) `segments` store while an upgrade walks it. */
const OLD_SEGMENTS = 'segments-old';

/**
 * One walk of the old segments in key order (the total order) writes each into the store of
 * version 6 (invariant 8): a husk (n = 0) under the next negative key, in order. On the way it
 * gives each segment the fields of version 5: from version 2 every segment is packed again (its
 * slots first listed, invariant 3); from version 3 it gains `customIds`, `streamKeys` and
 * `streamMax` (invariants 4 to 6; an id of canonical form that is custom sets the counters'
 * shapedIds); from versions 3 and 4 its `slots` become `slotRuns`, listing the slots it listed
 * (invariant 7).
 */
function walkToVersion6(
  db: IDBDatabase,
  old: IDBObjectStore,
  tx: IDBTransaction,
  oldVersion: number,
  then: () => void,
): void {
  const segments = createSegments(db);
  const seen = new Set<string>();
  const tops = new Map<string, number>();
  let shaped = false;
  let huskKey = 0;
  const add = (segment: Segment) => {
    addTops(tops, segment.streamMax);
    if (segment.n === 0) segments.add({ ...segment, key: --huskKey });
    else segments.add(segment);
  };
  const cursorRequest = old.openCursor();
  cursorRequest.onsuccess = () => {
    const cursor = cursorRequest.result;
    if (cursor === null) {
      if (shaped) markShapedIds(tx);
      db.deleteObjectStore(OLD_SEGMENTS);
      mergeRows(tx, tops, then);
      return;
    }
    const stored = cursor.value as Segment;
    cursor.continue();
    if (oldVersion >= 5) {
      add(stored);
      return;
    }
    const { slots, slotRuns: _runs, ...rest } = stored;
    if (oldVersion < 3) {
      const { customIds: _ids, ...fields } = rest;
      add(uniqueSlots(packSegment(unpackSegment(fields as Segment)), seen));
      return;
    }
    const next: Segment = { ...rest, slotRuns: slotRunsOf(slots ?? slotsOf(stored)) };
    if (oldVersion < 4) {
      const { customIds: _old, ...fields } = rest;
      const packed = packSegment(unpackSegment(fields as Segment));
      next.streamKeys = packed.streamKeys ?? [];
      next.streamMax = packed.streamMax ?? [];
      delete next.customIds;
      if (packed.customIds !== undefined) {
        next.customIds = packed.customIds;
        shaped ||= packed.customIds.some((id) => EventId.canonicalSlot(id) !== undefined);
      }
    }
    add(next);
  };
}

/** Notes each [stream, version] of a segment's `streamMax` in `tops`, the largest per stream. */
function addTops(tops: Map<string, number>, streamMax: readonly [string, number][] | undefined) {
  for (const [stream, version] of streamMax ?? []) {
    if (version > (tops.get(stream) ?? 0)) tops.set(stream, version);
  }
}

/**
 * Invariant 9: each stream's row takes the largest version its segments hold (`tops`) where it
 * holds less, or is missing; a row keeps its conflict flag.
 */
function mergeRows(tx: IDBTransaction, tops: ReadonlyMap<string, number>, then: () => void): void {
  const streams = tx.objectStore('streams');
  const read = streams.getAll();
  read.onsuccess = () => {
    const rows = new Map((read.result as StreamRow[]).map((row) => [row.stream, row]));
    for (const [stream, version] of tops) {
      const row = rows.get(stream);
      if (row !== undefined && row.version >= version) continue;
      streams.put({ ...row, stream, version } satisfies StreamRow);
    }
    then();
  };
}

/**
 * From version 6 (invariant 9): the `version` index's keys, [stream, largest version in a
 * segment], walked in order (a stream's largest comes last), become the streams' rows; then the
 * index goes.
 */
function versionIndexToRows(tx: IDBTransaction, then: () => void): void {
  const segments = tx.objectStore('segments');
  const tops = new Map<string, number>();
  const walk = segments.index('version').openKeyCursor();
  walk.onsuccess = () => {
    const cursor = walk.result;
    if (cursor === null) {
      segments.deleteIndex('version');
      mergeRows(tx, tops, then);
      return;
    }
    const [stream, version] = cursor.key as [string, number];
    tops.set(stream, version);
    cursor.continue();
  };
}

function markShapedIds(tx: IDBTransaction): void {
  const meta = tx.objectStore('meta');
  const read = meta.get(KEY_COUNTERS);
  read.onsuccess = () => meta.put({ ...asCounters(read.result), shapedIds: true }, KEY_COUNTERS);
}

/** Pages of the version-1 `events` store read at a time during the upgrade. */
const MIGRATION_PAGE = 1000;

/**
 * Version 1 kept one record per event ({ pos, event }, keyed by event.cursor). Walking it in
 * cursor order, a run of events whose positions follow one another, of one stream, is a valid
 * segment: nothing else sorts between neighbours of the walk.
 */
function migrateEventsToSegments(db: IDBDatabase, tx: IDBTransaction, then: () => void): void {
  const segments = createSegments(db);
  const events = tx.objectStore('events');
  let run: LocalRecord[] = [];
  let maxCursor = '';
  const seen = new Set<string>();
  const tops = new Map<string, number>();
  const flush = () => {
    if (run.length === 0) return;
    const segment = uniqueSlots(packSegment(run), seen);
    addTops(tops, segment.streamMax);
    segments.add(segment);
    run = [];
  };
  const page = (after: string | undefined) => {
    const range = after === undefined ? null : IDBKeyRange.lowerBound(after, true);
    const request = events.getAll(range, MIGRATION_PAGE);
    request.onsuccess = () => {
      const records = request.result as LocalRecord[];
      for (const record of records) {
        const previous = run[run.length - 1];
        if (
          previous !== undefined &&
          (run.length >= MAX_SEGMENT_EVENTS ||
            record.pos !== previous.pos + 1 ||
            record.event.stream !== previous.event.stream)
        ) {
          flush();
        }
        run.push(record);
        maxCursor = record.event.cursor;
      }
      if (records.length === MIGRATION_PAGE) {
        page(maxCursor);
        return;
      }
      flush();
      db.deleteObjectStore('events');
      const meta = tx.objectStore('meta');
      const read = meta.get(KEY_COUNTERS);
      // Custom ids of canonical form are not looked for here: the counters say there may be some.
      read.onsuccess = () =>
        meta.put({ ...asCounters(read.result), maxCursor, shapedIds: true }, KEY_COUNTERS);
      mergeRows(tx, tops, then);
    };
  };
  page(undefined);
}
