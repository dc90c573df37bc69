/**
 * SQLite server storage on better-sqlite3: the embedded default. One file holds every space.
 *
 * Invariants (beyond those of storage.ts):
 * 1. WAL with `synchronous=FULL`: a commit is on disk (the WAL is fsynced) when it returns, so
 *    an ingest promise resolves only for events that survive a power loss or SIGKILL.
 * 2. One ingest is one transaction. better-sqlite3 is synchronous, so no other statement of this
 *    process runs inside it; the space's head is read and advanced inside that transaction, so
 *    positions stay unique and increasing (storage.ts invariant 3) even with several storages on
 *    one file.
 * 3. Event ids are unique per space by a unique index, not by a cache: a resent event is skipped
 *    however late it comes. (replica, seq) is unique per space too (a unique index, except on a
 *    file that held duplicates before it existed: sqlite-schema.ts createSlotIndex); colliding
 *    copies are resolved by core/copies.ts: a held loser is deleted (a hole in the positions),
 *    the winner written at the head, a reused (replica, seq) that loses refuses the batch.
 * 4. An event is stored as its queried columns (id, replica, seq, stream, cursor) and a body: the
 *    JSON of the rest (type, version, hlc, meta, schema), a line feed, the JSON of its data
 *    (sqlite-rows.ts); rows of older files hold one JSON body and read as such. JSON.parse keeps
 *    `__proto__` keys as plain data.
 * 5. Checkpoints are written with `synchronous=NORMAL`: they survive a process kill, and a power
 *    loss can only roll one back to an older position, which costs a resend that dedupe absorbs
 *    (a checkpoint never passes an event, since the events were committed FULL before it).
 * 6. The records this process wrote last are kept parsed (`recent`), contiguous and ending at the
 *    head, within one memory budget for all spaces, so that live tailing by many connections and
 *    a catch-up forwarding an upload still arriving read memory, not SQLite; a read is served
 *    from it only when it still ends at the head in the database (another process may write).
 * 7. Group commit: ingests handed over in one turn of the event loop (batches from many
 *    connections) commit in ONE transaction, so one fsync covers them all; each is a savepoint of
 *    its own (one failing rolls back only itself), and none resolves before the group's commit.
 * 8. An ingest first inserts without looking its ids up (most batches hold only new events;
 *    the lookups cost a tenth of a catch-up's SQLite time). A held or repeated id fails the
 *    unique index of invariant 3, which rolls that attempt back to its savepoint, and the batch
 *    is written again with the lookup: the index, not the shortcut, keeps ids unique.
 * 9. WAL checkpoints run on a thread of their own after commits (sqlite-checkpointer.ts), not in
 *    the commits of ingests; the writer checkpoints by itself only past a bound.
 * 10. The database file's folder is created when missing, so `sqliteStorage('./data/x.sqlite')`
 *    works on a fresh checkout; an in-memory (':memory:') or temporary ('') database has none.
 * 11. Strict streams (core/strict.ts): the server is their authority. Their heads are a table
 *    read and written inside the ingest's transaction (invariant 2), after copies are resolved:
 *    of two batches extending one head, the later in commit order sees the first's head and is
 *    rejected. A rejected event is not stored and takes no position; its rejection is kept, in
 *    the same transaction, until its replica's hello says it knows (storage.ts rejectionsOf).
 * 12. Compaction (issue 18): positions older than a hot tail are sealed into blocks in the
 *    background (sqlite-blocks.ts, sqlite-compactor.ts). Every read and lookup above (reads by
 *    position, ids, slots, copies, strict streams) sees rows and blocks as one log; an ingest
 *    whose ids or slots may be sealed takes the lookup path of invariant 8, since the unique
 *    indexes of the rows do not see the blocks.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { StorageError } from '../core/errors.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS } from '../core/hlc.ts';
import { ReplicaId } from '../core/ids.ts';
import { type ArchiveCheck, ArchiveReader } from './archive-files.ts';
import type { CompactionOptions } from './compaction-options.ts';
import { GroupCommit } from './group-commit.ts';
import { loadSqlite } from './peers.ts';
import { RecentBudget } from './recent-records.ts';
import { ARCHIVE_SCHEMA, archiveSqlite, checkSqliteArchive } from './sqlite-archive.ts';
import { BLOCK_SCHEMA, BlockStore } from './sqlite-blocks.ts';
import { SqliteCheckpointer } from './sqlite-checkpointer.ts';
import { SqliteCompactor, sqliteCompactionWork } from './sqlite-compactor.ts';
import {
  HISTORY_SCHEMA,
  type HistoryRows,
  historyRowsStatements,
  migrateHistory,
} from './sqlite-history.ts';
import { storageError } from './sqlite-rows.ts';
import {
  createSlotIndex,
  migrateSpaces,
  prepareAll,
  SCHEMA,
  type Statements,
} from './sqlite-schema.ts';
import { sqliteSnapshots } from './sqlite-snapshots.ts';
import { type SqliteSpaceHost, SqliteSpaceLog } from './sqlite-space.ts';
import {
  type ArchiveOptions,
  type ArchiveReport,
  assertSpaceName,
  type CompactionReport,
  type PublisherLock,
  type ServerStorage,
  type SnapshotStore,
  type SpaceHead,
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
  /**
   * Sealing old positions into compressed blocks (invariant 12; sqlite-compactor.ts for the
   * defaults and why); on by default, `false` leaves every event a row.
   */
  compaction?: CompactionOptions | false;
  /**
   * Where archived blocks' files are (sqlite-archive.ts; `chronicle-server archive`). Default:
   * the directory `<path>-archive` beside the file (none for `':memory:'`).
   */
  archiveDir?: string;
}

