/**
 * Sealed events of the SQLite server storage (sqlite.ts; issue 18): the part of each space's log
 * older than its hot tail, moved by the compactor (sqlite-compactor.ts) out of one row an event
 * (`events`, with three text indexes) into blocks of about BLOCK_EVENTS events deflated together
 * (event-blocks.ts), with two slim indexes beside them.
 *
 * Invariants:
 * 1. Each position of a space is a row of `events` or in exactly one block, and every sealed
 *    position is below every row's: sealing takes a space's lowest rows. So a read walks blocks,
 *    then rows, and a block's `last_pos` orders them.
 * 2. Sealing is one transaction: the rows, one block, its index entries, the rows deleted. A
 *    crash (even SIGKILL) leaves the rows or the block, never both or neither.
 * 3. `block_ids` holds a 47-bit hash of each sealed id with its block (an integer of 6 bytes,
 *    not the id's text). No entry: the space does not hold the id sealed. A hit is verified in
 *    the block, so a collision costs a decode, never a wrong answer.
 * 4. `block_slots` holds a block's seqs of each replica as runs [first, last] (seqs are dense per
 *    replica, so a block holds a run or few per replica, not an entry per event). With unique
 *    (replica, seq) slots the runs of a replica are disjoint: the first ending at or after a seq
 *    is the only one that can hold it. Files whose slots are not unique are not sealed.
 * 5. Removing a sealed event (a copy that lost: core/copies.ts) rewrites its block and that
 *    block's index entries, in the transaction of the ingest; an emptied block is deleted.
 * 6. Decoded blocks are cached by (block id, event count): ids are never reused (AUTOINCREMENT)
 *    and a rewrite only removes events, so a changed block never matches a cached one.
 * 7. `time` and `cursor` are not kept (event-blocks.ts derives them), nor the space's name.
 * 8. A block's body may be an archive stub (sqlite-archive.ts): every decode goes through the
 *    storage's ArchiveReader, which reads and verifies the file or fails with a coded error.
 * 9. A lookup of a batch's ids walks the ids and seeks each in `block_ids` (HITS_SQL, ANY_HIT_SQL:
 *    `CROSS JOIN` fixes that order), never the other way round: without statistics SQLite chose
 *    to walk the space's `block_ids` and scan the ids for each row, parsing their JSON again each
 *    time, 6 s for one batch of 500 against 100k sealed ids (the server stalled in a catch-up).
 */
import type Database from 'better-sqlite3';
import { slotOf } from '../core/copies.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import { ArchiveReader } from './archive-files.ts';
import { BLOCK_EVENTS, encodeBlock } from './event-blocks.ts';
import { idHash } from './sqlite-hash.ts';
import { BlockHistory } from './sqlite-history.ts';

import { eventOfRow, heldById, heldBySlot, type StoredRow } from './sqlite-rows.ts';

/** Invariant 9: the ids (a JSON array of hashes) outside, each sought in `block_ids`. */
export const HITS_SQL =
  'SELECT b.hash, b.bid FROM json_each(?) AS j CROSS JOIN block_ids AS b ON b.sid = ? AND b.hash = j.value';
export const ANY_HIT_SQL =
  'SELECT 1 AS found FROM json_each(?) AS j CROSS JOIN block_ids AS b ON b.sid = ? AND b.hash = j.value LIMIT 1';

export const BLOCK_SCHEMA = `
CREATE TABLE IF NOT EXISTS blocks (
  bid INTEGER PRIMARY KEY AUTOINCREMENT,
  sid INTEGER NOT NULL,
  first_pos INTEGER NOT NULL,
  last_pos INTEGER NOT NULL,
  n INTEGER NOT NULL,
  body BLOB NOT NULL,
  min_cursor TEXT,
  max_cursor TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS blocks_by_pos ON blocks (sid, last_pos);
CREATE TABLE IF NOT EXISTS block_ids (
  sid INTEGER NOT NULL,
  hash INTEGER NOT NULL,
  bid INTEGER NOT NULL,
  PRIMARY KEY (sid, hash, bid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replica_nums (
  rid INTEGER PRIMARY KEY,
  sid INTEGER NOT NULL,
  replica TEXT NOT NULL,
  UNIQUE (sid, replica)
);
CREATE TABLE IF NOT EXISTS block_slots (
  rid INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  bid INTEGER NOT NULL,
  PRIMARY KEY (rid, last_seq)
) WITHOUT ROWID;
`;

