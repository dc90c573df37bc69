/// <reference lib="dom" preserve="true" />
// Declarations name the DOM's Worker, MessagePort and IndexedDB types: a Node project whose
// tsconfig leaves the DOM library out still compiles against them.
/**
 * The IndexedDB storage adapter, on `idb`. This is the only module that talks to IndexedDB (with
 * its helpers: idb-schema.ts the schema and its upgrades, idb-reads.ts pages of segments,
 * idb-segments.ts segment lookups (by id, by slot) and writes, idb-copies.ts colliding copies
 * (taking a loser out), idb-append.ts an append's transaction, idb-ingest.ts an ingest's (and the
 * log write both share), idb-streams.ts stream versions, idb-stream-keys.ts the `stream` index's
 * keys and stream numbers, idb-stream-reads.ts a stream's pages, idb-snapshots.ts the snapshots
 * store, idb-connection.ts transactions and the handle's life, idb-open.ts opening); browser
 * quirks are in idb-quirks.ts, native error translation in idb-errors.ts.
 *
 * Schema (version 8; idb-schema.ts migrates version 1, one record per event, version 2,
 * without the slot index, version 3, with every id in the id index, version 4, with one slot
 * entry per event, version 5, keyed by [first, last, n], version 6, with a `version` index, and
 * version 7, with the `stream` index on names and cursors, in its upgrade):
 *   segments   keyPath `key` (autoIncrement) → Segment (core/segments.ts): a run of events of
 *              one or more streams, neighbours in the total order and in receive order, packed in
 *              one record with what they share stored once. An append is one segment (up to 128
 *              events), so it costs one record, one `order` and one `pos` entry whatever its
 *              size, a `stream` entry per stream it holds, a `slot` entry per run
 *              of consecutive seqs of one replica (one for an append: version 5), and an `id`
 *              entry only per custom id (version 4); a group commit of appends to many streams
 *              is one segment too.
 *              The key is a number (version 6, idb-schema.ts invariant 8): Chromium writes it
 *              into every index entry twice, as UTF-16. A segment's is positive, a husk's
 *              (core/husks.ts) negative.
 *              indexes: `order` (unique, [first, last, n]: the total order; reading its keys
 *              alone tells where each segment's events lie and how many it holds), `id`
 *              (unique, multiEntry on `customIds`: the ids the slot index cannot find,
 *              idb-schema.ts invariant 4), `pos` (unique, [pos, first, n]: the first position;
 *              positions are dense but for the holes of copies that lost (adapter.ts invariant
 *              3), so receive order is a range of this index; husks have no pos),
 *              `slot` (multiEntry on `slotRuns`, [first, last] `<replica>.<seq>` of each run:
 *              a slot is found as the run with the greatest first <= it; not unique, so a
 *              reused (replica, seq) is looked for before it is written: invariant 7),
 *              `stream` (multiEntry on `streamIx`, [stream number, rank of the cursor of its
 *              first event in the segment]: one stream in total order, ties ordered by the
 *              reader; a segment may hold several streams; since schema 8, idb-schema.ts
 *              invariant 10)
 *   meta       out-of-line string keys: `sys:*` for the replica id, epoch and counters (seq, pos,
 *              clock and maxCursor, the largest cursor stored), `app:<key>` for getMeta/setMeta
 *   streams    keyPath `stream` → { stream, version, conflicted?, no? }: the stream's version
 *              and its conflict flag, written by every append and ingest that grows the version
 *              (idb-streams.ts; since schema 7, idb-schema.ts invariant 9), and its number in the
 *              `stream` index once a segment lists it (idb-stream-keys.ts; since schema 8)
 *   snapshots  keyPath [projection, version, cursor] → SnapshotRecord
 *
 * Invariants (numbered as in adapter.ts, plus these):
 * 1. appendLocal and ingest run in ONE readwrite transaction over segments, meta and streams:
 *    they read counters, stream versions and stored ids (an ingest only when invariant 7 asks;
 *    an append not at all when invariant 8 lets it),
 *    call the pure planners (core/append.ts, then core/segments.ts), write exactly what they
 *    return, and resolve only after the transaction's `complete`. Nothing but IndexedDB requests is awaited inside it (RELIABILITY
 *    case 5); a rejected plan aborts it, so nothing is written.
 * 2. The replica id, epoch and zeroed counters are written by the upgrade transaction that
 *    creates the database, so every handle (every tab) reads the same ones.
 * 3. Segments are inserted with `add`, never `put`: a reused id or place in the total order
 *    (the unique `order` index) is a failed write, never a silent overwrite (positions come
 *    from the counters, read in the same transaction). A segment is deleted only to be rewritten as the
 *    two halves around a new event that sorts inside it (core/segments.ts invariant 5).
 * 4. Once closed (by close(), another tab's upgrade or delete, or the browser), every call
 *    rejects: STORE_CLOSED, VERSION_CHANGE or STORAGE_UNAVAILABLE; never a false success.
 * 5. Other handles on the database hear of writes over a BroadcastChannel, only after commit.
 * 6. New events sort after maxCursor almost always (the HLC passes every HLC seen): then they are
 *    packed without reading any segment; otherwise the segments around them are looked up, by
 *    `order` key, and those they fall inside are split.
 * 7. An ingest first writes without looking its ids up, and again with them only when that
 *    fails: a custom id held already fails the unique `id` index, a (replica, seq) held already
 *    is found by one look per run of its slots in the `slot` index (idb-ingest.ts).
 * 8. An append that what this handle last saw covers is planned from it, its writes issued behind
 *    one read that checks the stored counters are still the ones it saw; else it reads first
 *    (idb-append.ts).
 */
