/**
 * SQLite server storage on better-sqlite3: the embedded default. One file holds every space.
 *
 * Invariants (beyond those of storage.ts):
 * 1. WAL with `synchronous=FULL`: a commit is on disk (the WAL is fsynced) when it returns, so
 *    an ingest promise resolves only for events that survive a power loss or SIGKILL.
 * 2. One ingest is one savepoint of one transaction, run by one connection at a time (the
 *    writer's); the space's head is read and advanced inside it, so positions stay dense
 *    (storage.ts invariant 3) even with several storages on one file.
 * 3. Event ids are unique per space by a unique index, not by a cache: a resent event is skipped
 *    however late it comes.
 * 4. An event is stored as its queried columns (id, replica, seq, stream, cursor) and a body: the
 *    JSON of the rest (type, version, hlc, meta, schema), a line feed, the JSON of its data
 *    (sqlite-rows.ts); rows of older files hold one JSON body and read as such. JSON.parse keeps
 *    `__proto__` keys as plain data.
 * 5. A checkpoint is handed to the writer and resolves at once (a read sees it at once too); it is
 *    written with the next group, or with `synchronous=NORMAL` in a group of checkpoints only. A
 *    kill or power loss can only roll one back to an older position, which costs a resend that
 *    dedupe absorbs (a checkpoint never passes an event: it is handed over only after the
 *    events it covers committed FULL).
 * 6. The records this process wrote last are kept parsed (`recent`), contiguous and ending at the
 *    head, within one memory budget for all spaces, so that live tailing by many connections and
 *    a catch-up forwarding an upload still arriving read memory, not SQLite; a read is served
 *    from it only when it still ends at the head in the database (another process may write, and
 *    the writer thread commits before the event loop hears of it).
 * 7. Group commit and the writer thread (sqlite-writer.ts): the writes handed over while no group
 *    runs (batches from many connections) commit in ONE transaction, so one fsync covers them
 *    all; each is a savepoint of its own, and none resolves before the group's commit. A
 *    database file is written by a thread with its own connection, so inserts, commits and
 *    fsyncs never block the event loop; this connection only reads. An in-memory database, or
 *    a file whose thread cannot run, is written on the event loop through the same code.
 * 8. An ingest first inserts without looking its ids up (most batches hold only new events;
 *    the lookups cost a tenth of a catch-up's SQLite time). A held or repeated id fails the
 *    unique index of invariant 3, which rolls that attempt back to its savepoint, and the batch
 *    is written again with the lookup: the index, not the shortcut, keeps ids unique.
 * 9. WAL checkpoints run on a thread of their own after commits (sqlite-checkpointer.ts), not in
 *    the commits of ingests; the writer checkpoints by itself only past a bound.
 * 10. A claim that needs no write (every replica of the batch already the sender's) is decided
 *    by a read here; ownership never changes once given, so the read cannot be stale in a way
 *    that matters. Any other claim is a write, decided and applied in one savepoint.
 */
import Database from 'better-sqlite3';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS } from '../core/hlc.ts';
import { ReplicaId } from '../core/ids.ts';
import type { SyncIngestResult } from '../sync/log.ts';
import type { Checkpoint } from '../sync/protocol.ts';
import { RecentBudget, RecentRecords } from './recent-records.ts';
import { SqliteCheckpointer } from './sqlite-checkpointer.ts';
import { eventOfRow, storedBody } from './sqlite-rows.ts';
import { prepareAll, SCHEMA, type Statements } from './sqlite-schema.ts';
import { SqliteWriter } from './sqlite-writer.ts';
import { SqliteWrites } from './sqlite-writes.ts';
import {
  assertSpaceName,
  doubtfulEvents,
  type EventOrigin,
  isSkewed,
  notifyListeners,
  type OriginCheck,
  type ServerStorage,
  type SpaceLog,
} from './storage.ts';

export interface SqliteStorageOptions {
  /** Wall clock (ms), for skew reports; injectable for tests. */
  now?: () => number;
  /** An event HLC further than this ahead of the wall clock is reported as skewed. */
  maxClockDriftMs?: number;
  /**
   * Estimated bytes of recently written records kept parsed, shared by every space (invariant 6;
   * recent-records.ts). Default 128 MiB: 160,000 records of 250-byte data.
   */
  recentCacheBytes?: number;
}

function storageError(operation: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError('STORAGE', `sqlite ${operation} failed: ${message}`, { operation });
}