/** Decoded blocks kept (invariant 6): a catch-up's pages cross each block boundary once. */
const CACHED_BLOCKS = 16;

interface Header {
  bid: number;
  n: number;
  last_pos: number;
}

/** The runs of seqs by replica of `records` (invariant 4). */
function runsOf(
  records: readonly LocalRecord[],
): { replica: string; first: number; last: number }[] {
  const seqs = new Map<string, number[]>();
  for (const { event } of records) {
    const list = seqs.get(event.replica);
    if (list === undefined) seqs.set(event.replica, [event.seq]);
    else list.push(event.seq);
  }
  const runs: { replica: string; first: number; last: number }[] = [];
  for (const [replica, list] of seqs) {
    list.sort((x, y) => x - y);
    let first = list[0]!;
    for (let i = 1; i <= list.length; i++) {
      if (i < list.length && list[i] === list[i - 1]! + 1) continue;
      runs.push({ replica, first, last: list[i - 1]! });
      if (i < list.length) first = list[i]!;
    }
  }
  return runs;
}

/** The block tables of one database: sealing, reading and looking up sealed events. */
export class BlockStore {
  private readonly cache = new Map<string, LocalRecord[]>();
  private readonly rids = new Map<string, number>();
  private readonly st;
  /** The cursor ranges and stream entries of the blocks (sqlite-history.ts). */
  readonly history: BlockHistory;

  /** Decodes bodies and archive stubs alike (invariant 8). */
  readonly archive: ArchiveReader;

  constructor(db: Database.Database, archive: ArchiveReader = new ArchiveReader(undefined)) {
    this.archive = archive;
    this.history = new BlockHistory(db, (bytes) => archive.decode(bytes));
    this.st = {
      insertBlock: db.prepare<[number, number, number, number, Buffer]>(
        'INSERT INTO blocks (sid, first_pos, last_pos, n, body) VALUES (?, ?, ?, ?, ?)',
      ),
      updateBlock: db.prepare<[number, Buffer, number]>(
        'UPDATE blocks SET n = ?, body = ? WHERE bid = ?',
      ),
      deleteBlock: db.prepare<[number]>('DELETE FROM blocks WHERE bid = ?'),
      blocksAfter: db.prepare<[number, number, number], Header>(
        'SELECT bid, n, last_pos FROM blocks WHERE sid = ? AND last_pos > ? ORDER BY last_pos LIMIT ?',
      ),
      header: db.prepare<[number], Header>('SELECT bid, n, last_pos FROM blocks WHERE bid = ?'),
      body: db.prepare<[number], { body: Buffer }>('SELECT body FROM blocks WHERE bid = ?'),
      anyBlock: db.prepare<[number], { found: number }>(
        'SELECT 1 AS found FROM blocks WHERE sid = ? LIMIT 1',
      ),
      insertId: db.prepare<[number, number, number]>(
        'INSERT OR IGNORE INTO block_ids (sid, hash, bid) VALUES (?, ?, ?)',
      ),
      deleteId: db.prepare<[number, number, number]>(
        'DELETE FROM block_ids WHERE sid = ? AND hash = ? AND bid = ?',
      ),
      // The hashes as one JSON array: one statement and one bound value per batch, a third of
      // the cost of IN lists of bound values (measured on 500-event batches).
      hits: db.prepare<[string, number], { hash: number; bid: number }>(HITS_SQL),
      anyHit: db.prepare<[string, number], { found: number }>(ANY_HIT_SQL),
      getRid: db.prepare<[number, string], { rid: number }>(
        'SELECT rid FROM replica_nums WHERE sid = ? AND replica = ?',
      ),
      insertRid: db.prepare<[number, string]>(
        'INSERT OR IGNORE INTO replica_nums (sid, replica) VALUES (?, ?)',
      ),
      insertRun: db.prepare<[number, number, number, number]>(
        'INSERT INTO block_slots (rid, last_seq, first_seq, bid) VALUES (?, ?, ?, ?)',
      ),
      deleteRun: db.prepare<[number, number]>(
        'DELETE FROM block_slots WHERE rid = ? AND last_seq = ?',
      ),
      runAt: db.prepare<[number, number], { first_seq: number; last_seq: number; bid: number }>(
        'SELECT first_seq, last_seq, bid FROM block_slots WHERE rid = ? AND last_seq >= ? ORDER BY last_seq LIMIT 1',
      ),
      tailRows: db.prepare<[string, number, number], StoredRow>(
        'SELECT pos, id, replica, seq, stream, cursor, body FROM events WHERE space = ? AND pos <= ? ORDER BY pos LIMIT ?',
      ),
      deleteTail: db.prepare<[string, number, number]>(
        'DELETE FROM events WHERE space = ? AND pos BETWEEN ? AND ?',
      ),
    };
  }