import { type IDBPDatabase, type StoreNames, unwrap, wrap } from 'idb';
import type { IngestPlan } from '../core/append.ts';
import type { AppendUnitOutcome } from '../core/append-group.ts';
import { StorageError } from '../core/errors.ts';
import type { JsonValue, LocalRecord } from '../core/events.ts';
import type { HlcState } from '../core/hlc.ts';
import { type ReplicaId, Seq } from '../core/ids.ts';
import type { StoredIdentity, StoredSigningKey } from '../core/replica-identity.ts';
import { lostTrimmedOf } from '../core/trimmed-copies.ts';
import type {
  AppendGroupRequest,
  CursorQuery,
  DiscardedEvent,
  Durability,
  EventLog,
  IngestRequest,
  IngestResult,
  LocalAppendRequest,
  LocalAppendResult,
  LogBase,
  OpenOptions,
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
  type AppendCache,
  type AppendTransactionResult,
  appendInTransaction,
  coveredBy,
} from './idb-append.ts';
import { BASE_STORES, installInTransaction, KEY_BASE_VECTOR } from './idb-base.ts';
import { IdbConnection } from './idb-connection.ts';
import { discardInTransaction } from './idb-discard.ts';
import { unavailable } from './idb-errors.ts';
import { adoptInTransaction, readIdentityKey, replaceInTransaction } from './idb-identity.ts';
import { ingestInTransaction } from './idb-ingest.ts';
import { openDatabase, readIdentity } from './idb-open.ts';
import {
  DEFAULT_BLOCKED_TIMEOUT_MS,
  DEFAULT_OPEN_TIMEOUT_MS,
  globalFactory,
} from './idb-quirks.ts';
import { minCursorAfterPos, readCursorRange, readPosRange } from './idb-reads.ts';
import { request } from './idb-request.ts';
import { restampInTransaction } from './idb-restamp.ts';
import {
  appKey,
  asCounters,
  type ChronicleSchema,
  KEY_COUNTERS,
  type StoredCounters,
} from './idb-schema.ts';
import { lookupIds, lookupSlots, slotsInHusks } from './idb-segments.ts';
import { IdbSnapshots } from './idb-snapshots.ts';
import { readStreams } from './idb-streams.ts';
import { KEY_HORIZON, KEY_TRIMMED_POS, trimInTransaction } from './idb-trim.ts';
import { minCursorOf } from './rewrites.ts';

/** Page size of scans that have no caller-given limit (minCursorSince), in segments. */
const SCAN_PAGE = 256;
/** Largest count getAll accepts (WebIDL unsigned long); 0 would mean "no limit". */
const MAX_COUNT = 0xffff_ffff;
const LOG_STORES: ('segments' | 'meta' | 'streams')[] = ['segments', 'meta', 'streams'];

type Db = IDBPDatabase<ChronicleSchema>;

export interface IndexedDbStorageOptions {
  /**
   * The factory to use instead of `globalThis.indexedDB` (e.g. a fake-indexeddb IDBFactory in
   * tests). `idb` checks values against the global IDB classes, so they must exist too (in Node:
   * `import 'fake-indexeddb/auto'`).
   */
  indexedDB?: IDBFactory;
  /** Give up on an open() that answers nothing (see idb-quirks.ts). Default 15 s. */
  openTimeoutMs?: number;
  /** Give up on an open() blocked by a stale tab. Default 5 s. */
  blockedTimeoutMs?: number;
}

