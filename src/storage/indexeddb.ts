/**
 * The IndexedDB storage adapter, on `idb`. This is the only module that talks to IndexedDB;
 * browser quirks are in idb-quirks.ts, native error translation in idb-errors.ts.
 *
 * Schema (version 1), with as few indexes as reads need, since every index costs write throughput:
 *   events     keyPath `event.cursor` → LocalRecord { pos, event }: the primary key is the
 *              total order, so replay and read() page through the store itself, the cheapest
 *              read IndexedDB has
 *              indexes: `id` (unique, event.id), `pos` (unique: the receive order, for the
 *              change feed and sync), `stream` ([event.stream, event.cursor]: one stream in
 *              total order)
 *   meta       out-of-line string keys: `sys:*` for the replica id, epoch and counters,
 *              `app:<key>` for getMeta/setMeta
 *   streams    keyPath `stream` → { stream, version, conflicted? }
 *   snapshots  keyPath [projection, version, cursor] → SnapshotRecord
 *
 * Invariants (numbered as in adapter.ts, plus these):
 * 1. appendLocal and ingest run in ONE readwrite transaction over events, meta and streams: they
 *    read counters, stream versions and stored ids, call the pure planner, write exactly what it
 *    returns, and resolve only after the transaction's `complete`. Nothing but IndexedDB requests
 *    is awaited inside it (RELIABILITY case 5); a rejected plan aborts it, so nothing is written.
 * 2. The replica id, epoch and zeroed counters are written by the upgrade transaction that
 *    creates the database, so every handle (every tab) reads the same ones.
 * 3. Events are inserted with `add`, never `put`: a reused position or id is a failed write,
 *    never a silent overwrite.
 * 4. Once closed (by close(), another tab's upgrade or delete, or the browser), every call
 *    rejects: STORE_CLOSED, VERSION_CHANGE or STORAGE_UNAVAILABLE; never a false success.
 * 5. Other handles on the database hear of writes over a BroadcastChannel, only after commit.
 */
import {
  type DBSchema,
  type IDBPDatabase,
  type IDBPTransaction,
  type StoreNames,
  unwrap,
  wrap,
} from 'idb';
import { planIngest, planLocalAppend, type ReplicaCounters } from '../core/append.ts';
import { ChronicleError, StorageError } from '../core/errors.ts';
import type { JsonValue, LocalRecord } from '../core/events.ts';
import type { HlcState } from '../core/hlc.ts';
import { ReplicaId } from '../core/ids.ts';
import type {
  CursorQuery,
  Durability,
  EventLog,
  IngestRequest,
  IngestResult,
  LocalAppendRequest,
  LocalAppendResult,
  OpenOptions,
  SnapshotMeta,
  SnapshotRecord,
  StorageAdapter,
} from './adapter.ts';
import {
  type ClosedReason,
  closedError,
  errorName,
  translateIdbError,
  unavailable,
} from './idb-errors.ts';
import {
  afterPendingEvents,
  DEFAULT_BLOCKED_TIMEOUT_MS,
  DEFAULT_OPEN_TIMEOUT_MS,
  globalFactory,
  isQuotaAbort,
  wakeFactory,
  writeOptions,
} from './idb-quirks.ts';

const SCHEMA_VERSION = 1;
const KEY_REPLICA = 'sys:replicaId';
const KEY_EPOCH = 'sys:epoch';
const KEY_COUNTERS = 'sys:counters';
const appKey = (key: string) => `app:${key}`;
/** Page size of scans that have no caller-given limit (minCursorSince). */
const SCAN_PAGE = 256;
/** Largest count getAll accepts (WebIDL unsigned long); 0 would mean "no limit". */
const MAX_COUNT = 0xffff_ffff;

interface StreamRow {
  stream: string;
  version: number;
  conflicted?: true;
}

interface ChronicleSchema extends DBSchema {
  events: {
    key: string;
    value: LocalRecord;
    indexes: { id: string; pos: number; stream: [string, string] };
  };
  meta: { key: string; value: JsonValue | ReplicaCounters };
  streams: { key: string; value: StreamRow };
  snapshots: { key: [string, number, string]; value: SnapshotRecord };
}

