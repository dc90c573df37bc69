/**
 * PostgreSQL server storage on `pg`: for several sync servers sharing one database (scale-out).
 *
 * Invariants (beyond those of storage.ts):
 * 1. One ingest is one transaction, committed (with `synchronous_commit=on`, forced per
 *    connection) before its promise resolves: the session acks only events that survive a crash.
 * 2. Positions stay dense and unique per space across servers: an ingest first locks the space's
 *    row (`SELECT ... FOR UPDATE`), so ingests of one space are serialized in the database, and
 *    it reads and advances `head` under that lock. Spaces do not block each other.
 * 3. Ids are unique per space by a unique constraint on (space, id); under the lock an ingest
 *    skips the ids the space already holds (and repeats within its batch), so a resent event is
 *    stored once however late it comes; the constraint is the backstop.
 * 4. An event is stored as TEXT holding its JSON (not jsonb): the exact stored form a session
 *    sends on, key order and `__proto__` keys included, is read back byte for byte; nothing
 *    queries inside it. Reads order by position.
 * 5. `onAppend` hears every append of the space: this instance's own right after commit, other
 *    instances' through LISTEN/NOTIFY (postgres-schema.ts). Listeners are called only with a head
 *    above the last one announced, so an append is never announced twice (a notification of
 *    one's own append is ignored anyway).
 * 6. The records this instance wrote last are kept parsed (`recent`), contiguous, and serve a
 *    read only when they still end at the space's head in the database.
 * 7. Claims of replica ownership take the same space lock as ingests, so two servers cannot give
 *    one replica to two subjects; a refused batch rolls back and claims nothing.
 * 8. The pool is bounded (`poolSize`); close() ends it and the LISTEN connection.
 * 9. Every string column holds the JSON encoding of its value (`key()`): PostgreSQL TEXT cannot
 *    hold U+0000 (which the server's peer keys contain) and would turn a lone surrogate into
 *    U+FFFD, making distinct ids collide; JSON.stringify escapes both, one-to-one.
 */
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import pg from 'pg';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS, decodeHlc } from '../core/hlc.ts';
import { ReplicaId } from '../core/ids.ts';
import type { SyncIngestResult } from '../sync/log.ts';
import type { Checkpoint } from '../sync/protocol.ts';
import {
  AppendListener,
  type AppendNotice,
  channelOf,
  createSchema,
  isValidSchemaName,
} from './postgres-schema.ts';
import {
  type EventOrigin,
  isValidSpaceName,
  type OriginCheck,
  type ServerStorage,
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
}

/** The stored form of a string (invariant 9). */
function key(value: string): string {
  return JSON.stringify(value);
}

function unkey(stored: string): string {
  return JSON.parse(stored) as string;
}

function storageError(operation: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError('STORAGE', `postgres ${operation} failed: ${message}`, { operation });
}

/** Parsed records kept per space for live tailing (invariant 6). */
const RECENT_RECORDS = 2048;

class PostgresSpaceLog implements SpaceLog {
  private readonly listeners = new Set<(headPos: number) => void>();
  private recent: LocalRecord[] = [];
  /** The highest head announced to listeners (invariant 5). */
  private announced = 0;
  private readonly s: string;
  /** The space's name as stored (invariant 9). */
  private readonly k: string;

  constructor(
    private readonly storage: PostgresServerStorage,
    readonly space: string,
    readonly replicaId: string,
    private readonly epochId: string,
    head: number,
  ) {
    this.s = storage.schema;
    this.k = key(space);
    this.announced = head;
  }

  async epoch(): Promise<string> {
    return this.epochId;
  }

  async headPos(): Promise<number> {
    return this.storage.run('headPos', (c) => this.readHead(c));
  }