function countOf(limit: number): number {
  if (Number.isNaN(limit)) return 0;
  return Number.isFinite(limit) ? Math.min(Math.floor(limit), MAX_COUNT) : MAX_COUNT;
}

class IdbEventLog implements EventLog {
  private readonly snapshots: IdbSnapshots;
  /** What this handle's last append transaction saw (invariant 8, idb-append.ts). */
  private remembered: AppendCache | undefined;

  private readonly conn: IdbConnection;
  /** As last read: a transaction reads it again (core/append.ts invariant 8). */
  replicaId: ReplicaId;
  readonly epoch: string;

  constructor(conn: IdbConnection, replicaId: ReplicaId, epoch: string) {
    this.conn = conn;
    this.replicaId = replicaId;
    this.epoch = epoch;
    this.snapshots = new IdbSnapshots(conn);
  }

  private read<T>(operation: string, body: (db: Db) => Promise<T>): Promise<T> {
    return this.conn.read(operation, body);
  }

  private readSegmentStore<T>(
    operation: string,
    body: (store: IDBObjectStore) => Promise<T>,
  ): Promise<T> {
    return this.conn.readSegmentStore(operation, body);
  }

  private write<S extends StoreNames<ChronicleSchema>[], T>(
    operation: string,
    stores: S,
    body: (tx: IDBTransaction) => Promise<T>,
    durability?: Durability,
  ): Promise<T> {
    return this.conn.write(operation, stores, body, durability);
  }