type Db = IDBPDatabase<ChronicleSchema>;
type LogStores = ('events' | 'meta' | 'streams')[];
type WriteTx<S extends StoreNames<ChronicleSchema>[]> = IDBPTransaction<
  ChronicleSchema,
  S,
  'readwrite'
>;
type Track = (request: Promise<unknown>) => void;

interface WriteNotice {
  type: 'chronicle:write';
  headPos: number;
}

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

function upgrade(db: IDBDatabase, oldVersion: number, tx: IDBTransaction): void {
  if (oldVersion < 1) {
    const events = db.createObjectStore('events', { keyPath: 'event.cursor' });
    events.createIndex('id', 'event.id', { unique: true });
    events.createIndex('pos', 'pos', { unique: true });
    events.createIndex('stream', ['event.stream', 'event.cursor']);
    db.createObjectStore('meta');
    db.createObjectStore('streams', { keyPath: 'stream' });
    db.createObjectStore('snapshots', { keyPath: ['projection', 'version', 'cursor'] });
    const meta = tx.objectStore('meta');
    meta.put(ReplicaId.make(), KEY_REPLICA);
    meta.put(ReplicaId.make(), KEY_EPOCH);
    const counters: ReplicaCounters = { seq: 0, pos: 0, clock: { wall: 0, counter: 0 } };
    meta.put(counters, KEY_COUNTERS);
  }
}

/** Opens the raw connection: never hangs, always rejects with STORAGE_UNAVAILABLE or VERSION_CHANGE. */
function openDatabase(
  factory: IDBFactory,
  dbName: string,
  timeouts: { openMs: number; blockedMs: number },
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let blockedTimer: ReturnType<typeof setTimeout> | undefined;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(openTimer);
      clearTimeout(blockedTimer);
      reject(error);
    };
    const openTimer = setTimeout(
      () => fail(unavailable(dbName, `open() did not answer within ${timeouts.openMs} ms`)),
      timeouts.openMs,
    );
    let request: IDBOpenDBRequest;
    try {
      wakeFactory(factory);
      request = factory.open(dbName, SCHEMA_VERSION);
    } catch (error) {
      fail(unavailable(dbName, 'open() was refused', error));
      return;
    }
    request.onupgradeneeded = (event) => {
      if (request.transaction !== null)
        upgrade(request.result, event.oldVersion, request.transaction);
    };
    request.onblocked = () => {
      blockedTimer ??= setTimeout(() => {
        fail(
          new StorageError(
            'VERSION_CHANGE',
            `database "${dbName}" is held open by another tab that does not close it; close the other tabs and retry`,
            { dbName },
          ),
        );
      }, timeouts.blockedMs);
    };
    request.onsuccess = () => {
      const db = request.result;
      if (settled) {
        // We gave up on this open already (timeout): do not leak a connection that blocks upgrades.
        db.close();
        return;
      }
      settled = true;
      clearTimeout(openTimer);
      clearTimeout(blockedTimer);
      resolve(db);
    };
    request.onerror = (event) => {
      // A handled error: stops the fake and some browsers from reporting it as uncaught.
      event.preventDefault();
      const error = request.error;
      const reason =
        errorName(error) === 'VersionError'
          ? 'it was created by a newer version of Chronicle; reload to run the newer code'
          : 'open() failed (private browsing, blocked storage or a corrupt database)';
      fail(unavailable(dbName, reason, error));
    };
  });
}

function asCounters(value: unknown): ReplicaCounters {
  if (value !== null && typeof value === 'object' && 'pos' in value && 'seq' in value) {
    return value as ReplicaCounters;
  }
  throw new StorageError('STORAGE', 'the replica counters are missing from the database');
}

/** A plain copy: the stored value must not share objects with what callers hold. */
function plainCounters(c: ReplicaCounters): ReplicaCounters {
  return { seq: c.seq, pos: c.pos, clock: { wall: c.clock.wall, counter: c.clock.counter } };
}