  /** Whether the space has sealed events: a space without costs its ingests one probe. */
  has(sid: number): boolean {
    return this.st.anyBlock.get(sid) !== undefined;
  }

  /**
   * Seals the space's lowest rows at or below `maxPos` into one block (invariants 1, 2: the
   * caller runs this in a transaction): BLOCK_EVENTS of them, or fewer when `partial`. Returns
   * how many it sealed (0: nothing to do).
   */
  seal(space: string, sid: number, maxPos: number, partial: boolean): number {
    const rows = this.st.tailRows.all(space, maxPos, BLOCK_EVENTS);
    if (rows.length === 0 || (!partial && rows.length < BLOCK_EVENTS)) return 0;
    const records = rows.map((row) => ({ pos: row.pos, event: eventOfRow(row) }));
    const first = records[0]!.pos;
    const last = records[records.length - 1]!.pos;
    const body = encodeBlock(records);
    const bid = Number(
      this.st.insertBlock.run(sid, first, last, records.length, body).lastInsertRowid,
    );
    this.index(sid, bid, records, true);
    this.history.indexBlock(sid, bid, records);
    this.st.deleteTail.run(space, first, last);
    return records.length;
  }

  /** The sealed records after `afterPos`, at most `limit`, in position order (invariant 1). */
  read(sid: number, afterPos: number, limit: number): LocalRecord[] {
    const out: LocalRecord[] = [];
    let after = afterPos;
    while (out.length < limit) {
      const headers = this.st.blocksAfter.all(sid, after, 4);
      if (headers.length === 0) break;
      for (const header of headers) {
        for (const record of this.decoded(header)) {
          if (record.pos <= afterPos) continue;
          out.push(record);
          if (out.length === limit) return out;
        }
        after = header.last_pos;
      }
    }
    return out;
  }

  /** The sealed record at `pos`, if any. */
  atPos(sid: number, pos: number): LocalRecord | undefined {
    const [header] = this.st.blocksAfter.all(sid, pos - 1, 1);
    if (header === undefined) return undefined;
    return this.decoded(header).find((r) => r.pos === pos);
  }

  /** The sealed records with these ids, by id (invariant 3). */
  byId(sid: number, ids: readonly string[]): Map<string, LocalRecord> {
    const found = new Map<string, LocalRecord>();
    if (ids.length === 0) return found;
    const wanted = new Set(ids);
    for (const bid of new Set(this.hits(sid, ids).map((hit) => hit.bid))) {
      const header = this.st.header.get(bid);
      if (header === undefined) continue;
      for (const record of this.decoded(header)) {
        if (wanted.has(record.event.id)) found.set(record.event.id, record);
      }
    }
    return found;
  }

  /** Whether some of these ids may be sealed (a hash hit, unverified): the ingest then looks up. */
  mayHoldIds(sid: number, ids: readonly string[]): boolean {
    return this.st.anyHit.get(JSON.stringify(ids.map(idHash)), sid) !== undefined;
  }

  /** The sealed record at (replica, seq), if any (invariant 4). */
  atSlot(sid: number, replica: string, seq: number): LocalRecord | undefined {
    const rid = this.ridOf(sid, replica, false);
    if (rid === undefined) return undefined;
    const run = this.st.runAt.get(rid, seq);
    if (run === undefined || run.first_seq > seq) return undefined;
    const header = this.st.header.get(run.bid);
    if (header === undefined) return undefined;
    return this.decoded(header).find((r) => r.event.replica === replica && r.event.seq === seq);
  }