class SqliteSpaceLog implements SpaceLog {
  private readonly listeners = new Set<(headPos: number) => void>();
  /** Invariant 6: what this process wrote last, parsed. */
  private readonly recent: RecentRecords;
  /** Invariant 5: checkpoints handed to the writer and not yet known written, by peer. */
  private readonly pendingCheckpoints = new Map<string, Checkpoint>();
  /** A checkpoint write that failed: the next setCheckpoint reports it. */
  private checkpointFailure: StorageError | undefined;

  constructor(
    private readonly storage: SqliteServerStorage,
    private readonly st: Statements,
    readonly space: string,
    readonly replicaId: string,
    private readonly epochId: string,
  ) {
    this.recent = new RecentRecords(storage.recentBudget);
  }

  async epoch(): Promise<string> {
    return this.epochId;
  }

  async headPos(): Promise<number> {
    return this.run('headPos', () => this.st.getHead.get(this.space)?.head ?? 0);
  }

  /** The server never authors events: it holds none of its own. */
  async ownSeq(): Promise<number> {
    return 0;
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    const max = Math.max(0, Math.floor(limit));
    return this.run('readByPos', () => {
      const head = this.st.getHead.get(this.space)?.head ?? 0;
      if (afterPos >= head || max === 0) return [];
      const cached = this.recent.slice(head, afterPos, max);
      if (cached !== undefined) return cached;
      return this.st.readByPos
        .all(this.space, afterPos, max)
        .map((row) => ({ pos: row.pos, event: eventOfRow(row) }));
    });
  }

  async idAtPos(pos: number): Promise<string | undefined> {
    return this.run('idAtPos', () => this.st.idAtPos.get(this.space, pos)?.id);
  }