function countOf(limit: number): number {
  if (Number.isNaN(limit)) return 0;
  return Number.isFinite(limit) ? Math.min(Math.floor(limit), MAX_COUNT) : MAX_COUNT;
}

/**
 * The key range of a cursor query on the `cursor` index, or on the `stream` index when the query
 * names a stream. Forward reads (after, until]; reverse reads [until, after).
 */
function cursorRange(query: CursorQuery): IDBKeyRange | null | 'empty' {
  const lower = query.reverse ? query.until : query.after;
  const upper = query.reverse ? query.after : query.until;
  const lowerOpen = !query.reverse;
  const upperOpen = query.reverse === true;
  // IDBKeyRange.bound throws on an empty range instead of matching nothing.
  if (lower !== undefined && upper !== undefined) {
    if (lower > upper || (lower === upper && (lowerOpen || upperOpen))) return 'empty';
  }
  if (query.stream !== undefined) {
    // [stream] sorts before every [stream, cursor] and [stream, []] after (arrays > strings).
    return IDBKeyRange.bound(
      lower === undefined ? [query.stream] : [query.stream, lower],
      upper === undefined ? [query.stream, []] : [query.stream, upper],
      lower !== undefined && lowerOpen,
      upper !== undefined && upperOpen,
    );
  }
  if (lower !== undefined && upper !== undefined) {
    return IDBKeyRange.bound(lower, upper, lowerOpen, upperOpen);
  }
  if (lower !== undefined) return IDBKeyRange.lowerBound(lower, lowerOpen);
  if (upper !== undefined) return IDBKeyRange.upperBound(upper, upperOpen);
  return null;
}

function noop(): void {}

/**
 * Adds records with plain IDB requests. A failed add (a reused id or position) fires `error`,
 * which is not prevented, so the transaction aborts and write() sees the error bubble up.
 */
function addRaw(store: IDBObjectStore, records: readonly LocalRecord[]): void {
  for (const record of records) store.add(record);
}

class IdbEventLog implements EventLog {
  private closedReason: ClosedReason | undefined;
  private readonly listeners = new Set<(headPos: number) => void>();
  private readonly channel: BroadcastChannel | undefined;

  constructor(
    private readonly db: Db,
    readonly replicaId: ReplicaId,
    readonly epoch: string,
    private readonly settings: {
      dbName: string;
      durability: Durability;
      onExternalClose: OpenOptions['onExternalClose'];
    },
  ) {
    db.addEventListener('versionchange', (event) => {
      this.closeFromOutside(event.newVersion === null ? 'deleted' : 'versionchange');
    });
    db.addEventListener('close', () => this.closeFromOutside('unexpected'));
    this.channel = openChannel(settings.dbName, (headPos) => {
      if (this.closedReason !== undefined) return;
      for (const listener of this.listeners) listener(headPos);
    });
  }

  private closeFromOutside(reason: Exclude<ClosedReason, 'closed'>): void {
    if (this.closedReason !== undefined) return;
    this.shutDown(reason);
    try {
      this.settings.onExternalClose?.(reason);
    } catch {
      // The listener's failure must not keep the connection open and block the other tab.
    }
  }

