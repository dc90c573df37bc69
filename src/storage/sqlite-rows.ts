/**
 * The SQLite replica's statements over its log (sqlite-schema.ts), prepared once per handle:
 * rows in and out as LocalRecords, the state row, stream versions, and the reads of adapter.ts.
 *
 * Invariants:
 * 1. A read is one SELECT (one snapshot of the file) holding at most `limit` rows (adapter.ts
 *    A5); minCursorSince is an aggregate, which holds none.
 * 2. Cursors compare as SQLite's BINARY collation, the bytes of their UTF-8: cursors are ASCII
 *    (core/ids.ts), so that is the order of JavaScript's `<` that the other adapters use.
 * 3. A row's body holds what its columns do not (type, data, meta, schema, hlc, time): each field
 *    is stored once, since the columns are there for the indexes anyway (with the body repeating
 *    every column, a file held 2.2x the events' JSON: npm run bench -- storage). A body that
 *    holds every field (files written before) reads the same: the columns win, with equal values.
 */
import type Database from 'better-sqlite3';
import type { ReplicaCounters } from '../core/append.ts';
import type { JsonValue, LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { ReplicaId } from '../core/ids.ts';
import { isStoredIdentity, type StoredIdentity } from '../core/replica-identity.ts';
import type { TrimmedTrace } from '../core/trimmed-copies.ts';
import type { CursorQuery } from './adapter.ts';
import { REWRITES_META_KEY, withRewrite } from './rewrites.ts';

export interface StateRow {
  replica: ReplicaId;
  epoch: string;
  counters: ReplicaCounters;
  identity: StoredIdentity | undefined;
  gen: number;
}

interface RawState {
  replica: string;
  epoch: string;
  seq: number;
  pos: number;
  wall: number;
  counter: number;
  identity: string | null;
  gen: number;
}

/** The columns a read selects: the body and the fields it leaves out (invariant 3). */
const EVENT_COLUMNS = 'pos, id, replica, seq, stream, version, cursor, body';

interface EventRow {
  pos: number;
  id: string;
  replica: string;
  seq: number;
  stream: string;
  version: number;
  cursor: string;
  body: string;
}

/** The body column (invariant 3): the event's JSON without what the columns hold. */
function bodyOf(event: StoredEventRecord): string {
  const { id: _id, replica: _r, seq: _s, stream: _st, version: _v, cursor: _c, ...rest } = event;
  return JSON.stringify(rest);
}

const recordOf = (row: EventRow): LocalRecord => {
  const rest = JSON.parse(row.body) as Omit<
    StoredEventRecord,
    'id' | 'replica' | 'seq' | 'stream' | 'version' | 'cursor'
  >;
  return {
    pos: row.pos,
    event: {
      ...rest,
      id: row.id,
      stream: row.stream,
      version: row.version,
      replica: row.replica,
      seq: row.seq,
      cursor: row.cursor,
    } as StoredEventRecord,
  };
};

/** SQLite's LIMIT of a caller's limit: NaN or <= 0 reads nothing, Infinity everything (-1). */
export function sqlLimit(limit: number): number {
  if (Number.isNaN(limit) || limit <= 0) return 0;
  return Number.isFinite(limit) ? Math.floor(limit) : -1;
}

/**
 * A trimmed event keeps its row with an empty body (adapter.ts invariant 6): its id and slot stay
 * in the unique indexes, its version counts for topVersion; every read of events skips it.
 */
const HELD = "body <> ''";
const TRIMMED = "body = ''";

export class LogStatements {
  private readonly db: Database.Database;
  private readonly byCursorCache = new Map<string, Database.Statement>();
  private readonly st;

  constructor(db: Database.Database) {
    this.db = db;
    const p = (sql: string) => db.prepare(sql);
    this.st = {
      state: p('SELECT replica, epoch, seq, pos, wall, counter, identity, gen FROM log_state'),
      counters: p('UPDATE log_state SET seq = ?, pos = ?, wall = ?, counter = ?, gen = gen + 1'),
      touch: p('UPDATE log_state SET gen = gen + 1'),
      replica: p('UPDATE log_state SET replica = ?'),
      identity: p('UPDATE log_state SET identity = ?'),
      byId: p(`SELECT ${EVENT_COLUMNS} FROM log_events WHERE id = ? AND ${HELD}`),
      bySlot: p(
        `SELECT ${EVENT_COLUMNS} FROM log_events WHERE replica = ? AND seq = ? AND ${HELD}`,
      ),
      trimmedId: p(`SELECT id, cursor FROM log_events WHERE id = ? AND ${TRIMMED}`),
      trimmedSlot: p(
        `SELECT id, cursor FROM log_events WHERE replica = ? AND seq = ? AND ${TRIMMED}`,
      ),
      evictTrimmed: p(`DELETE FROM log_events WHERE id = ? AND cursor = ? AND ${TRIMMED}`),
      toTrim: p(
        `SELECT pos, cursor FROM log_events WHERE cursor <= ? AND pos <= ? AND ${HELD} ORDER BY cursor LIMIT ?`,
      ),
      trim: p(`UPDATE log_events SET body = '' WHERE pos = ?`),
      atPos: p(`SELECT pos, id, cursor FROM log_events WHERE pos = ? AND ${HELD}`),
      insert: p(
        'INSERT INTO log_events (pos, id, replica, seq, stream, version, cursor, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      rewrite: p('UPDATE log_events SET body = ?, cursor = ? WHERE pos = ?'),
      remove: p('DELETE FROM log_events WHERE pos = ? AND id = ?'),
      byPos: p(
        `SELECT ${EVENT_COLUMNS} FROM log_events WHERE pos > ? AND ${HELD} ORDER BY pos LIMIT ?`,
      ),
      minCursor: p(`SELECT min(cursor) AS c FROM log_events WHERE pos > ? AND ${HELD}`),
      streamVersion: p('SELECT version FROM log_streams WHERE stream = ?'),
      topVersion: p('SELECT max(version) AS v FROM log_events WHERE stream = ?'),
      setVersion: p(
        'INSERT INTO log_streams (stream, version) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET version = excluded.version',
      ),
      flagConflict: p(
        'INSERT INTO log_streams (stream, version, conflicted) VALUES (?, 0, 1) ON CONFLICT (stream) DO UPDATE SET conflicted = 1',
      ),
      conflicted: p('SELECT stream FROM log_streams WHERE conflicted = 1'),
      getMeta: p('SELECT value FROM log_meta WHERE key = ?'),
      setMeta: p(
        'INSERT INTO log_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
    };
  }

  state(): StateRow {
    const row = this.st.state.get() as RawState;
    let identity: StoredIdentity | undefined;
    if (row.identity !== null) {
      const parsed: unknown = JSON.parse(row.identity);
      if (isStoredIdentity(parsed)) identity = parsed;
    }
    return {
      replica: row.replica as ReplicaId,
      epoch: row.epoch,
      counters: { seq: row.seq, pos: row.pos, clock: { wall: row.wall, counter: row.counter } },
      identity,
      gen: row.gen,
    };
  }

  /** The counters a plan returned; moves `gen` (restamp's check, sqlite-writes.ts). */
  setCounters(c: ReplicaCounters): void {
    this.st.counters.run(c.seq, c.pos, c.clock.wall, c.clock.counter);
  }

  /** Moves `gen` for a write that leaves the counters as they are (discard, replaceOwn). */
  touch(): void {
    this.st.touch.run();
  }

  setReplica(replica: ReplicaId): void {
    this.st.replica.run(replica);
  }

  setIdentity(identity: StoredIdentity): void {
    this.st.identity.run(JSON.stringify(identity));
  }

  byId(id: string): LocalRecord | undefined {
    const row = this.st.byId.get(id) as EventRow | undefined;
    return row === undefined ? undefined : recordOf(row);
  }

  bySlot(replica: string, seq: number): LocalRecord | undefined {
    const row = this.st.bySlot.get(replica, seq) as EventRow | undefined;
    return row === undefined ? undefined : recordOf(row);
  }

  /** Whether a trimmed event holds this id, or this (replica, seq) (adapter.ts invariant 6). */
  trimmedId(id: string): boolean {
    return this.st.trimmedId.get(id) !== undefined;
  }

  trimmedSlot(replica: string, seq: number): boolean {
    return this.st.trimmedSlot.get(replica, seq) !== undefined;
  }

  /** The trace of the trimmed event with this id (core/trimmed-copies.ts), if one is. */
  trimmedTraceById(id: string): TrimmedTrace | undefined {
    return this.st.trimmedId.get(id) as TrimmedTrace | undefined;
  }

  /** The trace of the trimmed event at this (replica, seq), if one is. */
  trimmedTraceAt(replica: string, seq: number): TrimmedTrace | undefined {
    return this.st.trimmedSlot.get(replica, seq) as TrimmedTrace | undefined;
  }

  /**
   * Drops the rows of trimmed copies that lost (core/trimmed-copies.ts invariant 2). The
   * streams keep their versions (log_streams), as for a held loser.
   */
  evictTrimmed(traces: readonly { id: string; cursor: string }[]): void {
    for (const t of traces) this.st.evictTrimmed.run(t.id, t.cursor);
  }

  /**
   * Takes the bodies of at most `limit` held events with cursor <= `horizon` and position <=
   * `maxPos` out, in cursor
   * order; the row keeps id, slot, stream, version and cursor (a husk). Returns the cursors.
   */
  trim(horizon: string, limit: number, maxPos: number): { pos: number; cursor: string }[] {
    const rows = this.st.toTrim.all(horizon, maxPos, sqlLimit(limit)) as {
      pos: number;
      cursor: string;
    }[];
    for (const row of rows) this.st.trim.run(row.pos);
    return rows;
  }

  /** Whether a held event at or below `horizon` and `maxPos` is left to trim. */
  trimmable(horizon: string, maxPos: number): boolean {
    return this.st.toTrim.all(horizon, maxPos, 1).length > 0;
  }

  /** The id and cursor held at `pos`, if any. */
  heldAt(pos: number): { id: string; cursor: string } | undefined {
    return this.st.atPos.get(pos) as { id: string; cursor: string } | undefined;
  }

  insert(records: readonly LocalRecord[]): void {
    for (const { event: e, pos } of records) {
      this.st.insert.run(pos, e.id, e.replica, e.seq, e.stream, e.version, e.cursor, bodyOf(e));
    }
  }

  /** Writes `record` again at its position (a signature, a re-stamp's new hlc and cursor). */
  rewrite(record: LocalRecord): void {
    this.st.rewrite.run(bodyOf(record.event), record.event.cursor, record.pos);
  }

  remove(records: readonly LocalRecord[]): void {
    for (const r of records) this.st.remove.run(r.pos, r.event.id);
  }

  readByPos(afterPos: number, limit: number): LocalRecord[] {
    const n = sqlLimit(limit);
    if (n === 0 || Number.isNaN(afterPos)) return [];
    return (this.st.byPos.all(Math.max(0, Math.floor(afterPos)), n) as EventRow[]).map(recordOf);
  }

  readByCursor(query: CursorQuery): LocalRecord[] {
    const n = sqlLimit(query.limit);
    if (n === 0) return [];
    const reverse = query.reverse === true;
    const where: string[] = [HELD];
    const args: (string | number)[] = [];
    if (query.stream !== undefined) {
      where.push('stream = ?');
      args.push(query.stream);
    }
    if (query.after !== undefined) {
      where.push(reverse ? 'cursor < ?' : 'cursor > ?');
      args.push(query.after);
    }
    if (query.until !== undefined) {
      where.push(reverse ? 'cursor >= ?' : 'cursor <= ?');
      args.push(query.until);
    }
    const sql = `SELECT ${EVENT_COLUMNS} FROM log_events WHERE ${where.join(' AND ')} ORDER BY cursor ${reverse ? 'DESC' : 'ASC'} LIMIT ?`;
    let statement = this.byCursorCache.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.byCursorCache.set(sql, statement);
    }
    return (statement.all(...args, n) as EventRow[]).map(recordOf);
  }

  minCursorSince(pos: number): string | undefined {
    const row = this.st.minCursor.get(Math.max(0, Math.floor(pos))) as { c: string | null };
    return row.c ?? undefined;
  }

  streamVersion(stream: string): number {
    const row = this.st.streamVersion.get(stream) as { version: number } | undefined;
    return row?.version ?? 0;
  }

  /** The largest version `stream` still holds (0: none). */
  topVersion(stream: string): number {
    return (this.st.topVersion.get(stream) as { v: number | null }).v ?? 0;
  }

  setStreamVersion(stream: string, version: number): void {
    this.st.setVersion.run(stream, version);
  }

  flagConflict(stream: string): void {
    this.st.flagConflict.run(stream);
  }

  getMeta(key: string): JsonValue | undefined {
    const row = this.st.getMeta.get(key) as { value: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as JsonValue);
  }

  setMeta(key: string, value: JsonValue): void {
    this.st.setMeta.run(key, JSON.stringify(value));
  }

  /** Adds a rewrite from `from` to the log's list (rewrites.ts), for handles that miss notices. */
  noteRewrite(from: string): void {
    this.setMeta(REWRITES_META_KEY, withRewrite(this.getMeta(REWRITES_META_KEY), from));
  }

  conflictStreams(): string[] {
    return (this.st.conflicted.all() as { stream: string }[]).map((r) => r.stream).sort();
  }
}
