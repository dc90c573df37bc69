/**
 * History in the total order on PostgreSQL (issue 18 part 3, docs/storage-growth.md):
 * `SpaceLog.readByCursor` over the hot tail's rows and the sealed blocks (postgres-blocks.ts),
 * with the meaning of a replica's readByCursor (storage/adapter.ts invariants 4 and 5). The
 * numbers go on from postgres-blocks.ts:
 *
 * 15. Rows are found through the `events_by_cursor` index on `(space, cursor COLLATE "C")`: a
 *    page of rows reads at most `limit` rows. Cursors are stored keyed (JSON strings of base-36
 *    digits, lowercase letters and dots), whose byte order is the cursors' order; "C" makes the
 *    database compare bytes whatever its collation. A stream read walks that index through the
 *    range and keeps the stream's rows: bounded by the tail where compaction runs.
 * 16. Each block records its smallest and largest cursor (`min_cursor`, `max_cursor`, keyed, "C")
 *    and the 32-bit hashes of its streams (`streams`). A read fetches the headers (no bytes) of
 *    the blocks whose range (and stream set) meets the query, in range order, a few at a time,
 *    and decodes them only until `limit` events are found that no further block can precede. A
 *    late event widens its block's range: still correct, one more block decoded. A hash
 *    collision costs a decode, never a wrong answer: decoded events are filtered.
 * 17. A block without a range (sealed by a server of the code before history, which leaves the
 *    columns NULL) meets every query and is decoded by every read, first; the next read fills in
 *    its range (fillUnranged). Opening a database fills the blocks it already holds
 *    (postgres-schema.ts). So servers of both codes may share a database: a rolling upgrade.
 * 18. A read runs in one REPEATABLE READ transaction (one snapshot): the compactor cannot move an
 *    event between the rows and the blocks under it.
 * 19. A page holds at most `limit` events; while it is built, at most `limit` plus one block's.
 */
import type { PoolClient } from 'pg';
import type { LocalRecord } from '../core/events.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import type { BlockDecoder } from './archive-files.ts';
import { BLOCK_EVENTS, decodeBlock } from './event-blocks.ts';
import { idHash } from './postgres-hash.ts';
import { eventOfRow, key, within } from './postgres-rows.ts';

/** Above every keyed cursor: an open upper bound. */
const TOP = key('~');

/** The history columns of a block (invariant 16): its keyed cursor range and stream hashes. */
export function blockHistory(records: readonly LocalRecord[]): {
  min: string;
  max: string;
  streams: number[];
} {
  let min = records[0]!.event.cursor;
  let max = min;
  const streams = new Set<number>();
  for (const { event } of records) {
    if (event.cursor < min) min = event.cursor;
    if (event.cursor > max) max = event.cursor;
    streams.add(idHash(event.stream));
  }
  return { min: key(min), max: key(max), streams: [...streams].sort((a, b) => a - b) };
}

interface Header {
  last_pos: string;
  min_cursor: string;
  max_cursor: string;
}

/** The bounds of `query`, keyed: `low` < cursor <= `high` forward, `low` <= cursor < `high` back. */
function bounds(query: CursorQuery): { low: string; high: string; reverse: boolean } {
  const reverse = query.reverse === true;
  const high = reverse ? query.after : query.until;
  const low = reverse ? query.until : query.after;
  return {
    low: low === undefined ? key('') : key(low),
    high: high === undefined ? TOP : key(high),
    reverse,
  };
}

/** The tail rows matching `query` (invariant 15), at most `limit`, in its order. */
async function rowsOf(
  c: PoolClient,
  s: string,
  space: string,
  query: CursorQuery,
): Promise<LocalRecord[]> {
  const { low, high, reverse } = bounds(query);
  const cursor = 'cursor COLLATE "C"';
  const range = reverse
    ? `${cursor} < $2 AND ${cursor} >= $3`
    : `${cursor} > $3 AND ${cursor} <= $2`;
  const stream = query.stream === undefined ? '' : 'AND stream = $5';
  const values: unknown[] = [space, high, low, query.limit];
  if (query.stream !== undefined) values.push(key(query.stream));
  const rows = await c.query<{ pos: string; body: string }>(
    `SELECT pos, body FROM ${s}.events WHERE space = $1 AND ${range} ${stream}
     ORDER BY ${cursor} ${reverse ? 'DESC' : ''} LIMIT $4`,
    values,
  );
  return rows.rows.map((row) => ({ pos: Number(row.pos), event: eventOfRow(row) }));
}

/** Headers of blocks fetched per statement: a page's worth of full blocks, and a few more. */
function headerChunk(limit: number): number {
  return Math.ceil(limit / BLOCK_EVENTS) + 4;
}

/**
 * The sealed events matching `query`, merged with `rows` (the tail's page, in order): the page
 * of the whole log (invariants 16, 17, 19). Runs in the caller's snapshot.
 */