class SqliteServerStorage implements ServerStorage, SqliteSpaceHost {
  readonly name: string;
  readonly now: () => number;
  readonly maxClockDriftMs: number;
  readonly recentBudget: RecentBudget;
  /** Whether the (replica, seq) index is unique (sqlite-schema.ts createSlotIndex). */
  readonly slotsUnique: boolean;
  readonly blocks: BlockStore;
  /** Where archived blocks' files are (sqlite-archive.ts), absolute; undefined: none. */
  readonly archiveDir: string | undefined;
  readonly historyRows: HistoryRows;
  /** The spaces' snapshots (sqlite-snapshots.ts). */
  readonly snapshots: SnapshotStore;
  /** Invariant 12; undefined when compaction is off. */
  readonly compactor: SqliteCompactor | undefined;
  private readonly db: Database.Database;
  private readonly rangeTx: Database.Transaction<() => number>;
  private readonly st: Statements;
  private readonly spaces = new Map<string, SqliteSpaceLog>();
  private closed = false;
  /** Ingests commit in groups (invariant 7). */
  private readonly commits: GroupCommit;
  /** WAL checkpoints off the event loop (invariant 9); none for an in-memory database. */
  private readonly checkpointer: SqliteCheckpointer | undefined;

  constructor(path: string, options: SqliteStorageOptions) {
    this.name = `sqlite:${path}`;
    this.now = options.now ?? Date.now;
    this.maxClockDriftMs = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
    this.recentBudget = new RecentBudget(options.recentCacheBytes);
    const Sqlite = loadSqlite();
    const inFile = path !== '' && path !== ':memory:';
    try {
      if (inFile) mkdirSync(dirname(resolve(path)), { recursive: true }); // invariant 10
      this.db = new Sqlite(path);
      // Only takes on a new file: there it lets compaction give freed pages back (invariant 12).
      this.db.pragma('auto_vacuum = INCREMENTAL');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      // A deleted row's bytes are zeroed, not left in a free page: an erased StreamKey (a shred,
      // core/keyring-events.ts) replaces its row, and the key it held must not stay in the file.
      // Rows are deleted only when a copy loses, so this costs next to nothing.
      this.db.pragma('secure_delete = ON');
      // Another process (a backup, a second server) may hold the write lock for a moment.
      this.db.pragma('busy_timeout = 5000');
      migrateSpaces(this.db);
      this.db.exec(SCHEMA);
      this.db.exec(BLOCK_SCHEMA);
      migrateHistory(this.db);
      this.db.exec(HISTORY_SCHEMA);
      this.slotsUnique = createSlotIndex(this.db);
      this.st = prepareAll(this.db);
      this.db.exec(ARCHIVE_SCHEMA);
      this.archiveDir = options.archiveDir ?? (inFile ? `${path}-archive` : undefined);
      this.blocks = new BlockStore(this.db, new ArchiveReader(this.archiveDir));
      this.historyRows = historyRowsStatements(this.db);
      this.snapshots = sqliteSnapshots(this.db, (operation, fn) => {
        this.assertOpen();
        try {
          return fn();
        } catch (error) {
          throw storageError(operation, error);
        }
      });
      this.rangeTx = this.db.transaction(() => this.blocks.history.fillUnranged(1024));
      const inTransaction = this.db.transaction((run: () => void) => run());
      this.commits = new GroupCommit(
        (run) => {
          // Not dead: a listener called by close()'s flush may hand over an ingest, whose group
          // runs after the close and must reject as closed.
          this.assertOpen();
          inTransaction(run);
          this.checkpointer?.request();
          this.compactor?.afterCommit();
        },
        (error) => storageError('ingest', error),
      );
      if (inFile) {
        this.checkpointer = new SqliteCheckpointer(path, (pages) => {
          this.db.pragma(`wal_autocheckpoint = ${pages}`);
        });
      }
      // Files whose (replica, seq) slots are not unique are not sealed (sqlite-blocks.ts 4).
      this.compactor =
        options.compaction === false || !this.slotsUnique
          ? undefined
          : new SqliteCompactor(
              sqliteCompactionWork(this.db, this.st, this.blocks),
              options.compaction ?? {},
            );
    } catch (error) {
      throw new StorageError(
        'STORAGE_UNAVAILABLE',
        `cannot open sqlite database ${path}: ${error instanceof Error ? error.message : String(error)}`,
        { path },
      );
    }
  }

