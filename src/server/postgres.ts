/**
 * PostgreSQL server storage on `pg`: for several sync servers sharing one database (scale-out).
 *
 * Invariants (beyond those of storage.ts):
 * 1. An ingest is committed (with `synchronous_commit=on`, forced per connection) before its
 *    promise resolves: the session acks only events that survive a crash. It is atomic: it is
 *    written whole or, rolled back to its savepoint, not at all (invariant 10).
 * 2. Positions stay unique and increasing per space across servers (dense but for the holes of
 *    copies that lost, storage.ts invariant 3): a transaction that ingests first
 *    locks its spaces' rows (`SELECT ... FOR UPDATE`, in key order), so ingests of one space are
 *    serialized in the database, and it reads and advances `head` under that lock. Spaces do not
 *    block each other, except those written by one group.
 * 3. Ids are unique per space by a unique constraint on (space, id); under the lock an ingest
 *    looks up the copies the space holds of its ids and (replica, seq) and skips the ids held
 *    with the same copy (and repeats within its batch or its group), so a resent event is stored
 *    once however late it comes; the constraint is the backstop. Colliding copies are resolved
 *    by core/copies.ts (postgres-ingest.ts): a held loser is deleted, a reused (replica, seq)
 *    that does not win refuses its ingest with SEQ_CONFLICT.
 * 4. An event is stored as TEXT holding its JSON (not jsonb): the exact stored form a session
 *    sends on, key order and `__proto__` keys included, is read back byte for byte; nothing
 *    queries inside it. Reads order by position. The JSON text of its data, made when it is
 *    written, is kept for forwarding it (postgres-rows.ts).
 * 5. `onAppend` hears every append of the space: this instance's own right after commit, other
 *    instances' through LISTEN/NOTIFY (postgres-schema.ts). Listeners are called only with a head
 *    above the last one announced, so an append is never announced twice (a notification of
 *    one's own append is ignored anyway).
 * 6. The records this instance wrote last are kept parsed (`recent`), contiguous, and serve a
 *    read only when they still end at the space's head in the database; one budget of bytes
 *    bounds them for all spaces together (recent-records.ts).
 * 7. Claims of replica ownership take the same space lock as ingests, so two servers cannot give
 *    one replica to two subjects; a refused batch rolls back and claims nothing.
 * 8. The pool is bounded (`poolSize`); close() ends it and the LISTEN connection.
 * 9. Every string column holds the JSON encoding of its value (`key()`): PostgreSQL TEXT cannot
 *    hold U+0000 (which the server's peer keys contain) and would turn a lone surrogate into
 *    U+FFFD, making distinct ids collide; JSON.stringify escapes both, one-to-one.
 * 10. Group commit: ingests handed over while a group commits, or in one turn of the event loop
 *    (batches from many connections, of any spaces), are written by ONE transaction, so one
 *    commit (one WAL flush) covers them all (postgres-group-commit.ts, postgres-ingest.ts); one
 *    failing rolls back only itself, and none resolves before the group's commit. close() lets
 *    the ingests handed over before it commit.
 *
 * Compaction (issue 18, on unless `compaction: false`): positions older than a hot tail move from
 * rows into deflated blocks, in the background when the group commit is idle, one block per
 * transaction, one server per space at a time (postgres-compactor.ts); every read, dedupe and
 * copy lookup finds a sealed event as it finds a row (postgres-blocks.ts, invariants 12–14).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type pg from 'pg';
import type { PoolClient } from 'pg';
import { StorageError } from '../core/errors.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS } from '../core/hlc.ts';
import { ReplicaId } from '../core/ids.ts';
import { type ArchiveCheck, ArchiveReader } from './archive-files.ts';
import type { PostgresCompactionOptions } from './compaction-options.ts';
import { loadPg } from './peers.ts';
import { archivePostgres, checkPostgresArchive } from './postgres-archive.ts';
import { PostgresCompactor } from './postgres-compactor.ts';
import { AsyncGroupCommit } from './postgres-group-commit.ts';
import { type IngestPiece, writeGroup } from './postgres-ingest.ts';
import * as publishing from './postgres-publish.ts';
import { key, storageError } from './postgres-rows.ts';
import {
  AppendListener,
  type AppendNotice,
  channelOf,
  createSchema,
  inTransaction,
  isValidSchemaName,
} from './postgres-schema.ts';
import { postgresSnapshots } from './postgres-snapshots.ts';
import { type PostgresDatabase, PostgresSpaceLog } from './postgres-space.ts';
import { RecentBudget } from './recent-records.ts';
import {
  type ArchiveOptions,
  type ArchiveReport,
  assertSpaceName,
  type CompactionReport,
  type IngestWritten,
  type PublisherLock,
  type ServerStorage,
  type SnapshotStore,
  type SpaceHead,
  type SpaceLog,
} from './storage.ts';

export interface PostgresStorageOptions {
  /** Most connections this storage opens at once, besides the LISTEN one (default 10). */
  poolSize?: number;
  /** The PostgreSQL schema holding the tables (default `chronicle`); created if missing. */
  schema?: string;
  /** Wall clock (ms), for skew reports; injectable for tests. */
  now?: () => number;
  /** An event HLC further than this ahead of the wall clock is reported as skewed. */
  maxClockDriftMs?: number;
  /**
   * Estimated bytes of recently written records kept parsed, shared by every space (invariant 6;
   * recent-records.ts). Default 128 MiB, as for sqliteStorage.
   */
  recentCacheBytes?: number;
  /**
   * The compactor (issue 18, postgres-compactor.ts): positions older than a hot tail move into
   * deflated blocks of up to BLOCK_EVENTS events, in the background. On by default; `false` turns
   * it off (events already sealed are still read) and leaves a layout 2 database at layout 2,
   * for a rolling upgrade (postgres-schema.ts).
   */
  compaction?: PostgresCompactionOptions | false;
  /**
   * Where archived blocks' files are (postgres-archive.ts; `chronicle-server archive --to`).
   * No default: without it, a read of an archived block fails with a coded StorageError.
   */
  archiveDir?: string;
}