  /** The server never authors events: it holds none of its own. */
  async ownSeq(): Promise<number> {
    return 0;
  }

  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    const max = Math.max(0, Math.floor(limit));
    return this.storage.run('readByPos', async (c) => {
      const head = await this.readHead(c);
      if (afterPos >= head || max === 0) return [];
      const first = this.recent[0];
      const last = this.recent[this.recent.length - 1];
      if (first !== undefined && last?.pos === head && afterPos >= first.pos - 1) {
        const start = afterPos - (first.pos - 1);
        return this.recent.slice(start, start + max);
      }
      const rows = await c.query<{ pos: string; body: string }>(
        `SELECT pos, body FROM ${this.s}.events WHERE space = $1 AND pos > $2 ORDER BY pos LIMIT $3`,
        [this.k, afterPos, max],
      );
      return rows.rows.map((row) => ({
        pos: Number(row.pos),
        event: JSON.parse(row.body) as StoredEventRecord,
      }));
    });
  }

  async idAtPos(pos: number): Promise<string | undefined> {
    return this.storage.run('idAtPos', async (c) => {
      const rows = await c.query<{ id: string }>(
        `SELECT id FROM ${this.s}.events WHERE space = $1 AND pos = $2`,
        [this.k, pos],
      );
      const row = rows.rows[0];
      return row === undefined ? undefined : unkey(row.id);
    });
  }

  async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    const written = await this.storage.transaction('ingest', async (c) => {
      // invariant 2: the row lock serializes every ingest of this space, on every server.
      let head = await this.lockHead(c);
      const held = await this.heldIds(
        c,
        events.map((e) => e.id),
      );
      const out: LocalRecord[] = [];
      for (const event of events) {
        if (held.has(event.id)) continue;
        held.add(event.id); // a batch that holds one id twice stores it once (invariant 3)
        head += 1;
        out.push({ event, pos: head });
      }
      if (out.length === 0) return out;
      await c.query(
        `INSERT INTO ${this.s}.events (space, pos, id, replica, seq, stream, cursor, body)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[])`,
        [
          this.k,
          out.map((r) => r.pos),
          out.map((r) => key(r.event.id)),
          out.map((r) => key(r.event.replica)),
          out.map((r) => r.event.seq),
          out.map((r) => key(r.event.stream)),
          out.map((r) => key(r.event.cursor)),
          out.map((r) => JSON.stringify(r.event)),
        ],
      );
      await c.query(`UPDATE ${this.s}.spaces SET head = $2 WHERE space = $1`, [this.k, head]);
      // Sent on commit only (postgres-schema.ts invariant 3).
      await c.query('SELECT pg_notify($1, $2)', [
        channelOf(this.s),
        JSON.stringify({ space: this.space, head, from: this.storage.instanceId }),
      ]);
      return out;
    });
    const limit = this.storage.now() + this.storage.maxClockDriftMs;
    const skewed = events.some((e) => decodeHlc(e.hlc).wall > limit);
    if (written.length > 0) {
      this.remember(written);
      this.announce(written[written.length - 1]!.pos);
    }
    return { written, skewed };
  }

  async getCheckpoint(peer: string): Promise<Checkpoint | undefined> {
    return this.storage.run('getCheckpoint', async (c) => {
      const rows = await c.query<{ checkpoint: string }>(
        `SELECT checkpoint FROM ${this.s}.checkpoints WHERE space = $1 AND peer = $2`,
        [this.k, key(peer)],
      );
      const row = rows.rows[0];
      return row === undefined ? undefined : (JSON.parse(row.checkpoint) as Checkpoint);
    });
  }

  async setCheckpoint(peer: string, checkpoint: Checkpoint): Promise<void> {
    await this.storage.run('setCheckpoint', async (c) => {
      await c.query(
        `INSERT INTO ${this.s}.checkpoints (space, peer, checkpoint) VALUES ($1, $2, $3)
         ON CONFLICT (space, peer) DO UPDATE SET checkpoint = excluded.checkpoint`,
        [this.k, key(peer), JSON.stringify(checkpoint)],
      );
    });
  }

  onAppend(listener: (headPos: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells the listeners of a head above the last one announced (invariant 5). */
  announce(head: number): void {
    if (head <= this.announced) return;
    this.announced = head;
    for (const listener of [...this.listeners]) {
      try {
        listener(head);
      } catch {
        // A failing listener (one connection) must not fail the ingest of another.
      }
    }
  }

  async claimOrigins(sub: string, events: readonly EventOrigin[]): Promise<OriginCheck> {
    return this.storage.transaction('claimOrigins', async (c): Promise<OriginCheck> => {
      await this.lockHead(c); // invariant 7
      const held = await this.heldIds(
        c,
        events.map((e) => e.id),
      );
      const fresh = events.filter((e) => !held.has(e.id));
      const replicas = [...new Set(fresh.map((e) => e.replica))];
      const rows = await c.query<{ replica: string; sub: string }>(
        `SELECT replica, sub FROM ${this.s}.owners WHERE space = $1 AND replica = ANY($2::text[])`,
        [this.k, replicas.map(key)],
      );
      const owners = new Map(rows.rows.map((r) => [unkey(r.replica), unkey(r.sub)]));
      const claimed: string[] = [];
      for (const event of fresh) {
        // The space's own replica: nobody may write as the server.
        const owner = event.replica === this.replicaId ? '' : owners.get(event.replica);
        if (owner === undefined) {
          owners.set(event.replica, sub);
          claimed.push(event.replica);
        } else if (owner !== sub) {
          // Nothing was inserted yet: returning here claims nothing.
          return { ok: false, eventId: event.id, replica: event.replica };
        }
      }
      if (claimed.length > 0) {
        await c.query(
          `INSERT INTO ${this.s}.owners (space, replica, sub) SELECT $1, r, $3 FROM unnest($2::text[]) AS r`,
          [this.k, claimed.map(key), key(sub)],
        );
      }
      return { ok: true };
    });
  }

  async ownerOf(replica: string): Promise<string | undefined> {
    return this.storage.run('ownerOf', async (c) => {
      const rows = await c.query<{ sub: string }>(
        `SELECT sub FROM ${this.s}.owners WHERE space = $1 AND replica = $2`,
        [this.k, key(replica)],
      );
      const row = rows.rows[0];
      return row === undefined ? undefined : unkey(row.sub);
    });
  }

  private async readHead(c: PoolClient): Promise<number> {
    const rows = await c.query<{ head: string }>(
      `SELECT head FROM ${this.s}.spaces WHERE space = $1`,
      [this.k],
    );
    return Number(rows.rows[0]?.head ?? 0);
  }

  private async lockHead(c: PoolClient): Promise<number> {
    const rows = await c.query<{ head: string }>(
      `SELECT head FROM ${this.s}.spaces WHERE space = $1 FOR UPDATE`,
      [this.k],
    );
    const row = rows.rows[0];
    if (row === undefined) throw new StorageError('STORAGE', `space ${this.space} vanished`);
    return Number(row.head);
  }

  private async heldIds(c: PoolClient, ids: string[]): Promise<Set<string>> {
    const rows = await c.query<{ id: string }>(
      `SELECT id FROM ${this.s}.events WHERE space = $1 AND id = ANY($2::text[])`,
      [this.k, ids.map(key)],
    );
    return new Set(rows.rows.map((r) => unkey(r.id)));
  }

  /** Keeps the last RECENT_RECORDS written records, contiguous (invariant 6). */
  private remember(written: LocalRecord[]): void {
    const last = this.recent[this.recent.length - 1];
    if (last === undefined || written[0]!.pos !== last.pos + 1) this.recent = [];
    for (const record of written) this.recent.push(record);
    if (this.recent.length > RECENT_RECORDS) {
      this.recent = this.recent.slice(this.recent.length - RECENT_RECORDS);
    }
  }
}

class PostgresServerStorage implements ServerStorage {
  readonly name: string;
  readonly schema: string;
  readonly now: () => number;
  readonly maxClockDriftMs: number;
  /** Tells this instance's notifications from other servers' (invariant 5). */
  readonly instanceId = randomUUID();
  private readonly pool: pg.Pool;
  private readonly listener: AppendListener;
  private readonly spaces = new Map<string, Promise<PostgresSpaceLog>>();
  private readonly open = new Map<string, PostgresSpaceLog>();
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(connectionString: string, options: PostgresStorageOptions) {
    this.schema = options.schema ?? 'chronicle';
    if (!isValidSchemaName(this.schema)) {
      throw new StorageError('STORAGE', `invalid schema name ${JSON.stringify(this.schema)}`);
    }
    this.name = `postgres:${redact(connectionString)}/${this.schema}`;
    this.now = options.now ?? Date.now;
    this.maxClockDriftMs = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
    // invariant 1: a database or role default of synchronous_commit=off would ack before the
    // WAL is flushed; the connection option overrides it.
    const config = { connectionString, options: '-c synchronous_commit=on' };
    this.pool = new pg.Pool({ ...config, max: options.poolSize ?? 10 });
    // An idle pooled connection that dies emits here; the next query reports the failure.
    this.pool.on('error', () => {});
    this.listener = new AppendListener(
      config,
      channelOf(this.schema),
      (notice) => this.heard(notice),
      () => void this.catchUp(),
    );
  }

  assertOpen(): void {
    if (this.closed) throw new StorageError('STORAGE', `${this.name} is closed`);
  }

  /** Creates the schema and starts listening, once, on first use. */
  private async ensureReady(): Promise<void> {
    this.ready ??= (async () => {
      const client = await this.pool.connect();
      try {
        await createSchema(client, this.schema);
      } finally {
        client.release();
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
    try {
      return await fn(client);
    } catch (error) {
      throw storageError(operation, error);
    } finally {
      client.release();
    }
  }

  /** Runs `fn` inside BEGIN ... COMMIT; resolves only after the commit (invariant 1). */
  async transaction<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.run(operation, async (c) => {
      await c.query('BEGIN');
      try {
        const result = await fn(c);
        await c.query('COMMIT');
        return result;
      } catch (error) {
        await c.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async openSpace(space: string): Promise<SpaceLog> {
    this.assertOpen();
    if (!isValidSpaceName(space)) {
      throw new StorageError(
        'STORAGE',
        'a space name must be a non-empty string of at most 128 characters',
      );
    }
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
    return log;
  }

  private heard(notice: AppendNotice): void {
    if (notice.from === this.instanceId) return;
    this.open.get(notice.space)?.announce(notice.head);
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

  async close(): Promise<void> {
    if (this.closed) return;
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