  /** Gives the blocks a layout-2 server sealed their ranges (sqlite-history.ts invariant 4). */
  rangeBlocks(): void {
    while (this.rangeTx.immediate() > 0) {}
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('STORAGE', `${this.name} is closed`);
  }

  async openSpace(space: string): Promise<SpaceLog> {
    this.assertOpen();
    assertSpaceName(space);
    const open = this.spaces.get(space);
    if (open !== undefined) return open;
    let row: { sid: number; replica: string; epoch: string } | undefined;
    try {
      // INSERT OR IGNORE, then read: if another process created the space first, its ids win.
      this.st.insertSpace.run(space, ReplicaId.make(), ReplicaId.make());
      row = this.st.getSpace.get(space);
    } catch (error) {
      throw storageError('openSpace', error);
    }
    if (row === undefined) throw new StorageError('STORAGE', `space ${space} vanished`);
    const log = new SqliteSpaceLog(this, this.db, this.st, space, row.sid, row.replica, row.epoch);
    this.spaces.set(space, log);
    return log;
  }

  async listSpaces(): Promise<SpaceHead[]> {
    this.assertOpen();
    try {
      return this.st.listSpaces.all().map(({ space, head }) => ({ space, head }));
    } catch (error) {
      throw storageError('listSpaces', error);
    }
  }

  async publishedPositions(publisher: string): Promise<Map<string, number>> {
    this.assertOpen();
    try {
      const rows = this.st.publishedPositions.all(publisher);
      return new Map(rows.map(({ space, pos }) => [space, pos]));
    } catch (error) {
      throw storageError('publishedPositions', error);
    }
  }

  async setPublishedPos(publisher: string, space: string, pos: number): Promise<void> {
    this.assertOpen();
    try {
      // As a checkpoint (invariant 5): a position lost to a power cut costs a re-send, which
      // the broker drops as a duplicate (publish-sink.ts invariant 2).
      this.st.syncNormal.run();
      try {
        this.st.setPublishedPos.run(publisher, space, pos);
      } finally {
        this.st.syncFull.run();
      }
    } catch (error) {
      throw storageError('setPublishedPos', error);
    }
  }

  /**
   * Granted: SQLite serves one server per file (other processes on the file are not told of
   * appends either); a second process publishing too would only re-send what the broker drops.
   */
  async lockPublisher(): Promise<PublisherLock> {
    this.assertOpen();
    return { lost: new Promise<void>(() => {}), release: async () => {} };
  }

  /** Seals every space's log older than its tail, then frees the file's free pages. */
  async compact(): Promise<CompactionReport> {
    this.assertOpen();
    try {
      this.commits.flush();
      return this.compactor?.runAll(true, true) ?? { blocks: 0, events: 0 };
    } catch (error) {
      throw storageError('compact', error);
    }
  }

  /** Moves old blocks' bodies to files (sqlite-archive.ts), then frees the pages they held. */
  async archive(options: ArchiveOptions): Promise<ArchiveReport> {
    this.assertOpen();
    const dir = this.archiveDir;
    if (dir === undefined)
      throw new StorageError('STORAGE', `${this.name} has no archive directory`);
    try {
      this.commits.flush();
      const report = archiveSqlite(this.db, resolve(dir), options);
      this.db.pragma('incremental_vacuum');
      return report;
    } catch (error) {
      throw storageError('archive', error);
    }
  }

  async checkArchive(): Promise<ArchiveCheck> {
    this.assertOpen();
    return checkSqliteArchive(this.db, resolve(this.archiveDir ?? '.'));
  }

  /** Runs an ingest in the next group commit (invariant 7; group-commit.ts). */
  groupCommit<T>(work: () => T, committed: (result: T) => void): Promise<T> {
    this.assertOpen();
    return this.commits.run(work, committed);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Graceful shutdown finishes what was handed over: the waiting ingests commit first.
    this.commits.flush();
    this.closed = true;
    this.compactor?.close();
    this.spaces.clear();
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
