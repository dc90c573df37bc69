/**
 * History in the total order on the SQLite server storage (issue 18 part 3,
 * docs/storage-growth.md): `SpaceLog.readByCursor` over the hot tail's rows and the sealed
 * blocks (sqlite-blocks.ts), with the meaning of a replica's readByCursor (storage/adapter.ts
 * invariants 4 and 5).
 *
 * Invariants:
 * 1. Rows are found through a `(space, cursor)` index: a page of rows reads at most `limit` rows.
 *    A stream read walks that index through the range and keeps the stream's rows: its work is
 *    bounded by the tail of rows (compaction's `tailEvents`, default 8,192) where compaction
 *    runs, and by the range's rows where it is off. No `(space, stream, cursor)` index: it cost
 *    120 bytes a row, and an update per ingested event, for reads that are rare.
 * 2. Each block records the smallest and largest cursor of its events (`min_cursor`,
 *    `max_cursor`; layout 3). Blocks follow positions and positions follow cursors but for late
 *    events, so a range meets few blocks; a late event widens its block's range, which stays
 *    correct (a wider block is decoded and filtered). A read scans the headers of the blocks
 *    whose range meets the query (an index, no body) and decodes them in range order only until
 *    `limit` events are found that no further block can precede.
 * 3. `block_streams` holds a 47-bit hash of each stream of a block with the block: a stream read
 *    decodes only that stream's blocks. A collision or a stale entry (an event removed from its
 *    block) costs a decode, never a wrong answer: decoded events are filtered.
 * 4. A block written without its range (a layout-2 server sealing a layout-3 file, which its
 *    INSERT leaves NULL) gets it, and its stream entries, before the next read: reads never miss
 *    a block. Removing an event (sqlite-blocks.ts 5) only narrows a block, so a kept range stays
 *    correct.
 * 5. A read runs in one transaction (a snapshot): the compactor cannot move an event between the
 *    rows and the blocks under it.
 * 6. A page holds at most `limit` events; while it is built, at most `limit` plus one block's.
 */
import type Database from 'better-sqlite3';
import type { LocalRecord } from '../core/events.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import { decodeBlock } from './event-blocks.ts';
import { idHash } from './sqlite-hash.ts';
import { eventOfRow, type StoredRow } from './sqlite-rows.ts';

/** Above every cursor (base-36 digits, lowercase base-32 and dots): an open upper bound. */
const TOP = '~';

export const HISTORY_SCHEMA = `
CREATE INDEX IF NOT EXISTS events_by_cursor ON events (space, cursor);
CREATE INDEX IF NOT EXISTS blocks_by_min_cursor ON blocks (sid, min_cursor, max_cursor);
CREATE INDEX IF NOT EXISTS blocks_by_max_cursor ON blocks (sid, max_cursor, min_cursor);
CREATE INDEX IF NOT EXISTS blocks_unranged ON blocks (bid) WHERE min_cursor IS NULL;
CREATE TABLE IF NOT EXISTS block_streams (
  sid INTEGER NOT NULL,
  shash INTEGER NOT NULL,
  bid INTEGER NOT NULL,
  PRIMARY KEY (sid, shash, bid)
) WITHOUT ROWID;
`;

/**
 * Layout 3: the cursor range of each block (invariant 2), filled for the blocks a layout-2 file
 * holds. One transaction: a crash leaves layout 2 (no column) or layout 3 with every range, never
 * a column half filled. Runs after BLOCK_SCHEMA, before HISTORY_SCHEMA.
 */
export function migrateHistory(db: Database.Database): void {
  const hasRange = () =>
    db
      .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('blocks')")
      .all()
      .some((column) => column.name === 'min_cursor');
  if (hasRange()) return;
  db.transaction(() => {
    // Again under the write lock: another process may have migrated meanwhile.
    if (hasRange()) return;
    db.exec('ALTER TABLE blocks ADD COLUMN min_cursor TEXT');
    db.exec('ALTER TABLE blocks ADD COLUMN max_cursor TEXT');
    db.exec(HISTORY_SCHEMA);
    new BlockHistory(db).fillUnranged(Number.POSITIVE_INFINITY);
  }).immediate();
}

interface RangedHeader {
  bid: number;
  min_cursor: string;
  max_cursor: string;
}

/** The history indexes of the block tables: kept by the sealing, read by readByCursor. */
export class BlockHistory {
  private readonly st;

