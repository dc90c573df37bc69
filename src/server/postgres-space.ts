/**
 * One space's log on PostgreSQL: the SpaceLog half of postgresStorage (postgres.ts). The
 * invariant numbers in comments refer to the header of postgres.ts (5, 6, 7 and 9 are kept here;
 * ingests are written by the storage's group commit, postgres-ingest.ts), and go on here:
 *
 * 11. Fan-out costs the database per append, not per connection. Every connection tailing the
 *    space reads the same records after an append, and saves a checkpoint for the run of them it
 *    hears back: reads of one (afterPos, limit) started after the same announced head share one
 *    database read (one that began after head H was announced sees at least H; a reader that
 *    knows of a later head from elsewhere hears it announced too, and reads again then); and
 *    checkpoints handed over while one write is out go together in the next, one statement for
 *    all peers (the newest per peer), each resolving only once written. Lookups of a replica's
 *    key are shared the same way (a key is bound before the replica's events are ingested).
 */
import type { PoolClient } from 'pg';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import type { SyncIngestResult } from '../sync/log.ts';
import type { Checkpoint } from '../sync/protocol.ts';
import type { ArchiveReader, BlockDecoder } from './archive-files.ts';
import { DecodedBlocks, readAfter, sealedAt, sealedCandidates } from './postgres-blocks.ts';
import { readByCursor } from './postgres-history.ts';
import type { IngestPiece } from './postgres-ingest.ts';
import { eventOfRow, eventRow, key, storageError, unkey } from './postgres-rows.ts';
import { type RecentBudget, RecentRecords } from './recent-records.ts';
import {
  decideClaims,
  doubtfulEvents,
  type EventOrigin,
  type IngestWritten,
  isSkewed,
  notifyListeners,
  type OriginCheck,
  type SpaceLog,
  sameCopies,
} from './storage.ts';

/** What a space log needs from its storage (PostgresServerStorage). */
export interface PostgresDatabase {
  readonly schema: string;
  /** Tells this instance's notifications from other servers' (invariant 5). */
  readonly instanceId: string;
  readonly now: () => number;
  readonly maxClockDriftMs: number;
  /** Bounds the recent records of every space together (invariant 6). */
  readonly recentBudget: RecentBudget;
  /** Reads block bodies and archive stubs alike (archive-files.ts). */
  readonly archiveReader: ArchiveReader;
  /** Runs `fn` on a pooled connection, with errors as StorageErrors. */
  run<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T>;
  /** Runs `fn` inside BEGIN ... COMMIT; resolves only after the commit (invariant 1). */
  transaction<T>(operation: string, fn: (client: PoolClient) => Promise<T>): Promise<T>;
  /**
   * Writes an ingest in the next group commit (invariant 10); `committed` runs right after the
   * group's COMMIT, before any other code.
   */
  ingest(piece: IngestPiece, committed: (result: IngestWritten) => void): Promise<IngestWritten>;
}

interface QueuedCheckpoint {
  checkpoint: Checkpoint;
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
}

export class PostgresSpaceLog implements SpaceLog {
  private readonly listeners = new Set<(headPos: number) => void>();
  /** Invariant 6: what this process wrote last, parsed. */
  private readonly recent: RecentRecords;
  /** The highest head announced to listeners (invariant 5). */
  private announced = 0;
  /** Invariant 11: reads in flight, by what they read and the head announced when they began. */
  private readonly reads = new Map<string, Promise<unknown>>();
  /** Invariant 11: checkpoints for the next write, by peer, and the write out now. */
  private checkpointQueue = new Map<string, QueuedCheckpoint>();
  private checkpointWrite: Promise<void> | undefined;
  /**
   * Positions above this were rows when last looked at: a read from there tries the rows alone
   * first (readFresh). Raised when a read finds blocks further up; 0 at first, so a first read
   * from a sealed position costs one rows statement more.
   */
  private sealedBelow = 0;
  /** The blocks read last, for the next page of a catch-up (postgres-blocks.ts). */
  private readonly decoded = new DecodedBlocks();
  private readonly decode: BlockDecoder = (bytes) => this.storage.archiveReader.decode(bytes);
  private readonly s: string;
  /** The space's name as stored (invariant 9). */
  private readonly k: string;

  private readonly storage: PostgresDatabase;
  readonly space: string;
  readonly replicaId: string;
  private readonly epochId: string;