  private shutDown(reason: ClosedReason): void {
    this.closedReason = reason;
    this.listeners.clear();
    this.channel?.close();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closedReason !== undefined) throw closedError(this.settings.dbName, this.closedReason);
  }

  private failure(error: unknown, operation: string, quotaSuspected = false): Error {
    const translated = translateIdbError(error, operation, quotaSuspected);
    // A native failure on a handle closed meanwhile is the closing, whatever IDB named it.
    if (
      this.closedReason !== undefined &&
      !(error instanceof ChronicleError) &&
      translated.code !== 'QUOTA_EXCEEDED'
    ) {
      return closedError(this.settings.dbName, this.closedReason);
    }
    return translated;
  }

  private async read<T>(operation: string, body: (db: Db) => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await body(this.db);
    } catch (error) {
      throw this.failure(error, operation);
    }
  }

  /**
   * Runs `body` in one readwrite transaction and resolves after `complete`. `body` must await
   * only requests of `tx`; it hands every write request to `track` so that its failure is seen.
   */
  private async write<S extends StoreNames<ChronicleSchema>[], T>(
    operation: string,
    stores: S,
    body: (tx: WriteTx<S>, track: Track) => Promise<T>,
    durability: Durability = this.settings.durability,
  ): Promise<T> {
    this.assertOpen();
    let tx: WriteTx<S>;
    try {
      tx = this.db.transaction(stores, 'readwrite', writeOptions(durability));
    } catch (error) {
      throw this.failure(error, operation);
    }
    const done = tx.done;
    done.catch(noop);
    const requestErrors: unknown[] = [];
    const track: Track = (request) => {
      request.catch((error: unknown) => requestErrors.push(error));
    };
    // Requests made on the raw transaction (the append hot path, see addRaw) have no promise:
    // their errors bubble to the transaction, where they are collected the same way.
    unwrap(tx).addEventListener('error', (event) => {
      const target = event.target as IDBRequest | null;
      if (target !== null && 'error' in target) requestErrors.push(target.error);
    });
    let result: T;
    try {
      result = await body(tx, track);
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already finished: it was aborted by the failure itself.
      }
      await done.catch(noop);
      throw this.failure(error, operation);
    }
    try {
      await done;
    } catch (txError) {
      await afterPendingEvents();
      const quota = isQuotaAbort({
        transactionError: txError,
        requestErrorNames: requestErrors.map((e) => errorName(e) ?? 'Error'),
        abortedByUs: false,
        connectionOpen: this.closedReason === undefined,
      });
      const cause = requestErrors.find((e) => errorName(e) !== 'AbortError') ?? txError;
      throw this.failure(quota ? txError : cause, operation, quota);
    }
    return result;
  }

  private notifyOthers(headPos: number): void {
    const notice: WriteNotice = { type: 'chronicle:write', headPos };
    try {
      this.channel?.postMessage(notice);
    } catch {
      // A notice is only a hint (adapter.ts): the log is the truth.
    }
  }

  async appendLocal(request: LocalAppendRequest): Promise<LocalAppendResult> {
    const stores: LogStores = ['events', 'meta', 'streams'];
    const result = await this.write('appendLocal', stores, async (tx) => {
      const events = tx.objectStore('events');
      const streams = tx.objectStore('streams');
      const meta = tx.objectStore('meta');
      const ids = events.index('id');
      const [rawCounters, row, existing] = await Promise.all([
        meta.get(KEY_COUNTERS),
        streams.get(request.stream),
        // A lookup per event is most of an append's reads; canonical ids cannot be stored already.
        Promise.all(request.events.map((e) => (e.id === undefined ? undefined : ids.get(e.id)))),
      ]);
      const plan = planLocalAppend(
        { ...request, replica: this.replicaId },
        {
          counters: asCounters(rawCounters),
          streamVersion: row?.version ?? 0,
          existing: existing.map((r) => r?.event),
        },
      );
      switch (plan.kind) {
        case 'rejected':
          throw plan.error;
        case 'duplicate':
          return { kind: 'duplicate', events: plan.events } satisfies LocalAppendResult;
        case 'write': {
          // Raw requests, not idb's: a promise and two listeners per event were a tenth of an
          // append's time. Failures still abort the transaction and reach write() (invariant 1).
          const raw = unwrap(tx);
          addRaw(raw.objectStore('events'), plan.events);
          raw.objectStore('meta').put(plainCounters(plan.counters), KEY_COUNTERS);
          const next: StreamRow = { stream: request.stream, version: plan.streamVersion };
          if (row?.conflicted) next.conflicted = true;
          raw.objectStore('streams').put(next);
          return { kind: 'written', records: plan.events } satisfies LocalAppendResult;
        }
        default: {
          const never: never = plan;
          throw new Error(`unknown plan ${String(never)}`);
        }
      }
    });
    if (result.kind === 'written') {
      this.notifyOthers(result.records[result.records.length - 1]?.pos ?? 0);
    }
    return result;
  }

  async ingest(request: IngestRequest): Promise<IngestResult> {
    const stores: LogStores = ['events', 'meta', 'streams'];
    const outcome = await this.write('ingest', stores, async (tx, track) => {
      const events = tx.objectStore('events');
      const streams = tx.objectStore('streams');
      const meta = tx.objectStore('meta');
      const ids = events.index('id');
      const names = [...new Set(request.events.map((e) => e.stream))];
      const [rawCounters, rows, existing] = await Promise.all([
        meta.get(KEY_COUNTERS),
        Promise.all(names.map((s) => streams.get(s))),
        Promise.all(request.events.map((e) => ids.get(e.id))),
      ]);
      const rowOf = new Map(names.map((s, i) => [s, rows[i]]));
      const plan = planIngest(
        { ...request, replica: this.replicaId },
        {
          counters: asCounters(rawCounters),
          existing: existing.map((r) => r?.event),
          streamVersions: new Map(names.map((s) => [s, rowOf.get(s)?.version ?? 0])),
        },
      );
      if (plan.write.length > 0) {
        addRaw(unwrap(tx).objectStore('events'), plan.write);
        track(meta.put(plainCounters(plan.counters), KEY_COUNTERS));
        for (const stream of new Set([...plan.streamVersions.keys(), ...plan.possibleConflicts])) {
          const before = rowOf.get(stream);
          const next: StreamRow = {
            stream,
            version: plan.streamVersions.get(stream) ?? before?.version ?? 0,
          };
          if (before?.conflicted || plan.possibleConflicts.has(stream)) next.conflicted = true;
          track(streams.put(next));
        }
      }
      return plan;
    });
    if (outcome.write.length > 0) this.notifyOthers(outcome.counters.pos);
    return { written: outcome.write, skewed: outcome.skewed, divergent: outcome.divergent };
  }

  async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    const limit = countOf(query.limit);
    if (limit <= 0) return [];
    return this.read('readByCursor', async (db) => {
      const range = cursorRange(query);
      if (range === 'empty') return [];
      const store = db.transaction('events').store;
      const index = query.stream === undefined ? store : store.index('stream');
      if (!query.reverse) return index.getAll(range, limit);
      // getAll has no direction: walk a cursor backwards, holding at most `limit` records.
      const out: LocalRecord[] = [];
      let cursor = await index.openCursor(range, 'prev');
      while (cursor !== null && out.length < limit) {
        out.push(cursor.value);
        if (out.length < limit) cursor = await cursor.continue();
      }
      return out;
    });
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    const count = countOf(limit);
    if (count <= 0 || Number.isNaN(afterPos)) return [];
    return this.read('readByPos', (db) =>
      db
        .transaction('events')
        .store.index('pos')
        .getAll(IDBKeyRange.lowerBound(Math.max(0, afterPos), true), count),
    );
  }

  async getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]> {
    return this.read('getByIds', (db) => {
      const index = db.transaction('events').store.index('id');
      return Promise.all(ids.map((id) => index.get(id)));
    });
  }

  private counters(operation: string): Promise<ReplicaCounters> {
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
    return this.read('minCursorSince', async (db) => {
      let min: string | undefined;
      let after = Math.max(0, pos);
      // Pages in separate transactions: a long scan must not hold the log locked for writers.
      // getAllKeys on the pos index yields the primary keys, i.e. the cursors, without reading
      // (and deserializing) the events themselves.
      for (;;) {
        const range = IDBKeyRange.lowerBound(after, true);
        const cursors = await db.getAllKeysFromIndex('events', 'pos', range, SCAN_PAGE);
        for (const c of cursors) if (min === undefined || c < min) min = c;
        if (cursors.length < SCAN_PAGE) return min;
        after += SCAN_PAGE;
      }
    });
  }

  async streamVersion(stream: string): Promise<number> {
    return this.read(
      'streamVersion',
      async (db) => (await db.get('streams', stream))?.version ?? 0,
    );
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

  async putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    // Snapshots are a cache derived from the log: losing the last one on an OS crash costs a
    // longer replay, never data, so they do not pay for a flush to disk.
    await this.write(
      'putSnapshot',
      ['snapshots'],
      async (tx, track) => {
        track(tx.objectStore('snapshots').put(snapshot));
      },
      'relaxed',
    );
  }

  async listSnapshots(projection: string, version: number): Promise<SnapshotMeta[]> {
    return this.read('listSnapshots', async (db) => {
      const out: SnapshotMeta[] = [];
      const range = IDBKeyRange.bound([projection, version], [projection, version, []]);
      // A cursor, not getAll: only one snapshot state is held at a time.
      let cursor = await db.transaction('snapshots').store.openCursor(range);
      while (cursor !== null) {
        const { state: _state, ...meta } = cursor.value;
        out.push(meta);
        cursor = await cursor.continue();
      }
      return out;
    });
  }

  async getSnapshot(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined> {
    return this.read('getSnapshot', (db) => db.get('snapshots', [projection, version, cursor]));
  }

  async deleteSnapshots(
    projection: string,
    which?: readonly { version: number; cursor: string }[],
  ): Promise<void> {
    await this.write('deleteSnapshots', ['snapshots'], async (tx, track) => {
      const store = tx.objectStore('snapshots');
      if (which === undefined) {
        // Versions are numbers, and every array sorts after every number.
        track(store.delete(IDBKeyRange.bound([projection], [projection, []])));
        return;
      }
      for (const w of which) track(store.delete([projection, w.version, w.cursor]));
    });
  }

  async getMeta(key: string): Promise<JsonValue | undefined> {
    return this.read(
      'getMeta',
      (db) => db.get('meta', appKey(key)) as Promise<JsonValue | undefined>,
    );
  }

  async setMeta(key: string, value: JsonValue): Promise<void> {
    await this.write('setMeta', ['meta'], async (tx, track) => {
      track(tx.objectStore('meta').put(value, appKey(key)));
    });
  }

  onRemoteWrite(listener: (headPos: number) => void): () => void {
    if (this.closedReason !== undefined) return noop;
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closedReason === undefined) this.shutDown('closed');
    else this.closedReason = 'closed';
  }
}