  /** Reads a block's body or archive stub (sqlite-blocks.ts 8). */
  private readonly decode: (bytes: Buffer) => LocalRecord[];

  constructor(db: Database.Database, decode: (bytes: Buffer) => LocalRecord[] = decodeBlock) {
    this.decode = decode;
    const columns = 'b.bid, b.min_cursor, b.max_cursor';
    this.st = {
      setRange: db.prepare<[string, string, number]>(
        'UPDATE blocks SET min_cursor = ?, max_cursor = ? WHERE bid = ?',
      ),
      insertStream: db.prepare<[number, number, number]>(
        'INSERT OR IGNORE INTO block_streams (sid, shash, bid) VALUES (?, ?, ?)',
      ),
      deleteStream: db.prepare<[number, number, number]>(
        'DELETE FROM block_streams WHERE sid = ? AND shash = ? AND bid = ?',
      ),
      unranged: db.prepare<[number], { bid: number; sid: number; body: Buffer }>(
        'SELECT bid, sid, body FROM blocks WHERE min_cursor IS NULL LIMIT ?',
      ),
      anyUnranged: db.prepare<[], { found: number }>(
        'SELECT 1 AS found FROM blocks WHERE min_cursor IS NULL LIMIT 1',
      ),
      // Forward: blocks with an event in (after, until], in order of their smallest cursor.
      forward: db.prepare<[number, string, string], RangedHeader>(
        `SELECT ${columns} FROM blocks AS b WHERE b.sid = ? AND b.max_cursor > ? AND b.min_cursor <= ? ORDER BY b.min_cursor`,
      ),
      // Reverse: blocks with an event in [until, after), in order of their largest cursor, down.
      reverse: db.prepare<[number, string, string], RangedHeader>(
        `SELECT ${columns} FROM blocks AS b WHERE b.sid = ? AND b.min_cursor < ? AND b.max_cursor >= ? ORDER BY b.max_cursor DESC`,
      ),
      forwardStream: db.prepare<[number, number, string, string], RangedHeader>(
        `SELECT ${columns} FROM block_streams AS s JOIN blocks AS b ON b.bid = s.bid WHERE s.sid = ? AND s.shash = ? AND b.max_cursor > ? AND b.min_cursor <= ? ORDER BY b.min_cursor`,
      ),
      reverseStream: db.prepare<[number, number, string, string], RangedHeader>(
        `SELECT ${columns} FROM block_streams AS s JOIN blocks AS b ON b.bid = s.bid WHERE s.sid = ? AND s.shash = ? AND b.min_cursor < ? AND b.max_cursor >= ? ORDER BY b.max_cursor DESC`,
      ),
      body: db.prepare<[number], { body: Buffer }>('SELECT body FROM blocks WHERE bid = ?'),
    };
  }

  /** Records a block's range and streams (invariants 2, 3), in the sealing's transaction. */
  indexBlock(sid: number, bid: number, records: readonly LocalRecord[]): void {
    if (records.length === 0) return;
    let min = records[0]!.event.cursor as string;
    let max = min;
    const streams = new Set<string>();
    for (const { event } of records) {
      if (event.cursor < min) min = event.cursor;
      if (event.cursor > max) max = event.cursor;
      streams.add(event.stream);
    }
    this.st.setRange.run(min, max, bid);
    for (const stream of streams) this.st.insertStream.run(sid, idHash(stream), bid);
  }

  /** Drops the stream entries of a deleted block, whose `records` it held. */
  dropBlock(sid: number, bid: number, records: readonly LocalRecord[]): void {
    for (const stream of new Set(records.map((r) => r.event.stream))) {
      this.st.deleteStream.run(sid, idHash(stream), bid);
    }
  }

  /** Whether some block lacks its range (invariant 4). */
  hasUnranged(): boolean {
    return this.st.anyUnranged.get() !== undefined;
  }

  /** Gives up to `max` blocks without a range theirs (invariant 4); the caller's transaction. */
  fillUnranged(max: number): number {
    const page = Number.isFinite(max) ? max : -1;
    const rows = this.st.unranged.all(page);
    for (const row of rows) this.indexBlock(row.sid, row.bid, this.decode(row.body));
    return rows.length;
  }

