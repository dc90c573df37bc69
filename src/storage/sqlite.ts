/**
 * The SQLite storage adapter for Node, on better-sqlite3: a durable replica for a back-end
 * service (or a CLI, or a desktop app), with the behaviour of the IndexedDB adapter. The schema
 * is in sqlite-schema.ts, the statements in sqlite-rows.ts, each write's transaction in
 * sqlite-writes.ts, notices between handles in sqlite-notices.ts.
 *
 * Invariants (numbered as in adapter.ts, plus these):
 * 1. Every write is ONE `BEGIN IMMEDIATE` transaction (sqlite-writes.ts): the write lock is
 *    taken before the counters, versions and ids are read, so handles of this process and
 *    other processes on the file are one replica, like tabs (adapter.ts A1, A2).
 * 2. WAL mode. `durability: 'strict'` (the default) runs `synchronous=FULL`: the WAL is fsynced
 *    before a write resolves, so it survives a process kill and a power loss. 'relaxed' and
 *    'default' run `synchronous=NORMAL`: a resolved write survives a process kill (it is in the
 *    OS's cache), but a power loss or OS crash may take back the last writes, whole
 *    transactions only, never a torn log.
 * 3. Each open() is its own connection. A writer waits up to `busyTimeoutMs` for another
 *    process's write lock (blocking this thread: better-sqlite3 is synchronous), then fails
 *    with STORAGE and nothing written.
 * 4. After close(), every call rejects with STORE_CLOSED; `replicaId` keeps its last value.
 * 5. A re-stamp reads its input (restamp-reads.ts, asynchronous) outside the transaction, then
 *    writes only if the log's `gen` is the one it read before; else it reads again.
 * 6. A log write runs in a later turn of the event loop (setImmediate), not in the caller's:
 *    better-sqlite3 answers synchronously, so a service's loop of awaited appends would
 *    otherwise never yield to its socket and timers, and its sync would never run. Appends
 *    made meanwhile share the store's next group commit (store/local-appends.ts).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type Database from 'better-sqlite3';
import type { AppendUnitOutcome } from '../core/append-group.ts';
import { StorageError, StoreClosedError, ValidationError } from '../core/errors.ts';
import type { JsonValue, LocalRecord } from '../core/events.ts';
import type { HlcState } from '../core/hlc.ts';
import type { ReplicaId } from '../core/ids.ts';
import type { StoredIdentity, StoredSigningKey } from '../core/replica-identity.ts';
import { planRestamp } from '../core/restamp.ts';
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
import { readRestampInput } from './restamp-reads.ts';
import { translateSqliteError } from './sqlite-errors.ts';
import { loadBetterSqlite } from './sqlite-loader.ts';
import { announce, Listeners, type NoticeTarget, register, unregister } from './sqlite-notices.ts';
import { LogStatements } from './sqlite-rows.ts';
import { ensureSchema } from './sqlite-schema.ts';
import { SqliteSnapshots } from './sqlite-snapshots.ts';
import {
  adoptIn,
  appendGroupIn,
  BASE_VECTOR_META_KEY,
  discardIn,
  HORIZON_META_KEY,
  ingestIn,
  installBaseIn,
  isVector,
  replaceOwnIn,
  restampIn,
  TRIMMED_POS_META_KEY,
  trimIn,
  type Written,
} from './sqlite-writes.ts';

export interface SqliteReplicaStorageOptions {
  /** How long a write waits for another process's write lock, in ms (invariant 3). Default 5000. */
  busyTimeoutMs?: number;
  /**
   * How often a handle with onRemoteWrite listeners looks for writes by other processes, in ms
   * (sqlite-notices.ts invariant 2). Default 500; 0 turns it off. Handles of one process hear of
   * each other's writes at once whatever this is.
   */
  pollIntervalMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_POLL_MS = 500;

class SqliteEventLog implements EventLog, NoticeTarget {
  private readonly db: Database.Database;
  private readonly st: LogStatements;
  private readonly snapshots: SqliteSnapshots;
  private readonly listeners: Listeners;
  private readonly path: string;
  private closed = false;
  private lastReplica: ReplicaId;
  readonly epoch: string;

  constructor(db: Database.Database, path: string, pollMs: number) {
    this.db = db;
    this.path = path;
    this.st = new LogStatements(db);
    this.snapshots = new SqliteSnapshots(db);
    const state = this.st.state();
    this.lastReplica = state.replica;
    this.epoch = state.epoch;
    this.listeners = new Listeners({
      pollMs,
      dataVersion: () => db.pragma('data_version', { simple: true }) as number,
      head: () => this.st.state().counters.pos,
    });
    register(path, this);
  }

  /** Read from the file: another handle or process may have moved it (core/append.ts 8). */
  get replicaId(): ReplicaId {
    if (!this.closed) {
      try {
        this.lastReplica = this.st.state().replica;
      } catch {
        // Invariant 4: the last value read.
      }
    }
    return this.lastReplica;
  }