function channelName(dbName: string): string {
  return `chronicle:indexeddb:${dbName}`;
}

function isWriteNotice(value: unknown): value is WriteNotice {
  return (
    value !== null &&
    typeof value === 'object' &&
    (value as { type?: unknown }).type === 'chronicle:write' &&
    typeof (value as { headPos?: unknown }).headPos === 'number'
  );
}

function openChannel(
  dbName: string,
  onNotice: (headPos: number) => void,
): BroadcastChannel | undefined {
  if (typeof BroadcastChannel === 'undefined') return undefined;
  const channel = new BroadcastChannel(channelName(dbName));
  channel.onmessage = (event: MessageEvent<unknown>) => {
    if (isWriteNotice(event.data)) onNotice(event.data.headPos);
  };
  // Node keeps its process alive while a BroadcastChannel is referenced; browsers have no unref.
  (channel as { unref?: () => void }).unref?.();
  return channel;
}

async function readIdentity(db: Db): Promise<{ replicaId: ReplicaId; epoch: string }> {
  const tx = db.transaction('meta');
  const [replicaId, epoch] = await Promise.all([
    tx.store.get(KEY_REPLICA),
    tx.store.get(KEY_EPOCH),
  ]);
  if (!ReplicaId.isValid(replicaId) || typeof epoch !== 'string') {
    throw new StorageError('STORAGE', 'the replica id or epoch is missing from the database');
  }
  return { replicaId, epoch };
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
      return new IdbEventLog(db, identity.replicaId, identity.epoch, {
        dbName,
        durability: openOptions.durability ?? 'strict',
        onExternalClose: openOptions.onExternalClose,
      });
    },
  };
}