async function sealedPage(
  c: PoolClient,
  s: string,
  space: string,
  query: CursorQuery,
  rows: LocalRecord[],
  decode: BlockDecoder,
): Promise<{ page: LocalRecord[]; unranged: number }> {
  const { low, high, reverse } = bounds(query);
  const limit = query.limit;
  const inRange = (cursor: string) => {
    const k = key(cursor);
    return reverse ? k < high && k >= low : k > low && k <= high;
  };
  const before = reverse
    ? (a: LocalRecord, b: LocalRecord) => (a.event.cursor > b.event.cursor ? -1 : 1)
    : (a: LocalRecord, b: LocalRecord) => (a.event.cursor < b.event.cursor ? -1 : 1);
  let page = rows;
  const take = (records: readonly LocalRecord[]) => {
    const found = records.filter(
      (r) =>
        inRange(r.event.cursor) && (query.stream === undefined || r.event.stream === query.stream),
    );
    if (found.length === 0) return;
    page = [...page, ...found].sort(before);
    if (page.length > limit) page = page.slice(0, limit);
  };
  const body = async (lastPos: string) => {
    const result = await c.query<{ bytes: Buffer }>(
      `SELECT bytes FROM ${s}.event_blocks WHERE space = $1 AND last_pos = $2`,
      [space, lastPos],
    );
    return result.rows[0] === undefined ? [] : decode(result.rows[0].bytes);
  };
  // Invariant 17: blocks without a range meet every query.
  const unranged = await c.query<{ last_pos: string }>(
    `SELECT last_pos FROM ${s}.event_blocks WHERE space = $1 AND min_cursor IS NULL`,
    [space],
  );
  for (const { last_pos } of unranged.rows) take(await body(last_pos));

  // Forward: blocks with an event in (low, high], by smallest cursor; reverse: in [low, high),
  // by largest cursor, down. Keyset pages over (edge, last_pos).
  const edge = reverse ? 'max_cursor' : 'min_cursor';
  const order = reverse ? 'DESC' : 'ASC';
  const chunk = headerChunk(limit);
  let from: Header | undefined;
  for (;;) {
    const values: unknown[] = [];
    const $ = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    const conditions = [
      `space = ${$(space)}`,
      reverse
        ? `min_cursor COLLATE "C" < ${$(high)} AND max_cursor COLLATE "C" >= ${$(low)}`
        : `max_cursor COLLATE "C" > ${$(low)} AND min_cursor COLLATE "C" <= ${$(high)}`,
    ];
    if (query.stream !== undefined) {
      conditions.push(`streams && ARRAY[${$(idHash(query.stream))}::int4]`);
    }
    if (from !== undefined) {
      conditions.push(
        `(${edge} COLLATE "C", last_pos) ${reverse ? '<' : '>'} (${$(from[edge])}::text COLLATE "C", ${$(from.last_pos)}::bigint)`,
      );
    }
    const headers = await c.query<Header>(
      `SELECT last_pos, min_cursor, max_cursor FROM ${s}.event_blocks
       WHERE ${conditions.join(' AND ')}
       ORDER BY ${edge} COLLATE "C" ${order}, last_pos ${order} LIMIT ${$(chunk)}`,
      values,
    );
    for (const header of headers.rows) {
      if (page.length >= limit) {
        // No event of this block, nor of any after it in this order, can enter the page.
        const last = key(page[limit - 1]!.event.cursor);
        if (reverse ? header.max_cursor < last : header.min_cursor > last) {
          return { page, unranged: unranged.rows.length };
        }
      }
      take(await body(header.last_pos));
    }
    if (headers.rows.length < chunk) return { page, unranged: unranged.rows.length };
    from = headers.rows[headers.rows.length - 1]!;
  }
}

/**
 * `SpaceLog.readByCursor` of `space` (keyed) on PostgreSQL (invariants 15–19); fills in the
 * ranges of blocks it found without one (invariant 17), after the read.
 */
export async function readByCursor(
  c: PoolClient,
  s: string,
  space: string,
  query: CursorQuery,
  decode: BlockDecoder,
): Promise<LocalRecord[]> {
  const limit = Math.max(0, Math.floor(query.limit));
  if (limit === 0) return [];
  const q = { ...query, limit };
  const result = await within(c, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async () =>
    sealedPage(c, s, space, q, await rowsOf(c, s, space, q), decode),
  );
  if (result.unranged > 0) await within(c, 'BEGIN', () => fillUnranged(c, s, space, decode));
  return result.page;
}

/**
 * Gives the blocks of `space` (keyed; every space when undefined) that lack a range theirs
 * (invariant 17). A block changes only by being deleted and written again (postgres-blocks.ts
 * removeSealed), so an update keyed by (space, last_pos, n) never writes a stale range. In the
 * caller's transaction.
 */
export async function fillUnranged(
  c: PoolClient,
  s: string,
  space?: string,
  decode: BlockDecoder = decodeBlock,
): Promise<number> {
  const blocks = await c.query<{ space: string; last_pos: string; n: number; bytes: Buffer }>(
    `SELECT space, last_pos, n, bytes FROM ${s}.event_blocks
     WHERE min_cursor IS NULL ${space === undefined ? '' : 'AND space = $1'}`,
    space === undefined ? [] : [space],
  );
  for (const block of blocks.rows) {
    const records = decode(block.bytes);
    if (records.length === 0) continue;
    const { min, max, streams } = blockHistory(records);
    await c.query(
      `UPDATE ${s}.event_blocks SET min_cursor = $4, max_cursor = $5, streams = $6::int4[]
       WHERE space = $1 AND last_pos = $2 AND n = $3 AND min_cursor IS NULL`,
      [block.space, block.last_pos, block.n, min, max, streams],
    );
  }
  return blocks.rows.length;
}