  heard(head: number, rewrittenFrom?: string): void {
    if (!this.closed) this.listeners.deliver(head, rewrittenFrom);
  }

  /** Runs `body` on the open connection, its failures translated (sqlite-errors.ts). */
  private run<T>(operation: string, body: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError('the storage handle is closed'));
    try {
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(translateSqliteError(error, operation));
    }
  }

  /** One write transaction (invariant 1), announced to the other handles after its commit. */
  private async write<T>(operation: string, body: () => Written<T>): Promise<T> {
    // Invariant 6: a turn of its own, as an IndexedDB write's completion is.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const written = await this.run(operation, () => this.db.transaction(body).immediate());
    this.lastReplica = written.replica;
    if (written.head !== undefined) {
      announce(this.path, this, written.head, written.rewrittenFrom);
    }
    return written.result;
  }

  async appendLocal(request: LocalAppendRequest): Promise<LocalAppendResult> {
    const { now, ...part } = request;
    return onlyOutcome(await this.appendGroup({ units: [[part]], now }));
  }

  appendGroup(request: AppendGroupRequest): Promise<AppendUnitOutcome[]> {
    return this.write('appendLocal', () => appendGroupIn(this.st, request));
  }

  ingest(request: IngestRequest): Promise<IngestResult> {
    return this.write('ingest', () => ingestIn(this.st, request));
  }

  trim(horizon: string, limit: number, maxPos = Number.POSITIVE_INFINITY): Promise<TrimResult> {
    return this.write('trim', () => trimIn(this.st, horizon, limit, maxPos));
  }

  horizon(): Promise<string | undefined> {
    return this.run('horizon', () => {
      const value = this.st.getMeta(HORIZON_META_KEY);
      return typeof value === 'string' ? value : undefined;
    });
  }

  installBase(base: LogBase): Promise<boolean> {
    return this.write('installBase', () =>
      installBaseIn(this.st, base, (snapshot) => this.snapshots.put(snapshot)),
    );
  }

  baseVector(): Promise<Readonly<Record<string, number>> | undefined> {
    return this.run('baseVector', () => {
      const value = this.st.getMeta(BASE_VECTOR_META_KEY);
      return isVector(value) ? value : undefined;
    });
  }

  trimmedPos(): Promise<number> {
    return this.run('trimmedPos', () => {
      const value = this.st.getMeta(TRIMMED_POS_META_KEY);
      return typeof value === 'number' ? value : 0;
    });
  }

  discard(events: readonly DiscardedEvent[]): Promise<LocalRecord[]> {
    if (events.length === 0) return this.run('discard', () => []);
    return this.write('discard', () => discardIn(this.st, events));
  }

  async restamp(request: RestampRequest): Promise<RestampResult> {
    for (;;) {
      const { gen, counters, replica } = await this.run('restamp', () => this.st.state());
      const input = await readRestampInput(this, replica, counters.pos, request);
      if (input === undefined) return { changed: [] };
      const { changed } = planRestamp(input);
      if (changed.length === 0) return { changed: [] };
      // Invariant 5: written only over the log the plan read.
      const outcome = await this.write('restamp', () => {
        const state = this.st.state();
        if (state.gen !== gen) return { result: undefined, replica: state.replica };
        const from = restampIn(this.st, changed);
        return {
          result: from,
          replica: state.replica,
          head: state.counters.pos,
          rewrittenFrom: from,
        };
      });
      if (outcome !== undefined) return { changed, from: outcome };
    }
  }

  identity(): Promise<StoredIdentity | undefined> {
    return this.run('identity', () => this.st.state().identity);
  }

  adoptIdentity(key: StoredSigningKey): Promise<void> {
    return this.run('adoptIdentity', () => {
      this.lastReplica = this.db.transaction(() => adoptIn(this.st, key)).immediate();
    });
  }

  eventsAtSlots(
    slots: readonly { replica: string; seq: number }[],
  ): Promise<(LocalRecord | undefined)[]> {
    return this.run('eventsAtSlots', () => slots.map((s) => this.st.bySlot(s.replica, s.seq)));
  }

  trimmedSlots(slots: readonly { replica: string; seq: number }[]): Promise<boolean[]> {
    return this.run('trimmedSlots', () => slots.map((s) => this.st.trimmedSlot(s.replica, s.seq)));
  }

  replaceOwn(records: readonly LocalRecord[]): Promise<void> {
    return this.run('replaceOwn', () => {
      if (records.length > 0) this.db.transaction(() => replaceOwnIn(this.st, records)).immediate();
    });
  }

  readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    return this.run('readByCursor', () => this.st.readByCursor(query));
  }

  readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    return this.run('readByPos', () => this.st.readByPos(afterPos, limit));
  }

  getByIds(ids: readonly string[]): Promise<(LocalRecord | undefined)[]> {
    return this.run('getByIds', () => ids.map((id) => this.st.byId(id)));
  }

  headPos(): Promise<number> {
    return this.run('headPos', () => this.st.state().counters.pos);
  }

  ownSeq(): Promise<number> {
    return this.run('ownSeq', () => this.st.state().counters.seq);
  }

  minCursorSince(pos: number): Promise<string | undefined> {
    return this.run('minCursorSince', () => this.st.minCursorSince(pos));
  }

  streamVersion(stream: string): Promise<number> {
    return this.run('streamVersion', () => this.st.streamVersion(stream));
  }

  conflictStreams(): Promise<string[]> {
    return this.run('conflictStreams', () => this.st.conflictStreams());
  }

  clock(): Promise<HlcState> {
    return this.run('clock', () => this.st.state().counters.clock);
  }

  putSnapshot(snapshot: SnapshotRecord): Promise<void> {
    return this.run('putSnapshot', () => this.snapshots.put(snapshot));
  }

  listSnapshots(projection: string, version: number): Promise<SnapshotMeta[]> {
    return this.run('listSnapshots', () => this.snapshots.list(projection, version));
  }

  getSnapshot(
    projection: string,
    version: number,
    cursor: string,
  ): Promise<SnapshotRecord | undefined> {
    return this.run('getSnapshot', () => this.snapshots.get(projection, version, cursor));
  }

  deleteSnapshots(
    projection: string,
    which?: readonly { version: number; cursor: string }[],
  ): Promise<void> {
    return this.run('deleteSnapshots', () =>
      this.db.transaction(() => this.snapshots.delete(projection, which)).immediate(),
    );
  }

  getMeta(key: string): Promise<JsonValue | undefined> {
    return this.run('getMeta', () => this.st.getMeta(key));
  }

  setMeta(key: string, value: JsonValue): Promise<void> {
    return this.run('setMeta', () => this.st.setMeta(key, value));
  }

  onRemoteWrite(listener: RemoteWriteListener): () => void {
    if (this.closed) return () => {};
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    unregister(this.path, this);
    this.db.close();
  }
}