  async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    this.storage.assertOpen();
    const rows: (string | number)[] = [];
    for (const event of events) {
      rows.push(event.id, event.replica, event.seq, event.stream, event.cursor, storedBody(event));
    }
    let written: LocalRecord[] = [];
    await this.storage.writer.run({ kind: 'ingest', space: this.space, rows }, (result) => {
      // Before any piece of the group resolves (sqlite-writer.ts invariant 2).
      const chosen =
        result.written === null ? events : result.written.map((index) => events[index]!);
      written = chosen.map((event, i) => ({ event, pos: result.first + i }));
      this.storage.committed();
      if (written.length === 0) return;
      this.recent.add(written);
      notifyListeners(this.listeners, written[written.length - 1]!.pos);
    });
    const skewed = isSkewed(events, this.storage.now() + this.storage.maxClockDriftMs);
    return { written, skewed };
  }

  async getCheckpoint(peer: string): Promise<Checkpoint | undefined> {
    const pending = this.pendingCheckpoints.get(peer);
    if (pending !== undefined) return pending;
    return this.run('getCheckpoint', () => {
      const row = this.st.getCheckpoint.get(this.space, peer);
      return row === undefined ? undefined : (JSON.parse(row.checkpoint) as Checkpoint);
    });
  }

  async setCheckpoint(peer: string, checkpoint: Checkpoint): Promise<void> {
    this.storage.assertOpen();
    const failure = this.checkpointFailure;
    if (failure !== undefined) {
      this.checkpointFailure = undefined;
      throw failure;
    }
    // Invariant 5: resolves once handed over; reads see it from now on.
    this.pendingCheckpoints.set(peer, checkpoint);
    const piece = {
      kind: 'checkpoint' as const,
      space: this.space,
      peer,
      checkpoint: JSON.stringify(checkpoint),
    };
    this.storage.writer.run(piece).then(
      () => {
        if (this.pendingCheckpoints.get(peer) === checkpoint) this.pendingCheckpoints.delete(peer);
      },
      (error: unknown) => {
        if (this.pendingCheckpoints.get(peer) === checkpoint) this.pendingCheckpoints.delete(peer);
        this.checkpointFailure = storageError('setCheckpoint', error);
      },
    );
  }

  onAppend(listener: (headPos: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async claimOrigins(sub: string, events: readonly EventOrigin[]): Promise<OriginCheck> {
    // Invariant 10: the common batch, all of the sender's own replicas, is decided by a read.
    const owned = this.run('claimOrigins', () => {
      const owners = new Map<string, string | null | undefined>();
      for (const event of events) {
        if (owners.has(event.replica)) continue;
        owners.set(
          event.replica,
          event.replica === this.replicaId
            ? null
            : this.st.getOwner.get(this.space, event.replica)?.sub,
        );
      }
      return doubtfulEvents(sub, events, owners).length === 0;
    });
    if (owned) return { ok: true };
    const result = await this.storage.writer.run({
      kind: 'claim',
      space: this.space,
      spaceReplica: this.replicaId,
      sub,
      events: events.map((e) => ({ id: e.id, replica: e.replica })),
    });
    return result.check;
  }

  async ownerOf(replica: string): Promise<string | undefined> {
    return this.run('ownerOf', () => this.st.getOwner.get(this.space, replica)?.sub);
  }

  private run<T>(operation: string, fn: () => T): T {
    this.storage.assertOpen();
    try {
      return fn();
    } catch (error) {
      throw storageError(operation, error);
    }
  }
}

class SqliteServerStorage implements ServerStorage {
  readonly name: string;
  readonly now: () => number;
  readonly maxClockDriftMs: number;
  readonly recentBudget: RecentBudget;
  /** Every write goes through it (invariant 7). */
  readonly writer: SqliteWriter;
  /** This connection reads; it writes only when the writer runs on the event loop. */
  private readonly db: Database.Database;
  private readonly st: Statements;
  private readonly spaces = new Map<string, Promise<SqliteSpaceLog>>();
  private closed = false;
  /** WAL checkpoints off the event loop (invariant 9); none for an in-memory database. */
  private readonly checkpointer: SqliteCheckpointer | undefined;

  constructor(path: string, options: SqliteStorageOptions) {
    this.name = `sqlite:${path}`;
    this.now = options.now ?? Date.now;
    this.maxClockDriftMs = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
    this.recentBudget = new RecentBudget(options.recentCacheBytes);
    const inMemory = path === '' || path === ':memory:';
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      // Another process (a backup, a second server) may hold the write lock for a moment.
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
      this.st = prepareAll(this.db);
      let inline: SqliteWrites | undefined;
      this.writer = new SqliteWriter(
        (pieces) => {
          // The event loop writes (an in-memory database, or no thread): this connection.
          inline ??= new SqliteWrites(this.db);
          return inline.runGroup(pieces);
        },
        inMemory ? undefined : { path },
        (operation, message) => storageError(operation, new Error(message)),
      );
      if (!inMemory) {
        this.checkpointer = new SqliteCheckpointer(path, (pages) => {
          this.db.pragma(`wal_autocheckpoint = ${pages}`);
        });
      }
    } catch (error) {
      throw new StorageError(
        'STORAGE_UNAVAILABLE',
        `cannot open sqlite database ${path}: ${error instanceof Error ? error.message : String(error)}`,
        { path },
      );
    }
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('STORAGE', `${this.name} is closed`);
  }

  /** After each group commit: the WAL grew (invariant 9). */
  committed(): void {
    this.checkpointer?.request();
  }

  openSpace(space: string): Promise<SpaceLog> {
    try {
      this.assertOpen();
      assertSpaceName(space);
    } catch (error) {
      return Promise.reject(error);
    }
    let log = this.spaces.get(space);
    if (log === undefined) {
      // One SpaceLog per space (storage.ts invariant 5), also for calls that overlap.
      log = this.createSpace(space);
      this.spaces.set(space, log);
      log.catch(() => this.spaces.delete(space));
    }
    return log;
  }

  private async createSpace(space: string): Promise<SqliteSpaceLog> {
    let row: { replica: string; epoch: string } | undefined;
    try {
      row = this.st.getSpace.get(space);
    } catch (error) {
      throw storageError('openSpace', error);
    }
    if (row === undefined) {
      const created = await this.writer.run({
        kind: 'space',
        space,
        replica: ReplicaId.make(),
        epoch: ReplicaId.make(),
      });
      row = created;
    }
    this.assertOpen();
    return new SqliteSpaceLog(this, this.st, space, row.replica, row.epoch);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Graceful shutdown finishes what was handed over: the waiting writes commit first.
    this.closed = true;
    this.spaces.clear();
    await this.writer.close();
    await this.checkpointer?.close();
    this.db.close();
  }
}

/**
 * The embedded default server storage: one SQLite file (or `':memory:'`) for every space.
 *
 * @example
 * const server = await createSyncServer({ storage: sqliteStorage('./data/chronicle.sqlite'), auth: { secret } });
 */
export function sqliteStorage(path: string, options: SqliteStorageOptions = {}): ServerStorage {
  return new SqliteServerStorage(path, options);
}