  constructor(
    storage: PostgresDatabase,
    space: string,
    replicaId: string,
    epochId: string,
    head: number,
  ) {
    this.storage = storage;
    this.space = space;
    this.replicaId = replicaId;
    this.epochId = epochId;
    this.s = storage.schema;
    this.recent = new RecentRecords(storage.recentBudget);
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

  readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    const max = Math.max(0, Math.floor(limit));
    return this.shared(`read:${afterPos}:${max}`, () => this.readFresh(afterPos, max));
  }

  /**
   * Invariant 11: `read`'s answer, shared by the callers that ask under `key` while it is out and
   * no later head was announced meanwhile.
   */
  private shared<T>(key: string, read: () => Promise<T>): Promise<T> {
    const k = `${key}:${this.announced}`;
    const out = this.reads.get(k) as Promise<T> | undefined;
    if (out !== undefined) return out;
    const fresh = read();
    this.reads.set(k, fresh);
    const done = () => {
      if (this.reads.get(k) === fresh) this.reads.delete(k);
    };
    fresh.then(done, done);
    return fresh;
  }

  private readFresh(afterPos: number, max: number): Promise<LocalRecord[]> {
    return this.storage.run('readByPos', async (c) => {
      const head = await this.readHead(c);
      if (afterPos >= head || max === 0) return [];
      const cached = this.recent.slice(head, afterPos, max);
      if (cached !== undefined) return cached;
      // Past what may be sealed: the rows alone, as before blocks, when the next position is
      // a row. Blocks lie below every row (postgres-blocks.ts 12), so then none holds a later
      // position, in the snapshot of that one statement.
      if (afterPos >= this.sealedBelow) {
        const rows = await c.query<{ pos: string; body: string }>(
          `SELECT pos, body FROM ${this.s}.events WHERE space = $1 AND pos > $2
           ORDER BY pos LIMIT $3`,
          [this.k, afterPos, max],
        );
        const first = rows.rows[0];
        if (first !== undefined && Number(first.pos) === afterPos + 1) {
          return rows.rows.map((row) => ({ pos: Number(row.pos), event: eventOfRow(row) }));
        }
        // The compactor sealed past what was known (or afterPos + 1 is a hole): blocks too.
        this.sealedBelow = first === undefined ? head : Number(first.pos) - 1;
      }
      // Blocks, then rows (postgres-blocks.ts 12): each statement reads one snapshot, and a
      // page that ends in the blocks goes on from where it ended.
      let out: LocalRecord[] = [];
      let after = afterPos;
      while (out.length < max) {
        const { records, complete } = await readAfter(
          c,
          this.s,
          this.k,
          after,
          max - out.length,
          this.decode,
          this.decoded,
        );
        out = out.length === 0 ? records : out.concat(records);
        if (complete || records.length === 0) break;
        after = records[records.length - 1]!.pos;
      }
      return out;
    });
  }

