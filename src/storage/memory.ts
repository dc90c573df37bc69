/**
 * The in-memory storage adapter: the same behaviour as IndexedDB, without persistence. Handles
 * opened on one memoryStorage() share its data, like tabs share a database.
 *
 * Stored events are deep-frozen once and handed out as they are: events are immutable.
 */

import { planIngest, type ReplicaCounters } from '../core/append.ts';
import { type AppendUnitOutcome, customIdsOf, planAppendGroup } from '../core/append-group.ts';
import { slotOf } from '../core/copies.ts';
import { StoreClosedError } from '../core/errors.ts';
import type { JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import { compareHlc, decodeHlc, HLC_ZERO } from '../core/hlc.ts';
import { ReplicaId, Seq } from '../core/ids.ts';
import {
  adoptedIdentity,
  forkedReplica,
  type StoredIdentity,
  type StoredSigningKey,
} from '../core/replica-identity.ts';
import { planRestamp } from '../core/restamp.ts';
import { clockAfterBase, uncovered } from '../core/space-join.ts';
import type {
  AppendGroupRequest,
  CursorQuery,
  EventLog,
  IngestRequest,
  IngestResult,
  LocalAppendRequest,
  LocalAppendResult,
  LogBase,
  RemoteWriteListener,
  RestampRequest,
  RestampResult,
  SnapshotMeta,
  SnapshotRecord,
  StorageAdapter,
  TrimResult,
} from './adapter.ts';
import { onlyOutcome } from './append-outcome.ts';
import { CursorOrder, firstAfterPos, upperBound } from './memory-order.ts';
import { hlcOfCursor, readRestampInput } from './restamp-reads.ts';
import { minCursorOf, REWRITES_META_KEY, withRewrite } from './rewrites.ts';

interface MemoryDatabase {
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
  handles: Set<MemoryEventLog>;
  /** Trimming (adapter.ts invariant 6): the horizon, and the ids and slots of trimmed events. */
  horizon?: string;
  trimmedPos: number;
  trimmedIds: Set<string>;
  trimmedSlots: Set<string>;
  /** Each stream's largest trimmed version: a discard's floor (adapter.ts invariant 6). */
  trimmedVersions: Map<string, number>;
  /** An installed base's version vector (adapter.ts invariant 7). */
  baseVector?: Readonly<Record<string, number>>;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

const snapshotKey = (projection: string, version: number, cursor: string) =>
  `${projection}\u0000${version}\u0000${cursor}`;

class MemoryEventLog implements EventLog {
  private closed = false;
  private readonly listeners = new Set<RemoteWriteListener>();

  private readonly db: MemoryDatabase;

  constructor(db: MemoryDatabase) {
    this.db = db;
  }

  get replicaId(): ReplicaId {
    return this.db.replicaId;
  }

  get epoch(): string {
    return this.db.epoch;
  }

  private check(): MemoryDatabase {
    if (this.closed) throw new StoreClosedError('the storage handle is closed');
    return this.db;
  }

  /**
   * Stores records, frozen. `owned`: the caller hands the events over (ingest: fresh from the
   * wire, adapter.ts), so they are frozen as they are; an app's appended data is copied first.
   */
  private write(
    records: { event: StoredEventRecord; pos: number }[],
    owned: boolean,
  ): LocalRecord[] {
    const db = this.db;
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
  private unwrite(records: readonly LocalRecord[]): void {
    const db = this.db;
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

  private notifyOthers(rewrittenFrom?: string): void {
    const head = this.db.counters.pos;
    for (const handle of this.db.handles) {
      if (handle !== this) handle.remoteWrite(head, rewrittenFrom);
    }
  }

  remoteWrite(head: number, rewrittenFrom?: string): void {
    // Asynchronous like a BroadcastChannel message: listeners never run inside a write.
    queueMicrotask(() => {
      if (this.closed) return;
      for (const listener of this.listeners) listener(head, rewrittenFrom);
    });
  }

  async appendLocal(request: LocalAppendRequest): Promise<LocalAppendResult> {
    const { now, ...part } = request;
    return onlyOutcome(await this.appendGroup({ units: [[part]], now }));
  }

  async appendGroup(request: AppendGroupRequest): Promise<AppendUnitOutcome[]> {
    const db = this.check();
    const existing = new Map<string, StoredEventRecord>();
    const trimmed = new Set<string>();
    for (const id of customIdsOf(request.units)) {
      const stored = db.byId.get(id);
      if (stored !== undefined) existing.set(id, stored.event);
      else if (db.trimmedIds.has(id)) trimmed.add(id);
    }
    const plan = planAppendGroup(
      { replica: db.replicaId, now: request.now, units: request.units },
      { counters: db.counters, streamVersions: db.streamVersions, existing, trimmed },
    );
    if (plan.write.length === 0) return plan.outcomes;
    // The records the outcomes hold are the ones stored (frozen), as a read returns them.
    const stored = new Map<number, LocalRecord>();
    for (const record of this.write(plan.write, false)) stored.set(record.pos, record);
    db.counters = plan.counters;
    for (const [stream, version] of plan.streamVersions) db.streamVersions.set(stream, version);
    this.notifyOthers();
    return plan.outcomes.map((outcome) =>
      outcome.kind === 'rejected'
        ? outcome
        : {
            kind: 'appended',
            streams: outcome.streams.map((part) =>
              part.kind === 'duplicate'
                ? part
                : { kind: 'written', records: part.records.map((r) => stored.get(r.pos) ?? r) },
            ),
          },
    );
  }

  async ingest(given: IngestRequest): Promise<IngestResult> {
    const db = this.check();
    // Held below the horizon, trimmed: already stored here (adapter.ts invariant 6).
    const held =
      db.trimmedIds.size === 0
        ? given.events
        : given.events.filter((e) => !db.trimmedIds.has(e.id) && !db.trimmedSlots.has(slotOf(e)));
    // Covered by an installed base: held, like a trimmed event (adapter.ts invariant 7).
    const events = uncovered(db.baseVector, held);
    const request = events === given.events ? given : { ...given, events };
    const streams = new Map<string, number>();
    for (const e of request.events) streams.set(e.stream, db.streamVersions.get(e.stream) ?? 0);
    const plan = planIngest(
      { ...request, replica: db.replicaId },
      {
        counters: db.counters,
        existing: request.events.map((e) => db.byId.get(e.id)),
        slots: request.events.map((e) => db.bySlot.get(slotOf(e))),
        streamVersions: streams,
      },
    );
    this.unwrite(plan.remove);
    const written = this.write(plan.write, true);
    db.counters = plan.counters;
    // append.ts invariant 8: the old id is in use elsewhere; the counters restart with the new.
    if (plan.forked) {
      const next = forkedReplica(db.identity);
      db.replicaId = next.replicaId;
      if (next.identity !== undefined) db.identity = next.identity;
    }
    for (const [stream, version] of plan.streamVersions) db.streamVersions.set(stream, version);
    for (const stream of plan.possibleConflicts) db.conflictStreams.add(stream);
    if (written.length > 0) this.notifyOthers();
    return { written, removed: plan.remove, skewed: plan.skewed, lost: plan.lost };
  }

  async restamp(request: RestampRequest): Promise<RestampResult> {
    const db = this.check();
    const head = db.counters.pos;
    const input = await readRestampInput(this, db.replicaId, head, request);
    if (input === undefined) return { changed: [] };
    // Another handle wrote while the plan's reads were out: read again (one transaction).
    if (db.counters.pos !== head) return this.restamp(request);
    const { changed } = planRestamp(input);
    if (changed.length === 0) return { changed: [] };
    // No await from here on: the rewrite is atomic like a transaction.
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
    const from = minCursorOf(records)!;
    db.meta.set(REWRITES_META_KEY, withRewrite(db.meta.get(REWRITES_META_KEY), from));
    this.notifyOthers(from);
    return { changed: records, from };
  }

  async identity(): Promise<StoredIdentity | undefined> {
    return this.check().identity;
  }

  async adoptIdentity(key: StoredSigningKey): Promise<void> {
    const db = this.check();
    if (db.identity !== undefined) return;
    const adopted = adoptedIdentity(key, db.counters.seq);
    db.identity = adopted.identity;
    if (adopted.replicaId !== undefined) db.replicaId = adopted.replicaId;
  }

  async eventsAtSlots(
    slots: readonly { replica: string; seq: number }[],
  ): Promise<(LocalRecord | undefined)[]> {
    const db = this.check();
    return slots.map((s) => db.bySlot.get(`${s.replica}.${Seq.encode(s.seq as Seq)}`));
  }

  async trimmedSlots(slots: readonly { replica: string; seq: number }[]): Promise<boolean[]> {
    const db = this.check();
    return slots.map((s) => db.trimmedSlots.has(`${s.replica}.${Seq.encode(s.seq as Seq)}`));
  }

  async replaceOwn(records: readonly LocalRecord[]): Promise<void> {
    const db = this.check();
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

  async discard(events: readonly { id: string; seq: number }[]): Promise<LocalRecord[]> {
    const db = this.check();
    const records: LocalRecord[] = [];
    for (const { id, seq } of events) {
      const record = db.byId.get(id);
      if (record?.event.replica === db.replicaId && record.event.seq === seq) records.push(record);
    }
    if (records.length === 0) return [];
    this.unwrite(records);
    // Rejected events never counted: each stream's version is what it still holds (adapter.ts).
    for (const stream of new Set(records.map((r) => r.event.stream))) {
      let version = db.trimmedVersions.get(stream) ?? 0;
      for (const r of db.byStream.get(stream)?.view() ?? []) {
        if (r.event.version > version) version = r.event.version;
      }
      if (version > 0) db.streamVersions.set(stream, version);
      else db.streamVersions.delete(stream);
    }
    const from = minCursorOf(records)!;
    db.meta.set(REWRITES_META_KEY, withRewrite(db.meta.get(REWRITES_META_KEY), from));
    this.notifyOthers(from);
    return records;
  }

  async trim(
    horizon: string,
    limit: number,
    maxPos = Number.POSITIVE_INFINITY,
  ): Promise<TrimResult> {
    const db = this.check();
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
      db.trimmedIds.add(id);
      db.trimmedSlots.add(slotOf(record.event));
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

  async horizon(): Promise<string | undefined> {
    return this.check().horizon;
  }

  async installBase(base: LogBase): Promise<boolean> {
    const db = this.check();
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

  async baseVector(): Promise<Readonly<Record<string, number>> | undefined> {
    return this.check().baseVector;
  }

  async trimmedPos(): Promise<number> {
    return this.check().trimmedPos;
  }

  async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    const db = this.check();
    const list =
      query.stream === undefined
        ? db.byCursor.view()
        : (db.byStream.get(query.stream)?.view() ?? []);
    const out: LocalRecord[] = [];
    if (!query.reverse) {
      let i = query.after === undefined ? 0 : upperBound(list, query.after, false);
      for (; i < list.length && out.length < query.limit; i++) {
        const r = list[i]!;
        if (query.until !== undefined && r.event.cursor > query.until) break;
        out.push(r);
      }
    } else {
      let i = (query.after === undefined ? list.length : upperBound(list, query.after, true)) - 1;
      for (; i >= 0 && out.length < query.limit; i--) {
        const r = list[i]!;
        if (query.until !== undefined && r.event.cursor < query.until) break;
        out.push(r);
      }
    }
    return out;
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    const byPos = this.check().byPos;
    const from = firstAfterPos(byPos, afterPos);
    return byPos.slice(from, from + Math.max(0, limit));
  }

  async getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]> {
    const db = this.check();
    return ids.map((id) => db.byId.get(id));
  }

  async headPos(): Promise<number> {
    return this.check().counters.pos;
  }

  async ownSeq(): Promise<number> {
    return this.check().counters.seq;
  }

  async minCursorSince(pos: number): Promise<string | undefined> {
    const db = this.check();
    let min: string | undefined;
    for (let i = firstAfterPos(db.byPos, pos); i < db.byPos.length; i++) {
      const c = db.byPos[i]!.event.cursor;
      if (min === undefined || c < min) min = c;
    }
    return min;
  }

  async streamVersion(stream: string): Promise<number> {
    return this.check().streamVersions.get(stream) ?? 0;
  }

  async conflictStreams(): Promise<string[]> {
    return [...this.check().conflictStreams].sort();
  }

  async clock() {
    return this.check().counters.clock;
  }

  async putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    this.check().snapshots.set(
      snapshotKey(snapshot.projection, snapshot.version, snapshot.cursor),
      structuredClone(snapshot),
    );
  }

  async listSnapshots(projection: string, version: number): Promise<SnapshotMeta[]> {
    const out: SnapshotMeta[] = [];
    for (const s of this.check().snapshots.values()) {
      if (s.projection === projection && s.version === version) {
        const { state: _state, ...meta } = s;
        out.push(meta);
      }
    }
    return out.sort((a, b) => (a.cursor < b.cursor ? -1 : a.cursor > b.cursor ? 1 : 0));
  }

  async getSnapshot(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined> {
    const s = this.check().snapshots.get(snapshotKey(projection, version, cursor));
    return s === undefined ? undefined : structuredClone(s);
  }

  async deleteSnapshots(
    projection: string,
    which?: readonly { version: number; cursor: string }[],
  ): Promise<void> {
    const db = this.check();
    if (which === undefined) {
      for (const [key, s] of db.snapshots)
        if (s.projection === projection) db.snapshots.delete(key);
      return;
    }
    for (const w of which) db.snapshots.delete(snapshotKey(projection, w.version, w.cursor));
  }

  async getMeta(key: string): Promise<JsonValue | undefined> {
    const value = this.check().meta.get(key);
    return value === undefined ? undefined : structuredClone(value);
  }

  async setMeta(key: string, value: JsonValue): Promise<void> {
    this.check().meta.set(key, structuredClone(value));
  }

  onRemoteWrite(listener: RemoteWriteListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.db.handles.delete(this);
  }
}

/**
 * A non-persistent storage adapter: for tests, for Node, and as the explicit fallback where
 * IndexedDB is unavailable.
 */
export function memoryStorage(): StorageAdapter {
  const db: MemoryDatabase = {
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
    trimmedIds: new Set(),
    trimmedSlots: new Set(),
    trimmedVersions: new Map(),
  };
  return {
    name: 'memory',
    async open() {
      const handle = new MemoryEventLog(db);
      db.handles.add(handle);
      return handle;
    },
  };
}