  /**
   * The sealed events matching `query`, at most `limit`, merged with `rows` (the tail's page,
   * already in order): the page of the whole log (invariants 2, 6). `decode` reads a block.
   */
  page(
    sid: number,
    query: CursorQuery,
    rows: LocalRecord[],
    decode: (bid: number) => LocalRecord[],
  ): LocalRecord[] {
    const limit = query.limit;
    const reverse = query.reverse === true;
    const high = reverse ? (query.after ?? TOP) : (query.until ?? TOP);
    const low = reverse ? (query.until ?? '') : (query.after ?? '');
    const inRange = reverse
      ? (c: string) => c < high && c >= low
      : (c: string) => c > low && c <= high;
    const headers =
      query.stream === undefined
        ? reverse
          ? this.st.reverse.all(sid, high, low)
          : this.st.forward.all(sid, low, high)
        : reverse
          ? this.st.reverseStream.all(sid, idHash(query.stream), high, low)
          : this.st.forwardStream.all(sid, idHash(query.stream), low, high);
    const before = reverse
      ? (a: LocalRecord, b: LocalRecord) => (a.event.cursor > b.event.cursor ? -1 : 1)
      : (a: LocalRecord, b: LocalRecord) => (a.event.cursor < b.event.cursor ? -1 : 1);
    let page = rows;
    for (const header of headers) {
      if (page.length >= limit) {
        // No event of this block, nor of any after it in this order, can enter the page.
        const last = page[limit - 1]!.event.cursor;
        if (reverse ? header.max_cursor < last : header.min_cursor > last) break;
      }
      const found = decode(header.bid).filter(
        (r) =>
          inRange(r.event.cursor) &&
          (query.stream === undefined || r.event.stream === query.stream),
      );
      if (found.length === 0) continue;
      page = [...page, ...found].sort(before);
      if (page.length > limit) page = page.slice(0, limit);
    }
    return page;
  }
}

/** The tail rows of a history page (invariant 1): at most `limit`, in the query's order. */
export interface HistoryRows {
  forward: Database.Statement<[string, string, string, number], StoredRow>;
  reverse: Database.Statement<[string, string, string, number], StoredRow>;
  forwardStream: Database.Statement<[string, string, string, string, number], StoredRow>;
  reverseStream: Database.Statement<[string, string, string, string, number], StoredRow>;
}

export function historyRowsStatements(db: Database.Database): HistoryRows {
  const columns = 'pos, id, replica, seq, stream, cursor, body';
  return {
    forward: db.prepare<[string, string, string, number], StoredRow>(
      `SELECT ${columns} FROM events WHERE space = ? AND cursor > ? AND cursor <= ? ORDER BY cursor LIMIT ?`,
    ),
    reverse: db.prepare<[string, string, string, number], StoredRow>(
      `SELECT ${columns} FROM events WHERE space = ? AND cursor < ? AND cursor >= ? ORDER BY cursor DESC LIMIT ?`,
    ),
    // INDEXED BY: the planner must not trade the cursor order for the (space, id) index.
    forwardStream: db.prepare<[string, string, string, string, number], StoredRow>(
      `SELECT ${columns} FROM events INDEXED BY events_by_cursor WHERE space = ? AND stream = ? AND cursor > ? AND cursor <= ? ORDER BY cursor LIMIT ?`,
    ),
    reverseStream: db.prepare<[string, string, string, string, number], StoredRow>(
      `SELECT ${columns} FROM events INDEXED BY events_by_cursor WHERE space = ? AND stream = ? AND cursor < ? AND cursor >= ? ORDER BY cursor DESC LIMIT ?`,
    ),
  };
}

/** The tail rows matching `query` (invariant 1), as records. */
export function historyRows(rows: HistoryRows, space: string, query: CursorQuery): LocalRecord[] {
  const reverse = query.reverse === true;
  const high = reverse ? (query.after ?? TOP) : (query.until ?? TOP);
  const low = reverse ? (query.until ?? '') : (query.after ?? '');
  const found =
    query.stream === undefined
      ? reverse
        ? rows.reverse.all(space, high, low, query.limit)
        : rows.forward.all(space, low, high, query.limit)
      : reverse
        ? rows.reverseStream.all(space, query.stream, high, low, query.limit)
        : rows.forwardStream.all(space, query.stream, low, high, query.limit);
  return found.map((row) => ({ pos: row.pos, event: eventOfRow(row) }));
}
