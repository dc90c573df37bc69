/**
 * One space of the SQLite server storage (sqlite.ts, whose header's invariants these are): its
 * ingests, reads by position and by cursor, checkpoints, replica owners and strict rejections,
 * each a better-sqlite3 transaction on the storage's one database.
 */
import type Database from 'better-sqlite3';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import type { SyncIngestResult } from '../sync/log.ts';
import type { Checkpoint } from '../sync/protocol.ts';
import { type RecentBudget, RecentRecords } from './recent-records.ts';
import { type BlockStore, heldByIdAll } from './sqlite-blocks.ts';
import type { SqliteCompactor } from './sqlite-compactor.ts';
import { type HistoryRows, historyRows } from './sqlite-history.ts';
import { insertEvents, maySeal, type Where, type Written } from './sqlite-ingest.ts';
import { eventOfRow, storageError } from './sqlite-rows.ts';
import type { Statements } from './sqlite-schema.ts';
import {
  decideClaims,
  doubtfulEvents,
  type EventOrigin,
  isSkewed,
  notifyListeners,
  type OriginCheck,
  type SpaceLog,
  sameCopies,
} from './storage.ts';

/** What a space needs of the storage that opened it (sqlite.ts SqliteServerStorage). */
export interface SqliteSpaceHost {
  readonly now: () => number;
  readonly maxClockDriftMs: number;
  readonly recentBudget: RecentBudget;
  readonly slotsUnique: boolean;
  readonly blocks: BlockStore;
  readonly historyRows: HistoryRows;
  readonly compactor: SqliteCompactor | undefined;
  groupCommit<T>(work: () => T, committed: (result: T) => void): Promise<T>;
  rangeBlocks(): void;
  assertOpen(): void;
}