function synchronousOf(durability: Durability | undefined): 'FULL' | 'NORMAL' {
  return durability === undefined || durability === 'strict' ? 'FULL' : 'NORMAL';
}

/** A fresh connection on the file, in WAL mode, its schema ensured (invariants 2, 3). */
function connect(
  Database: typeof BetterSqlite3,
  path: string,
  options: OpenOptions,
  busyTimeoutMs: number,
): Database.Database {
  let db: Database.Database;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (error) {
    throw new StorageError('STORAGE_UNAVAILABLE', `the replica file ${path} cannot be opened`, {
      path,
      nativeMessage: error instanceof Error ? error.message : String(error),
    });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronousOf(options.durability)}`);
    ensureSchema(db, path);
    return db;
  } catch (error) {
    db.close();
    const translated = translateSqliteError(error, 'open');
    throw translated.code === 'STORAGE'
      ? new StorageError('STORAGE_UNAVAILABLE', translated.message, translated.details)
      : translated;
  }
}

/**
 * A durable storage adapter for Node on a SQLite file (better-sqlite3, an optional peer
 * dependency, loaded at this call: MissingDependencyError when it is not installed): a back-end
 * service's store is then a replica like a browser's, whose log survives restarts and SIGKILL. Every handle opened on it, in this process or another, is
 * the same replica. The file's folder is created when missing.
 *
 * @example
 * import { openStore } from '@chronicle-es/store';
 * import { sqliteReplicaStorage } from '@chronicle-es/store/node';
 * const store = await openStore({ name: 'numbers', storage: sqliteReplicaStorage('/var/lib/svc/log.db') });
 */
export function sqliteReplicaStorage(
  path: string,
  options: SqliteReplicaStorageOptions = {},
): StorageAdapter {
  if (typeof path !== 'string' || path === '' || path === ':memory:' || path.startsWith('file:')) {
    throw new ValidationError(
      'path',
      'must be the path of a file: an in-memory SQLite database would not be shared by the handles of one replica; use memoryStorage() for a store that need not persist',
    );
  }
  // Loaded at the call, as server/peers.ts does: a missing install fails here, not at open().
  const Database = loadBetterSqlite();
  const file = resolve(path);
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
  return {
    name: `sqlite:${file}`,
    async open(openOptions: OpenOptions = {}): Promise<EventLog> {
      const db = connect(Database, file, openOptions, busyTimeoutMs);
      try {
        return new SqliteEventLog(db, file, pollMs);
      } catch (error) {
        db.close();
        throw translateSqliteError(error, 'open');
      }
    },
  };
}