  /** Whether some (replica, seq) of `events` is sealed: one probe per replica of the batch. */
  mayHoldSlots(sid: number, events: readonly StoredEventRecord[]): boolean {
    const ranges = new Map<string, [number, number]>();
    for (const { replica, seq } of events) {
      const range = ranges.get(replica);
      if (range === undefined) ranges.set(replica, [seq, seq]);
      else {
        range[0] = Math.min(range[0], seq);
        range[1] = Math.max(range[1], seq);
      }
    }
    for (const [replica, [low, high]] of ranges) {
      const rid = this.ridOf(sid, replica, false);
      if (rid === undefined) continue;
      const run = this.st.runAt.get(rid, low);
      if (run !== undefined && run.first_seq <= high) return true;
    }
    return false;
  }

  /** Removes the sealed event at `pos` (invariant 5); false when it is not sealed. */
  remove(sid: number, pos: number): boolean {
    const [header] = this.st.blocksAfter.all(sid, pos - 1, 1);
    if (header === undefined) return false;
    const records = this.decoded(header);
    const kept = records.filter((r) => r.pos !== pos);
    if (kept.length === records.length) return false;
    this.index(sid, header.bid, records, false);
    this.cache.delete(`${header.bid}:${header.n}`);
    if (kept.length === 0) {
      this.st.deleteBlock.run(header.bid);
      this.history.dropBlock(sid, header.bid, records);
    } else {
      this.st.updateBlock.run(kept.length, encodeBlock(kept), header.bid);
      this.index(sid, header.bid, kept, true);
      this.history.indexBlock(sid, header.bid, kept);
    }
    return true;
  }

  /** The records of block `bid` (cached: invariant 6); none when it is gone. */
  recordsOf(bid: number): LocalRecord[] {
    const header = this.st.header.get(bid);
    return header === undefined ? [] : this.decoded(header);
  }

  /** Adds (or removes) the index entries of a block's records (invariants 3, 4). */
  private index(sid: number, bid: number, records: readonly LocalRecord[], add: boolean): void {
    for (const { event } of records) {
      if (add) this.st.insertId.run(sid, idHash(event.id), bid);
      else this.st.deleteId.run(sid, idHash(event.id), bid);
    }
    for (const run of runsOf(records)) {
      const rid = this.ridOf(sid, run.replica, add)!;
      if (add) this.st.insertRun.run(rid, run.last, run.first, bid);
      else this.st.deleteRun.run(rid, run.last);
    }
  }

  private hits(sid: number, ids: readonly string[]): { hash: number; bid: number }[] {
    return this.st.hits.all(JSON.stringify(ids.map(idHash)), sid);
  }

  /** The integer key of a replica of a space; made when `create`. */
  private ridOf(sid: number, replica: string, create: boolean): number | undefined {
    const key = `${sid}:${replica}`;
    const known = this.rids.get(key);
    if (known !== undefined) return known;
    if (create) this.st.insertRid.run(sid, replica);
    const rid = this.st.getRid.get(sid, replica)?.rid;
    // Kept only once committed-or-read: a rolled-back creation must not stay cached.
    if (rid !== undefined && !create) this.rids.set(key, rid);
    return rid;
  }

  private decoded(header: Header): LocalRecord[] {
    const key = `${header.bid}:${header.n}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const row = this.st.body.get(header.bid);
    const records = row === undefined ? [] : this.archive.decode(row.body);
    this.cache.set(key, records);
    if (this.cache.size > CACHED_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
    return records;
  }
}

/** The held records (rows, then blocks) with the ids of `events`, by id (core/copies.ts). */
export function heldByIdAll(
  db: Database.Database,
  blocks: BlockStore,
  space: string,
  sid: number,
  events: readonly { id: string }[],
): Map<string, LocalRecord> {
  const found = heldById(db, space, events);
  const missing = events.filter((e) => !found.has(e.id)).map((e) => e.id);
  if (missing.length > 0 && blocks.has(sid)) {
    for (const [id, record] of blocks.byId(sid, missing)) found.set(id, record);
  }
  return found;
}

/** The held records (rows, then blocks) at the (replica, seq) of `events`, by slot. */
export function heldBySlotAll(
  db: Database.Database,
  blocks: BlockStore,
  space: string,
  sid: number,
  events: readonly StoredEventRecord[],
): Map<string, LocalRecord> {
  const found = heldBySlot(db, space, events);
  if (!blocks.has(sid)) return found;
  for (const event of events) {
    const slot = slotOf(event);
    if (found.has(slot)) continue;
    const record = blocks.atSlot(sid, event.replica, event.seq);
    if (record !== undefined) found.set(slot, record);
  }
  return found;
}