/**
 * The most events one group writes (unless one ingest alone has more): its statements carry them
 * all (a few MB), and its spaces stay locked meanwhile. A batch is at most 2000 (maxBatchEvents).
 */
const MAX_GROUP_EVENTS = 10_000;

class PostgresServerStorage implements ServerStorage, PostgresDatabase {
  readonly name: string;
  readonly schema: string;
  readonly now: () => number;
  readonly maxClockDriftMs: number;
  readonly recentBudget: RecentBudget;
  /** Tells this instance's notifications from other servers' (invariant 5). */
  readonly instanceId = randomUUID();
  /** Reads block bodies and archive stubs alike (archive-files.ts). */
  readonly archiveReader: ArchiveReader;
  private readonly pool: pg.Pool;
  /** How every connection of this storage is opened (the pool's, the listener's, a lock's). */
  private readonly config: pg.ClientConfig;
  private readonly listener: AppendListener;
  private readonly spaces = new Map<string, Promise<PostgresSpaceLog>>();
  private readonly open = new Map<string, PostgresSpaceLog>();
  private ready: Promise<void> | undefined;
  /** Ingests commit in groups (invariant 10). */
  private readonly commits: AsyncGroupCommit<IngestPiece, IngestWritten>;
  private closed = false;
  /** close()'s shutdown, once begun: no new ingests, while those handed over still commit. */
  private shutting: Promise<void> | undefined;
  /** The spaces' snapshots (postgres-snapshots.ts). */
  readonly snapshots: SnapshotStore;
  /** Seals old events into blocks; undefined with `compaction: false`. */
  private readonly compactor: PostgresCompactor | undefined;