  /** History by cursor (storage.ts; postgres-history.ts). */
  readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    return this.storage.run('readByCursor', (c) =>
      readByCursor(c, this.s, this.k, query, this.decode),
    );
  }

  async idAtPos(pos: number): Promise<string | undefined> {
    return this.storage.run('idAtPos', async (c) => {
      const rows = await c.query<{ id: string }>(
        `SELECT id FROM ${this.s}.events WHERE space = $1 AND pos = $2`,
        [this.k, pos],
      );
      const row = rows.rows[0];
      if (row !== undefined) return unkey(row.id);
      // Rows first, then blocks: moves go that way only (postgres-blocks.ts 14).
      return (await sealedAt(c, this.s, this.k, pos, this.decode))?.event.id;
    });
  }

  async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    // The rows are made here, on the caller's turn, not on the group's path; an event that
    // cannot be made into one fails its own ingest only.
    let piece: IngestPiece;
    try {
      piece = { space: this.k, name: this.space, rows: events.map(eventRow) };
    } catch (error) {
      throw storageError('ingest', error);
    }
    const { written, lost, rejected } = await this.storage
      .ingest(piece, ({ written: records, removed }) => {
        // Right after the commit, before any reader runs: the cache ends at the new head, and
        // holds no record that left the log (a hole restarts it: recent-records.ts).
        if (removed.length > 0) this.recent.trimTo(0, 0);
        if (records.length === 0) return;
        this.recent.add(records);
        this.announce(records[records.length - 1]!.pos);
      })
      .catch((error: unknown) => {
        // A COMMIT that failed in flight may still have committed, and this instance ignores
        // its own notification: read the head again so that listeners hear of it all the same.
        this.headPos().then(
          (head) => this.announce(head),
          () => {},
        );
        throw error;
      });
    const skewed = isSkewed(events, this.storage.now() + this.storage.maxClockDriftMs);
    return rejected === undefined ? { written, skewed, lost } : { written, skewed, lost, rejected };
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

  setCheckpoint(peer: string, checkpoint: Checkpoint): Promise<void> {
    return new Promise((resolve, reject) => {
      const queued = this.checkpointQueue.get(peer);
      if (queued === undefined) {
        this.checkpointQueue.set(peer, { checkpoint, waiters: [{ resolve, reject }] });
      } else {
        queued.checkpoint = checkpoint;
        queued.waiters.push({ resolve, reject });
      }
      this.writeCheckpoints();
    });
  }

  /** Writes the queued checkpoints in one statement, unless a write is out (invariant 11). */
  private writeCheckpoints(): void {
    if (this.checkpointWrite !== undefined || this.checkpointQueue.size === 0) return;
    const batch = [...this.checkpointQueue];
    this.checkpointQueue = new Map();
    const waiters = batch.flatMap(([, q]) => q.waiters);
    this.checkpointWrite = this.storage
      .run('setCheckpoint', (c) =>
        c.query(
          `INSERT INTO ${this.s}.checkpoints (space, peer, checkpoint)
           SELECT $1, p, cp FROM unnest($2::text[], $3::text[]) AS t(p, cp)
           ON CONFLICT (space, peer) DO UPDATE SET checkpoint = excluded.checkpoint`,
          [
            this.k,
            batch.map(([peer]) => key(peer)),
            batch.map(([, q]) => JSON.stringify(q.checkpoint)),
          ],
        ),
      )
      .then(
        () => {
          for (const w of waiters) w.resolve();
        },
        (error: unknown) => {
          for (const w of waiters) w.reject(error);
        },
      )
      .finally(() => {
        this.checkpointWrite = undefined;
        this.writeCheckpoints();
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
    notifyListeners(this.listeners, head);
  }

  async claimOrigins(sub: string, events: readonly EventOrigin[]): Promise<OriginCheck> {
    return this.storage.transaction('claimOrigins', async (c): Promise<OriginCheck> => {
      await this.lockHead(c); // invariant 7
      const replicas = [...new Set(events.map((e) => e.replica))];
      const rows = await c.query<{ replica: string; sub: string }>(
        `SELECT replica, sub FROM ${this.s}.owners WHERE space = $1 AND replica = ANY($2::text[])`,
        [this.k, replicas.map(key)],
      );
      // null: the space's own replica, which nobody may write as.
      const owners = new Map<string, string | null>(
        rows.rows.map((r) => [unkey(r.replica), unkey(r.sub)]),
      );
      if (replicas.includes(this.replicaId)) owners.set(this.replicaId, null);
      const doubtful = doubtfulEvents(sub, events, owners);
      if (doubtful.length === 0) return { ok: true };
      const held = await this.heldCursors(
        c,
        doubtful.map((e) => e.id),
      );
      const decision = decideClaims(sub, doubtful, owners, sameCopies(doubtful, held));
      // Decided before any insert: returning here claims nothing.
      if (!decision.ok) return decision;
      if (decision.claimed.length > 0) {
        await c.query(
          `INSERT INTO ${this.s}.owners (space, replica, sub) SELECT $1, r, $3 FROM unnest($2::text[]) AS r`,
          [this.k, decision.claimed.map(key), key(sub)],
        );
      }
      return { ok: true };
    });
  }

  async eventAtSlot(replica: string, seq: number): Promise<StoredEventRecord | undefined> {
    return this.storage.run('eventAtSlot', async (c) => {
      const rows = await c.query<{ body: string }>(
        `SELECT body FROM ${this.s}.events WHERE space = $1 AND replica = $2 AND seq = $3`,
        [this.k, key(replica), seq],
      );
      const row = rows.rows[0];
      if (row !== undefined) return eventOfRow(row);
      // Rows first, then blocks (postgres-blocks.ts 14).
      const sealed = await sealedCandidates(
        c,
        this.s,
        this.k,
        {
          ids: [],
          slots: [{ replica, seq }],
        },
        this.decode,
      );
      return sealed.find((r) => r.event.replica === replica && r.event.seq === seq)?.event;
    });
  }

  replicaKey(replica: string): Promise<string | undefined> {
    // Every connection sending a replica's events looks its key up (session-sender.ts 12); a
    // key is bound before its replica's events are ingested, so before they are announced.
    return this.shared(`key:${replica}`, () =>
      this.storage.run('replicaKey', async (c) => {
        const rows = await c.query<{ key: string }>(
          `SELECT key FROM ${this.s}.replica_keys WHERE space = $1 AND replica = $2`,
          [this.k, key(replica)],
        );
        const row = rows.rows[0];
        return row === undefined ? undefined : unkey(row.key);
      }),
    );
  }

  async bindReplicaKeys(sub: string, keys: ReadonlyMap<string, string>): Promise<void> {
    if (keys.size === 0) return;
    await this.storage.run('bindReplicaKeys', (c) =>
      c.query(
        `INSERT INTO ${this.s}.replica_keys (space, replica, key, sub)
         SELECT $1, r, k, $4 FROM unnest($2::text[], $3::text[]) AS t(r, k)
         ON CONFLICT (space, replica) DO NOTHING`,
        [this.k, [...keys.keys()].map(key), [...keys.values()].map(key), key(sub)],
      ),
    );
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

  async rejectionsOf(replica: string, afterSeq: number): Promise<StrictRejection[]> {
    return this.storage.run('rejectionsOf', async (c) => {
      const rows = await c.query<{ body: string }>(
        `SELECT body FROM ${this.s}.strict_rejections
         WHERE space = $1 AND replica = $2 AND seq > $3 ORDER BY seq LIMIT 10000`,
        [this.k, key(replica), afterSeq],
      );
      return rows.rows.map((row) => JSON.parse(row.body) as StrictRejection);
    });
  }

  async forgetRejections(replica: string, uptoSeq: number): Promise<void> {
    await this.storage.run('forgetRejections', (c) =>
      c.query(
        `DELETE FROM ${this.s}.strict_rejections WHERE space = $1 AND replica = $2 AND seq <= $3`,
        [this.k, key(replica), uptoSeq],
      ),
    );
  }

  private async readHead(c: PoolClient): Promise<number> {
    const rows = await c.query<{ head: string }>(
      `SELECT head FROM ${this.s}.spaces WHERE space = $1`,
      [this.k],
    );
    return Number(rows.rows[0]?.head ?? 0);
  }

  private async lockHead(c: PoolClient): Promise<void> {
    const rows = await c.query<{ head: string }>(
      `SELECT head FROM ${this.s}.spaces WHERE space = $1 FOR UPDATE`,
      [this.k],
    );
    const row = rows.rows[0];
    if (row === undefined) throw new StorageError('STORAGE', `space ${this.space} vanished`);
  }

  /** The cursor of the held copy of each of `ids` the space holds, by id. */
  private async heldCursors(c: PoolClient, ids: string[]): Promise<Map<string, string>> {
    // One index probe per id, as storedIds does (a plain `id = ANY` may become a table scan).
    const rows = await c.query<{ id: string; cursor: string }>(
      `SELECT e.id, e.cursor FROM unnest($2::text[]) AS k(id)
       CROSS JOIN LATERAL (
         SELECT id, cursor FROM ${this.s}.events WHERE space = $1 AND id = k.id OFFSET 0
       ) AS e`,
      [this.k, ids.map(key)],
    );
    const held = new Map(rows.rows.map((r) => [unkey(r.id), unkey(r.cursor)]));
    // Rows first, then blocks (postgres-blocks.ts 14): a client sends back old events too.
    const missing = ids.filter((id) => !held.has(id));
    if (missing.length === 0) return held;
    const wanted = new Set(missing);
    const sealed = await sealedCandidates(
      c,
      this.s,
      this.k,
      {
        ids: missing.map((id) => ({ id })),
        slots: [],
      },
      this.decode,
    );
    for (const { event } of sealed) {
      if (wanted.has(event.id)) held.set(event.id, event.cursor);
    }
    return held;
  }
}