/** An id the space holds already (events_by_id), or one repeated within the batch. */
function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SqliteSpaceLog implements SpaceLog {
  private readonly listeners = new Set<(headPos: number) => void>();
  /** Invariant 6: what this process wrote last, parsed. */
  private readonly recent: RecentRecords;
  private readonly ingestTx: (events: StoredEventRecord[]) => Written;
  private readonly claimTx: (sub: string, events: readonly EventOrigin[]) => OriginCheck;
  private readonly readTx: (afterPos: number, limit: number) => LocalRecord[];
  private readonly historyTx: (query: CursorQuery) => LocalRecord[];
  private readonly where: Where;

  private readonly storage: SqliteSpaceHost;
  private readonly st: Statements;
  readonly space: string;
  readonly replicaId: string;
  private readonly epochId: string;

  constructor(
    storage: SqliteSpaceHost,
    db: Database.Database,
    st: Statements,
    space: string,
    sid: number,
    replicaId: string,
    epochId: string,
  ) {
    const where: Where = { db, st, blocks: storage.blocks, space, sid };
    this.where = where;
    this.storage = storage;
    this.st = st;
    this.space = space;
    this.replicaId = replicaId;
    this.epochId = epochId;
    this.recent = new RecentRecords(storage.recentBudget);
    // Invariant 8: written first without looking ids up; a held id fails the unique index, the
    // savepoint rolls back, and the batch is written again with the lookup.
    const insertTx = db.transaction((events: StoredEventRecord[], lookUp: boolean) =>
      insertEvents(where, events, lookUp),
    );
    this.ingestTx = db.transaction((events: StoredEventRecord[]) => {
      // A file whose slot index is not unique cannot catch a reused (replica, seq) by failing,
      // nor can the rows' indexes catch a sealed one.
      if (!storage.slotsUnique || maySeal(where, events)) return insertTx(events, true);
      try {
        return insertTx(events, false);
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        return insertTx(events, true);
      }
    });
    this.claimTx = db.transaction((sub: string, events: readonly EventOrigin[]): OriginCheck => {
      // The owner of each replica of the batch (null: the space's own, which nobody may write
      // as). A batch usually holds one or two replicas, all the sender's own.
      const owners = new Map<string, string | null | undefined>();
      for (const event of events) {
        if (owners.has(event.replica)) continue;
        const owner =
          event.replica === replicaId ? null : st.getOwner.get(space, event.replica)?.sub;
        owners.set(event.replica, owner);
      }
      const doubtful = doubtfulEvents(sub, events, owners);
      if (doubtful.length === 0) return { ok: true };
      const held = new Map<string, string>();
      for (const [id, r] of heldByIdAll(db, storage.blocks, space, sid, doubtful)) {
        held.set(id, r.event.cursor);
      }
      const decision = decideClaims(sub, doubtful, owners, sameCopies(doubtful, held));
      // Decided before any insert: a refused batch claims nothing.
      if (!decision.ok) return decision;
      for (const replica of decision.claimed) st.insertOwner.run(space, replica, sub);
      return { ok: true };
    });
    // One snapshot for both parts: another process may seal rows between two statements.
    this.readTx = db.transaction((afterPos: number, limit: number) => {
      const records = storage.blocks.read(sid, afterPos, limit);
      if (records.length === limit) return records;
      for (const row of st.readByPos.all(space, afterPos, limit - records.length)) {
        records.push({ pos: row.pos, event: eventOfRow(row) });
      }
      return records;
    });
    // sqlite-history.ts invariant 5: one snapshot for the rows and the blocks.
    this.historyTx = db.transaction((query: CursorQuery) => {
      const rows = historyRows(storage.historyRows, space, query);
      if (!storage.blocks.has(sid)) return rows;
      return storage.blocks.history.page(sid, query, rows, (bid) => storage.blocks.recordsOf(bid));
    });
  }

  async readByCursor(query: CursorQuery): Promise<LocalRecord[]> {
    this.storage.compactor?.noteRead();
    const limit = Math.max(0, Math.floor(query.limit));
    if (limit === 0) return [];
    return this.run('readByCursor', () => {
      // sqlite-history.ts invariant 4: blocks a layout-2 server sealed get their range first.
      if (this.storage.blocks.history.hasUnranged()) this.storage.rangeBlocks();
      return this.historyTx({ ...query, limit });
    });
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
    this.storage.compactor?.noteRead();
    const max = Math.max(0, Math.floor(limit));
    return this.run('readByPos', () => {
      const head = this.st.getHead.get(this.space)?.head ?? 0;
      if (afterPos >= head || max === 0) return [];
      const cached = this.recent.slice(head, afterPos, max);
      if (cached !== undefined) return cached;
      return this.readTx(afterPos, max);
    });
  }

  async idAtPos(pos: number): Promise<string | undefined> {
    return this.run(
      'idAtPos',
      () =>
        this.st.idAtPos.get(this.space, pos)?.id ??
        this.storage.blocks.atPos(this.where.sid, pos)?.event.id,
    );
  }

  async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    this.storage.compactor?.touch(this.space, events.length);
    const { written, lost, rejected } = await this.storage.groupCommit(
      () => this.run('ingest', () => this.ingestTx(events)),
      ({ written: records, removed }) => {
        // Still inside the flush, before any reader runs: the cache ends at the new head, and
        // holds no record that left the log (a hole restarts it: recent-records.ts).
        if (removed.length > 0) this.recent.trimTo(0, 0);
        if (records.length === 0) return;
        this.recent.add(records);
        notifyListeners(this.listeners, records[records.length - 1]!.pos);
      },
    );
    const skewed = isSkewed(events, this.storage.now() + this.storage.maxClockDriftMs);
    return rejected.length > 0 ? { written, skewed, lost, rejected } : { written, skewed, lost };
  }

  async getCheckpoint(peer: string): Promise<Checkpoint | undefined> {
    return this.run('getCheckpoint', () => {
      const row = this.st.getCheckpoint.get(this.space, peer);
      return row === undefined ? undefined : (JSON.parse(row.checkpoint) as Checkpoint);
    });
  }

  async setCheckpoint(peer: string, checkpoint: Checkpoint): Promise<void> {
    this.run('setCheckpoint', () => {
      // invariant 5: no fsync for a checkpoint; the events it covers were fsynced already.
      this.st.syncNormal.run();
      try {
        this.st.setCheckpoint.run(this.space, peer, JSON.stringify(checkpoint));
      } finally {
        this.st.syncFull.run();
      }
    });
  }

  onAppend(listener: (headPos: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async claimOrigins(sub: string, events: readonly EventOrigin[]): Promise<OriginCheck> {
    return this.run('claimOrigins', () => this.claimTx(sub, events));
  }

  async eventAtSlot(replica: string, seq: number): Promise<StoredEventRecord | undefined> {
    return this.run('eventAtSlot', () => {
      const row = this.st.eventAtSlot.get(this.space, replica, seq);
      if (row !== undefined) return eventOfRow(row);
      return this.storage.blocks.atSlot(this.where.sid, replica, seq)?.event;
    });
  }

  async replicaKey(replica: string): Promise<string | undefined> {
    return this.run('replicaKey', () => this.st.getReplicaKey.get(this.space, replica)?.key);
  }

  async bindReplicaKeys(sub: string, keys: ReadonlyMap<string, string>): Promise<void> {
    await this.run('bindReplicaKeys', () => {
      for (const [replica, key] of keys) this.st.bindReplicaKey.run(this.space, replica, key, sub);
    });
  }

  async ownerOf(replica: string): Promise<string | undefined> {
    return this.run('ownerOf', () => this.st.getOwner.get(this.space, replica)?.sub);
  }

  async rejectionsOf(replica: string, afterSeq: number): Promise<StrictRejection[]> {
    return this.run('rejectionsOf', () =>
      this.st.rejectionsOf
        .all(this.space, replica, afterSeq)
        .map((row) => JSON.parse(row.body) as StrictRejection),
    );
  }

  async forgetRejections(replica: string, uptoSeq: number): Promise<void> {
    this.run('forgetRejections', () => this.st.forgetRejections.run(this.space, replica, uptoSeq));
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
