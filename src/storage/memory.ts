/**
 * The in-memory storage adapter: the same behaviour as IndexedDB, without persistence. Handles
 * opened on one memoryStorage() share its data, like tabs share a database.
 *
 * Stored events are deep-frozen once and handed out as they are: events are immutable. The
 * database and the writes that keep its indexes in step are memory-db.ts's; this file is the
 * EventLog over it (planning, reads, snapshots, meta, and telling the other handles).
 */

import { planIngest } from '../core/append.ts';
import { type AppendUnitOutcome, customIdsOf, planAppendGroup } from '../core/append-group.ts';
import { slotOf } from '../core/copies.ts';
import { StoreClosedError } from '../core/errors.ts';
import type { JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import { type ReplicaId, Seq } from '../core/ids.ts';
import {
  adoptedIdentity,
  forkedReplica,
  type StoredIdentity,
  type StoredSigningKey,
} from '../core/replica-identity.ts';
import { planRestamp } from '../core/restamp.ts';
import { uncovered } from '../core/space-join.ts';
import { lostTrimmedOf } from '../core/trimmed-copies.ts';
import type {
  AppendGroupRequest,
  CursorQuery,
  DiscardedEvent,
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
import {
  emptyDatabase,
  evictTrimmed,
  installBaseInto,
  type MemoryDatabase,
  recountStreams,
  recountVersions,
  replaceRecords,
  restampRecords,
  snapshotKey,
  trimRecords,
  unwriteRecords,
  writeRecords,
} from './memory-db.ts';
import { firstAfterPos, upperBound } from './memory-order.ts';
import { readRestampInput } from './restamp-reads.ts';
import { minCursorOf, REWRITES_META_KEY, withRewrite } from './rewrites.ts';

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
    for (const record of writeRecords(db, plan.write, false)) stored.set(record.pos, record);
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
    // Covered by an installed base: held, like a trimmed event (adapter.ts invariant 7).
    const events = uncovered(db.baseVector, given.events);
    const request = events === given.events ? given : { ...given, events };
    const streams = new Map<string, number>();
    for (const e of request.events) streams.set(e.stream, db.streamVersions.get(e.stream) ?? 0);
    const plan = planIngest(
      { ...request, replica: db.replicaId },
      {
        counters: db.counters,
        existing: request.events.map((e) => db.byId.get(e.id)),
        slots: request.events.map((e) => db.bySlot.get(slotOf(e))),
        // A trimmed event meets its copies by its trace (core/trimmed-copies.ts).
        ...(db.trimmedIds.size === 0
          ? {}
          : {
              trimmedById: request.events.map((e) => db.trimmedIds.get(e.id)),
              trimmedBySlot: request.events.map((e) => db.trimmedSlots.get(slotOf(e))),
            }),
        streamVersions: streams,
      },
    );
    evictTrimmed(db, plan.evict);
    unwriteRecords(db, plan.remove);
    const written = writeRecords(db, plan.write, true);
    db.counters = plan.counters;
    // append.ts invariant 8: the old id is in use elsewhere; the counters restart with the new.
    if (plan.forked) {
      const next = forkedReplica(db.identity);
      db.replicaId = next.replicaId;
      if (next.identity !== undefined) db.identity = next.identity;
    }
    for (const [stream, version] of plan.streamVersions) db.streamVersions.set(stream, version);
    recountStreams(db, plan.recount);
    for (const stream of plan.possibleConflicts) db.conflictStreams.add(stream);
    if (written.length > 0) this.notifyOthers();
    return {
      written,
      removed: plan.remove,
      skewed: plan.skewed,
      lost: plan.lost,
      ...lostTrimmedOf(plan),
    };
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
    const records = restampRecords(db, changed);
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
    replaceRecords(this.check(), records);
  }

  async discard(events: readonly DiscardedEvent[]): Promise<LocalRecord[]> {
    const db = this.check();
    const records: LocalRecord[] = [];
    for (const { id, seq, replica = db.replicaId } of events) {
      const record = db.byId.get(id);
      if (record?.event.replica === replica && record.event.seq === seq) records.push(record);
    }
    if (records.length === 0) return [];
    unwriteRecords(db, records);
    recountVersions(db, records);
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
    return trimRecords(this.check(), horizon, limit, maxPos);
  }

  async horizon(): Promise<string | undefined> {
    return this.check().horizon;
  }

  async installBase(base: LogBase): Promise<boolean> {
    return installBaseInto(this.check(), base);
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
  const db = emptyDatabase();
  return {
    name: 'memory',
    async open() {
      const handle = new MemoryEventLog(db);
      db.handles.add(handle);
      return handle;
    },
  };
}
