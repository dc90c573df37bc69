/**
 * The memory adapter's database (memory.ts), shared by every handle opened on one
 * memoryStorage(), and the writes that keep its indexes in step: by position, id, slot, cursor
 * and stream.
 *
 * Invariants:
 * 1. A stored record is in every index (byPos, byId, bySlot, byCursor, its stream's order) or in
 *    none: a write, an unwrite, a replacement, a re-stamp and a trim each move all of them.
 * 2. Stored records are deep-frozen once and handed out as they are: events are immutable.
 * 3. No write here awaits: each lands whole, like a transaction (adapter.ts invariant 1).
 */

import type { ReplicaCounters } from '../core/append.ts';
import { slotOf } from '../core/copies.ts';
import type { JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import { compareHlc, decodeHlc, HLC_ZERO } from '../core/hlc.ts';
import { type Cursor, ReplicaId } from '../core/ids.ts';
import type { StoredIdentity } from '../core/replica-identity.ts';
import { clockAfterBase } from '../core/space-join.ts';
import type { TrimmedTrace } from '../core/trimmed-copies.ts';
import type { LogBase, SnapshotRecord, TrimResult } from './adapter.ts';
import { CursorOrder, firstAfterPos, upperBound } from './memory-order.ts';
import { hlcOfCursor } from './restamp-reads.ts';

/** A handle on the database, as the others see it: told of their writes. */
export interface MemoryHandle {
  remoteWrite(head: number, rewrittenFrom?: string): void;
}

export interface MemoryDatabase {
  replicaId: ReplicaId;
  epoch: string;
  counters: ReplicaCounters;
  byPos: LocalRecord[];
  byCursor: CursorOrder;
  byStream: Map<string, CursorOrder>;
  byId: Map<string, LocalRecord>;
  /** By `<replica>.<seq>` (core/copies.ts slotOf). */
  bySlot: Map<string, LocalRecord>;
  streamVersions: Map<string, number>;
  conflictStreams: Set<string>;
  snapshots: Map<string, SnapshotRecord>;
  meta: Map<string, JsonValue>;
  identity?: StoredIdentity;
  handles: Set<MemoryHandle>;
  /**
   * Trimming (adapter.ts invariant 6): the horizon, and the traces of trimmed events by id and
   * by slot (core/trimmed-copies.ts).
   */
  horizon?: string;
  trimmedPos: number;
  trimmedIds: Map<string, TrimmedTrace>;
  trimmedSlots: Map<string, TrimmedTrace>;
  /** Each stream's largest trimmed version: a discard's floor (adapter.ts invariant 6). */
  trimmedVersions: Map<string, number>;
  /** An installed base's version vector (adapter.ts invariant 7). */
  baseVector?: Readonly<Record<string, number>>;
}

/** A database with nothing in it, for a new memoryStorage(). */
export function emptyDatabase(): MemoryDatabase {
  return {
    replicaId: ReplicaId.make(),
    epoch: ReplicaId.make(),
    counters: { seq: 0, pos: 0, clock: HLC_ZERO },
    byPos: [],
    byCursor: new CursorOrder(),
    byStream: new Map(),
    byId: new Map(),
    bySlot: new Map(),
    streamVersions: new Map(),
    conflictStreams: new Set(),
    snapshots: new Map(),
    meta: new Map(),
    handles: new Set(),
    trimmedPos: 0,
    trimmedIds: new Map(),
    trimmedSlots: new Map(),
    trimmedVersions: new Map(),
  };
}

/** Invariant 2. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

export const snapshotKey = (projection: string, version: number, cursor: string) =>
  `${projection}\u0000${version}\u0000${cursor}`;

/**
 * Stores records, frozen. `owned`: the caller hands the events over (ingest: fresh from the
 * wire, adapter.ts), so they are frozen as they are; an app's appended data is copied first.
 */
export function writeRecords(
  db: MemoryDatabase,
  records: { event: StoredEventRecord; pos: number }[],
  owned: boolean,
): LocalRecord[] {
  const out: LocalRecord[] = [];
  const streams = new Map<string, LocalRecord[]>();
  for (const { event, pos } of records) {
    const record: LocalRecord = deepFreeze({
      event: owned ? event : structuredClone(event),
      pos,
    });
    db.byPos.push(record);
    db.byId.set(event.id, record);
    db.bySlot.set(slotOf(event), record);
    const batch = streams.get(event.stream);
    if (batch === undefined) streams.set(event.stream, [record]);
    else batch.push(record);
    out.push(record);
  }
  db.byCursor.add(out);
  for (const [stream, batch] of streams) {
    let order = db.byStream.get(stream);
    if (order === undefined) {
      order = new CursorOrder();
      db.byStream.set(stream, order);
    }
    order.add(batch);
  }
  return out;
}

/** Takes held records out of every index (copies that lost: core/copies.ts invariant 3). */
export function unwriteRecords(db: MemoryDatabase, records: readonly LocalRecord[]): void {
  for (const record of records) {
    const i = firstAfterPos(db.byPos, record.pos - 1);
    if (db.byPos[i] === record) db.byPos.splice(i, 1);
    if (db.byId.get(record.event.id) === record) db.byId.delete(record.event.id);
    const slot = slotOf(record.event);
    if (db.bySlot.get(slot) === record) db.bySlot.delete(slot);
    db.byCursor.remove(record);
    db.byStream.get(record.event.stream)?.remove(record);
  }
}

/** Drops the traces of trimmed copies that lost (core/trimmed-copies.ts invariant 2). */
export function evictTrimmed(
  db: MemoryDatabase,
  traces: readonly { id: string; cursor: Cursor }[],
): void {
  for (const { id, cursor } of traces) {
    if (db.trimmedIds.get(id)?.cursor === cursor) db.trimmedIds.delete(id);
    const slot = slotOf({ cursor });
    if (db.trimmedSlots.get(slot)?.cursor === cursor) db.trimmedSlots.delete(slot);
  }
}

/** Puts signed copies of own records in place of the stored ones (EventLog.replaceOwn). */
export function replaceRecords(db: MemoryDatabase, records: readonly LocalRecord[]): void {
  for (const given of records) {
    const i = firstAfterPos(db.byPos, given.pos - 1);
    const held = db.byPos[i];
    if (held?.pos !== given.pos || held.event.id !== given.event.id) continue;
    if (held.event.cursor !== given.event.cursor) continue;
    // The signer hands over fresh objects (core/integrity.ts signEvents): frozen as they are.
    const record = deepFreeze({ event: given.event, pos: given.pos });
    db.byCursor.replace(held, record);
    db.byStream.get(held.event.stream)?.replace(held, record);
    db.byPos[i] = record;
    db.byId.set(record.event.id, record);
    db.bySlot.set(slotOf(record.event), record);
  }
}

/** Rejected events never counted: each stream's version is what it still holds (adapter.ts). */
export function recountVersions(db: MemoryDatabase, records: readonly LocalRecord[]): void {
  recountStreams(db, new Set(records.map((r) => r.event.stream)));
}

/** Each stream's version is what it holds (a discard; core/append.ts invariant 9 for an ingest). */
export function recountStreams(db: MemoryDatabase, streams: ReadonlySet<string>): void {
  for (const stream of streams) {
    let version = db.trimmedVersions.get(stream) ?? 0;
    for (const r of db.byStream.get(stream)?.view() ?? []) {
      if (r.event.version > version) version = r.event.version;
    }
    if (version > 0) db.streamVersions.set(stream, version);
    else db.streamVersions.delete(stream);
  }
}

/** Puts re-stamped records in place (positions kept) and rebuilds the orders they move in. */
export function restampRecords(db: MemoryDatabase, changed: readonly LocalRecord[]): LocalRecord[] {
  const records = changed.map((r) => deepFreeze({ event: r.event, pos: r.pos }));
  for (const record of records) {
    // Positions may have holes (adapter.ts invariant 3): find the record's place by search.
    db.byPos[firstAfterPos(db.byPos, record.pos - 1)] = record;
    db.byId.set(record.event.id, record);
    db.bySlot.set(slotOf(record.event), record);
  }
  // The orders are rebuilt: a re-stamp is rare, and moves events inside them.
  db.byCursor = new CursorOrder();
  db.byCursor.add(db.byPos);
  db.byStream = new Map();
  for (const record of db.byPos) {
    let order = db.byStream.get(record.event.stream);
    if (order === undefined) {
      order = new CursorOrder();
      db.byStream.set(record.event.stream, order);
    }
    order.add([record]);
  }
  const all = db.byCursor.view();
  const top = decodeHlc(hlcOfCursor(all[all.length - 1]!.event.cursor));
  const clock = compareHlc(top, db.counters.clock) < 0 ? top : db.counters.clock;
  db.counters = { ...db.counters, clock };
  return records;
}

/** Trims up to `limit` records at or below `horizon` and `maxPos` (EventLog.trim). */
export function trimRecords(
  db: MemoryDatabase,
  horizon: string,
  limit: number,
  maxPos: number,
): TrimResult {
  const all = db.byCursor.view();
  const end = upperBound(all, horizon, false);
  const records: LocalRecord[] = [];
  let more = false;
  for (let i = 0; i < end; i++) {
    if (all[i]!.pos > maxPos) continue;
    if (records.length >= Math.max(0, limit)) {
      more = true;
      break;
    }
    records.push(all[i]!);
  }
  for (const record of records) {
    const { id, stream, version } = record.event;
    const trace = { id, cursor: record.event.cursor };
    db.trimmedIds.set(id, trace);
    db.trimmedSlots.set(slotOf(record.event), trace);
    if (version > (db.trimmedVersions.get(stream) ?? 0)) db.trimmedVersions.set(stream, version);
    db.byId.delete(id);
    db.bySlot.delete(slotOf(record.event));
    if (record.pos > db.trimmedPos) db.trimmedPos = record.pos;
  }
  if (records.length > 0) {
    const gone = new Set(records);
    db.byPos = db.byPos.filter((r) => !gone.has(r));
    db.byCursor = new CursorOrder();
    db.byCursor.add(all.filter((r) => !gone.has(r)));
    for (const stream of new Set(records.map((r) => r.event.stream))) {
      const order = new CursorOrder();
      order.add((db.byStream.get(stream)?.view() ?? []).filter((r) => !gone.has(r)));
      db.byStream.set(stream, order);
    }
    const last = records[records.length - 1]!.event.cursor;
    if (db.horizon === undefined || last > db.horizon) db.horizon = last;
  }
  return { trimmed: records.length, horizon: db.horizon, more };
}

/** Lays a base under an empty log (EventLog.installBase); false when it is not empty. */
export function installBaseInto(db: MemoryDatabase, base: LogBase): boolean {
  if (db.counters.pos > 0 || db.horizon !== undefined) return false;
  db.horizon = base.horizon;
  db.baseVector = Object.freeze({ ...base.vector });
  for (const { stream, version, conflict } of base.streams) {
    db.streamVersions.set(stream, version);
    db.trimmedVersions.set(stream, version);
    if (conflict) db.conflictStreams.add(stream);
  }
  db.counters = { ...db.counters, clock: clockAfterBase(db.counters.clock, base.horizon) };
  // No await in between: the whole base lands at once (adapter.ts invariant 1).
  for (const snapshot of base.snapshots) {
    db.snapshots.set(
      snapshotKey(snapshot.projection, snapshot.version, snapshot.cursor),
      structuredClone(snapshot),
    );
  }
  for (const [key, value] of Object.entries(base.meta)) db.meta.set(key, structuredClone(value));
  return true;
}