  constructor(connectionString: string, options: PostgresStorageOptions) {
    const { Pool } = loadPg();
    this.schema = options.schema ?? 'chronicle';
    if (!isValidSchemaName(this.schema)) {
      throw new StorageError('STORAGE', `invalid schema name ${JSON.stringify(this.schema)}`);
    }
    this.name = `postgres:${redact(connectionString)}/${this.schema}`;
    this.now = options.now ?? Date.now;
    this.maxClockDriftMs = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
    this.recentBudget = new RecentBudget(options.recentCacheBytes);
    this.archiveReader = new ArchiveReader(
      options.archiveDir === undefined ? undefined : resolve(options.archiveDir),
    );
    // invariant 1: a database or role default of synchronous_commit=off would ack before the
    // WAL is flushed; the connection option overrides it.
    const config = {
      connectionString,
      options: '-c synchronous_commit=on',
      application_name: 'chronicle',
    };
    this.config = config;
    this.pool = new Pool({ ...config, max: options.poolSize ?? 10 });
    // An idle pooled connection that dies emits here; the next query reports the failure.
    this.pool.on('error', () => {});
    this.listener = new AppendListener(
      // TCP keepalive: a LISTEN connection is idle for long and must notice a silent network loss.
      { ...config, keepAlive: true },
      channelOf(this.schema),
      (notice) => this.heard(notice),
      () => void this.catchUp(),
    );
    this.commits = new AsyncGroupCommit({
      commit: (pieces) =>
        this.run('ingest', (c) =>
          writeGroup(
            c,
            {
              schema: this.schema,
              instanceId: this.instanceId,
              decode: (bytes) => this.archiveReader.decode(bytes),
            },
            pieces,
          ),
        ),
      weight: (piece) => piece.rows.length,
      maxWeight: MAX_GROUP_EVENTS,
    });
    this.snapshots = postgresSnapshots({
      schema: this.schema,
      run: async (operation, fn) => {
        await this.ensureReady();
        return this.run(operation, fn);
      },
      transaction: async (operation, fn) => {
        await this.ensureReady();
        return this.transaction(operation, fn);
      },
    });
    this.compactor =
      options.compaction === false
        ? undefined
        : new PostgresCompactor(
            {
              schema: this.schema,
              run: (operation, fn) => this.run(operation, fn),
              idle: () => this.commits.idle(),
              spaceKeys: () =>
                this.run('compact', async (c) => {
                  const rows = await c.query<{ space: string }>(
                    `SELECT space FROM ${this.schema}.spaces ORDER BY space`,
                  );
                  return rows.rows.map((r) => r.space);
                }),
            },
            options.compaction ?? {},
          );
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('STORAGE', `${this.name} is closed`);
  }