  onRemoteWrite(listener: RemoteWriteListener): () => void {
    return this.conn.onRemoteWrite(listener);
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  async appendLocal(request_: LocalAppendRequest): Promise<LocalAppendResult> {
    const { now, ...part } = request_;
    return onlyOutcome(await this.appendGroup({ units: [[part]], now }));
  }

  async appendGroup(request_: AppendGroupRequest): Promise<AppendUnitOutcome[]> {
    const transaction = (blind: boolean) =>
      this.write('appendLocal', LOG_STORES, (tx) =>
        appendInTransaction(tx, request_, this.remembered, blind),
      );
    // Invariant 8: planned from what this handle last saw when that covers the append. A failed
    // attempt (the log moved: StaleAppendCache; or anything else) wrote nothing; the append
    // runs again with reads, where a real failure fails again.
    const blind = coveredBy(this.remembered, request_);
    let result: AppendTransactionResult;
    try {
      result = await transaction(blind);
    } catch (error) {
      this.remembered = undefined;
      if (!blind) throw error;
      result = await transaction(false);
    }
    this.replicaId = result.replica;
    this.remembered = result.cache;
    const last = result.plan.write[result.plan.write.length - 1];
    if (last !== undefined) this.conn.notifyOthers(last.pos);
    return result.plan.outcomes;
  }

  async ingest(request_: IngestRequest): Promise<IngestResult> {
    let plan: IngestPlan;
    try {
      plan = await this.ingestOnce(request_, false);
    } catch (error) {
      // Invariant 7: most likely an event the log holds. Anything else fails again below.
      if (!(error instanceof StorageError) || error.code !== 'STORAGE') throw error;
      plan = await this.ingestOnce(request_, true);
    }
    if (plan.write.length > 0) this.conn.notifyOthers(plan.counters.pos);
    return {
      written: plan.write,
      removed: plan.remove,
      skewed: plan.skewed,
      lost: plan.lost,
      ...lostTrimmedOf(plan),
    };
  }

  /** One transaction of an ingest; `lookUpIds` false: every event taken as new (invariant 7). */
  private async ingestOnce(request_: IngestRequest, lookUpIds: boolean): Promise<IngestPlan> {
    const { plan, replicaId } = await this.write('ingest', LOG_STORES, (tx) =>
      ingestInTransaction(tx, request_, lookUpIds),
    );
    this.replicaId = replicaId;
    return plan;
  }

  async restamp(request_: RestampRequest): Promise<RestampResult> {
    const result = await this.write('restamp', LOG_STORES, (tx) =>
      restampInTransaction(tx, this.replicaId, request_),
    );
    if (result.changed.length > 0) this.conn.notifyOthers(await this.headPos(), result.from);
    return result;
  }

  async discard(events: readonly DiscardedEvent[]): Promise<LocalRecord[]> {
    if (events.length === 0) return [];
    // The append cache (invariant 8) holds the versions before: it must not plan from them.
    this.remembered = undefined;
    const removed = await this.write('discard', LOG_STORES, (tx) =>
      discardInTransaction(tx, events),
    );
    if (removed.length > 0) this.conn.notifyOthers(await this.headPos(), minCursorOf(removed));
    return removed;
  }

  async identity(): Promise<StoredIdentity | undefined> {
    return this.read('identity', (db) =>
      readIdentityKey(unwrap(db).transaction('meta').objectStore('meta')),
    );
  }

  async adoptIdentity(key: StoredSigningKey): Promise<void> {
    this.replicaId = await this.write('adoptIdentity', ['meta'], (tx) =>
      adoptInTransaction(tx, key),
    );
  }

  async eventsAtSlots(
    slots: readonly { replica: string; seq: number }[],
  ): Promise<(LocalRecord | undefined)[]> {
    if (slots.length === 0) return [];
    return this.readSegmentStore('eventsAtSlots', (store) =>
      lookupSlots(
        store,
        slots.map((s) => `${s.replica}.${Seq.encode(s.seq as Seq)}`),
      ),
    );
  }

  async trimmedSlots(slots: readonly { replica: string; seq: number }[]): Promise<boolean[]> {
    if (slots.length === 0) return [];
    return this.readSegmentStore('trimmedSlots', (store) =>
      slotsInHusks(
        store,
        slots.map((s) => `${s.replica}.${Seq.encode(s.seq as Seq)}`),
      ),
    );
  }

  async replaceOwn(records: readonly LocalRecord[]): Promise<void> {
    if (records.length === 0) return;
    // Relaxed: a signature lost to a crash is computed again, to the same bytes (signing is
    // deterministic: store/signing.ts invariant 2), so no flush is worth waiting for.
    await this.write(
      'replaceOwn',
      // The rewritten segments' `stream` keys need their streams' numbers (idb-stream-keys.ts).
      LOG_STORES,
      (tx) => replaceInTransaction(tx, records),
      'relaxed',
    );
  }

  async trim(
    horizon: string,
    limit: number,
    maxPos = Number.POSITIVE_INFINITY,
  ): Promise<TrimResult> {
    const result = await this.write('trim', LOG_STORES, (tx) =>
      trimInTransaction(tx, horizon, Math.max(0, Math.floor(limit)), maxPos),
    );
    if (result.trimmed > 0) this.conn.notifyOthers(await this.headPos());
    return result;
  }

  async horizon(): Promise<string | undefined> {
    return this.read('horizon', (db) => db.get('meta', KEY_HORIZON) as Promise<string | undefined>);
  }

  async installBase(base: LogBase): Promise<boolean> {
    const done = await this.write('installBase', [...BASE_STORES], (tx) =>
      installInTransaction(tx, base),
    );
    if (done) this.conn.notifyOthers(await this.headPos());
    return done;
  }

  async baseVector(): Promise<Readonly<Record<string, number>> | undefined> {
    return this.read('baseVector', async (db) => {
      const value = await db.get('meta', KEY_BASE_VECTOR);
      return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, number>)
        : undefined;
    });
  }

  async trimmedPos(): Promise<number> {
    return this.read(
      'trimmedPos',
      async (db) => ((await db.get('meta', KEY_TRIMMED_POS)) as number | undefined) ?? 0,
    );
  }

  async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    const limit = countOf(query.limit);
    if (limit <= 0) return [];
    // A stream's read looks its number up in `streams` (idb-stream-keys.ts).
    const stores: ('segments' | 'streams')[] =
      query.stream === undefined ? ['segments'] : ['segments', 'streams'];
    return this.read('readByCursor', (db) =>
      readCursorRange(unwrap(db.transaction(stores)).objectStore('segments'), query, limit),
    );
  }

  async readByCursorAtHorizon(
    query: CursorQuery,
  ): Promise<{ records: LocalRecord[]; horizon: string | undefined }> {
    const limit = countOf(query.limit);
    // The horizon from `meta` in the same transaction: a trim writes both (idb-trim.ts).
    const stores: ('segments' | 'streams' | 'meta')[] =
      query.stream === undefined ? ['segments', 'meta'] : ['segments', 'streams', 'meta'];
    return this.read('readByCursor', async (db) => {
      const tx = unwrap(db.transaction(stores));
      const [horizon, records] = await Promise.all([
        request(tx.objectStore('meta').get(KEY_HORIZON)) as Promise<string | undefined>,
        limit <= 0 ? [] : readCursorRange(tx.objectStore('segments'), query, limit),
      ]);
      return { records, horizon };
    });
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    const count = countOf(limit);
    if (count <= 0 || Number.isNaN(afterPos)) return [];
    return this.readSegmentStore('readByPos', (store) =>
      readPosRange(store, Math.max(0, Math.floor(afterPos)), count),
    );
  }

  async getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]> {
    return this.readSegmentStore('getByIds', (store) => lookupIds(store, ids));
  }

  private counters(operation: string): Promise<StoredCounters> {
    return this.read(operation, async (db) => asCounters(await db.get('meta', KEY_COUNTERS)));
  }

  async headPos(): Promise<number> {
    return (await this.counters('headPos')).pos;
  }

  async ownSeq(): Promise<number> {
    return (await this.counters('ownSeq')).seq;
  }

  async clock(): Promise<HlcState> {
    return (await this.counters('clock')).clock;
  }

  async minCursorSince(pos: number): Promise<string | undefined> {
    // Pages in separate transactions: a long scan must not hold the log locked for writers.
    return this.read('minCursorSince', (db) =>
      minCursorAfterPos(unwrap(db), Math.max(0, Math.floor(pos)), SCAN_PAGE),
    );
  }

  async streamVersion(stream: string): Promise<number> {
    return this.read('streamVersion', async (db) => {
      const tx = unwrap(db).transaction('streams');
      const states = await readStreams(tx.objectStore('streams'), [stream]);
      return states.get(stream)?.version ?? 0;
    });
  }

  async conflictStreams(): Promise<string[]> {
    return this.read('conflictStreams', async (db) => {
      const out: string[] = [];
      let cursor = await db.transaction('streams').store.openCursor();
      while (cursor !== null) {
        if (cursor.value.conflicted) out.push(cursor.value.stream);
        cursor = await cursor.continue();
      }
      return out;
    });
  }

  putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    return this.snapshots.put(snapshot);
  }

  listSnapshots(projection: string, version: number): Promise<SnapshotMeta[]> {
    return this.snapshots.list(projection, version);
  }

  getSnapshot(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined> {
    return this.snapshots.get(projection, version, cursor);
  }

  deleteSnapshots(
    projection: string,
    which?: readonly { version: number; cursor: string }[],
  ): Promise<void> {
    return this.snapshots.delete(projection, which);
  }

  async getMeta(key: string): Promise<JsonValue | undefined> {
    return this.read(
      'getMeta',
      (db) => db.get('meta', appKey(key)) as Promise<JsonValue | undefined>,
    );
  }

  async setMeta(key: string, value: JsonValue): Promise<void> {
    await this.write('setMeta', ['meta'], async (tx) => {
      tx.objectStore('meta').put(value, appKey(key));
    });
  }
}

/**
 * A persistent storage adapter on IndexedDB. Handles opened on it share the database like tabs.
 *
 * @example
 * const store = await openStore({ name: 'todos', storage: indexedDbStorage('todos') });
 */
export function indexedDbStorage(
  dbName: string,
  options: IndexedDbStorageOptions = {},
): StorageAdapter {
  return {
    name: `indexeddb:${dbName}`,
    async open(openOptions: OpenOptions = {}): Promise<EventLog> {
      const factory = options.indexedDB ?? globalFactory();
      if (factory === undefined) {
        throw unavailable(
          dbName,
          'this environment has no IndexedDB (private browsing, an old browser, or Node without a polyfill); use memoryStorage() for a non-persistent store',
        );
      }
      const raw = await openDatabase(factory, dbName, {
        openMs: options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS,
        blockedMs: options.blockedTimeoutMs ?? DEFAULT_BLOCKED_TIMEOUT_MS,
      });
      let db: Db;
      let identity: { replicaId: ReplicaId; epoch: string };
      try {
        db = wrap(raw) as unknown as Db;
        identity = await readIdentity(db);
      } catch (error) {
        raw.close();
        throw unavailable(dbName, 'its metadata could not be read', error);
      }
      const connection = new IdbConnection(db, {
        dbName,
        durability: openOptions.durability ?? 'strict',
        onExternalClose: openOptions.onExternalClose,
      });
      return new IdbEventLog(connection, identity.replicaId, identity.epoch);
    },
  };
}