  /** Creates the schema and starts listening, once, on first use. */
  private async ensureReady(): Promise<void> {
    this.ready ??= (async () => {
      const client = await this.pool.connect();
      let broken = false;
      const lost = () => {
        broken = true;
      };
      client.on('error', lost);
      try {
        await createSchema(client, this.schema, this.compactor !== undefined);
      } finally {
        client.off('error', lost);
        client.release(broken);
      }
      await this.listener.start();
    })().catch((error: unknown) => {
      this.ready = undefined; // a later call tries again
      throw new StorageError(
        'STORAGE_UNAVAILABLE',
        `cannot open ${this.name}: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
    return this.ready;
  }

  /** Runs `fn` on a pooled connection, with errors as StorageErrors. */
  async run<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw storageError(operation, error);
    }
    let broken = false;
    // A connection lost between two queries emits `error` on the checked-out client (the pool
    // listens only while it is idle): unheard, that is an uncaught exception. The next query
    // fails on its own, as a StorageError below.
    const lost = () => {
      broken = true;
    };
    client.on('error', lost);
    try {
      return await fn(client);
    } catch (error) {
      // A query PostgreSQL refused leaves the connection usable; anything else (a lost
      // connection, a failed ROLLBACK) may not, and such a connection is not pooled again.
      broken ||= !(error instanceof loadPg().DatabaseError);
      throw storageError(operation, error);
    } finally {
      client.off('error', lost);
      client.release(broken);
    }
  }

  /** Runs `fn` inside BEGIN ... COMMIT; resolves only after the commit (invariant 1). */
  async transaction<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.run(operation, (c) => inTransaction(c, () => fn(c)));
  }

  /** Hands an ingest to the next group commit (invariant 10). */
  ingest(piece: IngestPiece, committed: (result: IngestWritten) => void): Promise<IngestWritten> {
    if (this.shutting !== undefined) {
      return Promise.reject(new StorageError('STORAGE', `${this.name} is closed`));
    }
    return this.commits.run(piece, (result) => {
      committed(result);
      const last = result.written[result.written.length - 1];
      if (last !== undefined) this.compactor?.touch(piece.space, last.pos);
    });
  }

  async compact(): Promise<CompactionReport> {
    this.assertOpen();
    await this.ensureReady();
    return this.compactor === undefined ? { blocks: 0, events: 0 } : this.compactor.compactAll();
  }

  /** Moves old blocks' bodies to files (postgres-archive.ts). */
  async archive(options: ArchiveOptions): Promise<ArchiveReport> {
    this.assertOpen();
    await this.ensureReady();
    const dir = this.archiveReader.dir;
    if (dir === undefined) throw new StorageError('STORAGE', `${this.name} has no archiveDir`);
    return this.run('archive', (c) => archivePostgres(c, this.schema, dir, options));
  }

  async checkArchive(): Promise<ArchiveCheck> {
    this.assertOpen();
    await this.ensureReady();
    const dir = this.archiveReader.dir ?? resolve('.');
    return this.run('checkArchive', (c) => checkPostgresArchive(c, this.schema, dir));
  }

  async openSpace(space: string): Promise<SpaceLog> {
    this.assertOpen();
    assertSpaceName(space);
    let opening = this.spaces.get(space);
    if (opening === undefined) {
      // One promise per space: concurrent opens share one log (storage.ts invariant 5).
      opening = this.openNew(space);
      this.spaces.set(space, opening);
      opening.catch(() => this.spaces.delete(space));
    }
    return opening;
  }

  private async openNew(space: string): Promise<PostgresSpaceLog> {
    await this.ensureReady();
    const row = await this.run('openSpace', async (c) => {
      // Insert if absent, then read: if another server created the space first, its ids win.
      await c.query(
        `INSERT INTO ${this.schema}.spaces (space, replica, epoch, head) VALUES ($1, $2, $3, 0)
         ON CONFLICT (space) DO NOTHING`,
        [key(space), ReplicaId.make(), ReplicaId.make()],
      );
      const rows = await c.query<{ replica: string; epoch: string; head: string }>(
        `SELECT replica, epoch, head FROM ${this.schema}.spaces WHERE space = $1`,
        [key(space)],
      );
      return rows.rows[0];
    });
    if (row === undefined) throw new StorageError('STORAGE', `space ${space} vanished`);
    const log = new PostgresSpaceLog(this, space, row.replica, row.epoch, Number(row.head));
    this.open.set(space, log);
    // A space written before this server started (or before its layout had blocks) is sealed
    // too, from its first open on.
    this.compactor?.touch(key(space), Number(row.head));
    return log;
  }

  async listSpaces(): Promise<SpaceHead[]> {
    await this.ensureReady();
    return this.run('listSpaces', (c) => publishing.listSpaces(c, this.schema));
  }

  async publishedPositions(publisher: string): Promise<Map<string, number>> {
    await this.ensureReady();
    return this.run('publishedPositions', (c) =>
      publishing.publishedPositions(c, this.schema, publisher),
    );
  }

  async setPublishedPos(publisher: string, space: string, pos: number): Promise<void> {
    await this.ensureReady();
    await this.run('setPublishedPos', (c) =>
      publishing.setPublishedPos(c, this.schema, publisher, space, pos),
    );
  }

  async lockPublisher(publisher: string): Promise<PublisherLock | undefined> {
    this.assertOpen();
    await this.ensureReady();
    try {
      return await publishing.lockPublisher(this.config, this.schema, publisher);
    } catch (error) {
      throw storageError('lockPublisher', error);
    }
  }

  private readonly otherAppends = new Set<(space: string, head: number) => void>();

  onOtherAppend(listener: (space: string, head: number) => void): () => void {
    this.otherAppends.add(listener);
    return () => this.otherAppends.delete(listener);
  }

  private heard(notice: AppendNotice): void {
    if (notice.from === this.instanceId) return;
    this.open.get(notice.space)?.announce(notice.head);
    for (const listener of [...this.otherAppends]) {
      try {
        listener(notice.space, notice.head);
      } catch {
        // One listener failing must not keep the others from hearing.
      }
    }
  }

  /** After the listener reconnected: announce what was appended while it was away. */
  private async catchUp(): Promise<void> {
    for (const log of this.open.values()) {
      try {
        log.announce(await log.headPos());
      } catch {
        // Closed or unreachable: the next notification or read will tell.
      }
    }
  }

  close(): Promise<void> {
    this.shutting ??= this.shutdown();
    return this.shutting;
  }

  private async shutdown(): Promise<void> {
    // Graceful shutdown: what was handed over commits first (invariant 10).
    await this.commits.flush();
    await this.compactor?.stop();
    this.closed = true;
    this.spaces.clear();
    this.open.clear();
    await this.listener.stop();
    await this.pool.end();
  }
}

/** The connection string without its password, for logs. */
function redact(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    if (url.password !== '') url.password = '***';
    return `${url.host}${url.pathname}`;
  } catch {
    return 'postgres';
  }
}

/**
 * Server storage on PostgreSQL, for several sync servers sharing one database. Tables live in
 * the schema `options.schema` (default `chronicle`), created on first use.
 *
 * @example
 * const server = await createSyncServer({ storage: postgresStorage(process.env.DATABASE_URL!), auth: { secret } });
 */
export function postgresStorage(
  connectionString: string,
  options: PostgresStorageOptions = {},
): ServerStorage {
  return new PostgresServerStorage(connectionString, options);
}
