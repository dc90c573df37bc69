/**
 * Sealed events on PostgreSQL (issue 18): the tables that hold a space's log older than its hot
 * tail, in blocks of up to BLOCK_EVENTS events (event-blocks.ts), and the lookups every read path
 * makes in them. The compactor that fills them is postgres-compactor.ts. Invariant numbers below
 * 1–11 refer to postgres.ts and postgres-space.ts; these go on:
 *
 * 12. A position is in exactly one place: a row of `events` (the tail) or one block of
 *    `event_blocks`. Blocks hold a space's lowest positions and rows the rest: the compactor only
 *    ever seals the lowest rows, and ingests only append above the head, so within one snapshot
 *    every block of a space lies below every row of it.
 * 13. A sealed event keeps no row and no per-event text: its block holds it, and it is found by
 *    - its position: the block's key is (space, last_pos), and first_pos bounds it below;
 *    - its (replica, seq): `event_runs` holds, per block, each run of consecutive seqs of one
 *      replica (one row for a block of one writer's events);
 *    - its id: an id that is the canonical id of (replica, seq) (core/ids.ts) is found through
 *      that slot; any other id's 32-bit hash is in the block's `ids` array, under a GIN index.
 *    A hit is only a candidate: the block is decoded and the event checked field for field, so
 *    a hash collision costs one decode, never a wrong answer.
 * 14. Moves go from rows to blocks only (sealing, which adds blocks and takes no lock of the
 *    space), and an existing block changes only under the space's row lock (taking out a held
 *    copy that lost: core/copies.ts). A reader that looks in the rows first and then, in a later
 *    statement, in the blocks therefore never misses an event that stays held; an ingest does
 *    so under the space's lock for every space it writes.
 */
import type { PoolClient } from 'pg';
import type { LocalRecord } from '../core/events.ts';
import { EventId } from '../core/ids.ts';
import type { BlockDecoder } from './archive-files.ts';
import { BLOCK_EVENTS, encodeBlock } from './event-blocks.ts';
import { idHash } from './postgres-hash.ts';
import { blockHistory } from './postgres-history.ts';
import { key } from './postgres-rows.ts';

/** The (replica, seq) an id is the canonical id of, if it has that form (core/ids.ts). */
export function canonicalOrigin(id: string): { replica: string; seq: number } | undefined {
  if (EventId.canonicalSlot(id) === undefined) return undefined;
  const dot = id.indexOf('.');
  return { replica: id.slice(0, dot), seq: Number.parseInt(id.slice(dot + 1), 36) };
}

/** A run of consecutive seqs of one replica within a block (invariant 13). */
interface Run {
  replica: string;
  lo: number;
  hi: number;
}

/** The runs of `records` (by replica, then seq), with replicas keyed (invariant 9). */
export function runsOf(records: readonly LocalRecord[]): Run[] {
  const slots = records
    .map((r) => ({ replica: key(r.event.replica), seq: r.event.seq }))
    .sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : a.seq - b.seq));
  const runs: Run[] = [];
  for (const { replica, seq } of slots) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.replica === replica && seq === last.hi + 1) last.hi = seq;
    else runs.push({ replica, lo: seq, hi: seq });
  }
  return runs;
}

/**
 * The key that says a space's blocks hold a custom id of canonical form ("invoice.42": a custom
 * id that is some other slot's canonical id). Only then must a canonical id be looked up by its
 * hash too (invariant 13); for the usual log, a new event's canonical id costs no probe.
 */
function canonicalFormKey(space: string): number {
  return idHash(`\u0000canonical-form\u0000${space}`);
}

/** The `ids` of a block: the hashes of its custom ids, and the marker above if one needs it. */
function blockIdKeys(space: string, records: readonly LocalRecord[]): number[] {
  const out: number[] = [];
  let canonicalForm = false;
  for (const { event } of records) {
    if (EventId.isCanonical(event.id, event.replica, event.seq)) continue;
    out.push(idHash(event.id));
    canonicalForm ||= EventId.canonicalSlot(event.id) !== undefined;
  }
  if (canonicalForm) out.push(canonicalFormKey(space));
  return out;
}

/**
 * Writes `records` (ascending positions, none held elsewhere) as one block of `space` (keyed),
 * with its runs. The caller holds the space's row lock.
 */
export async function insertBlock(
  c: PoolClient,
  s: string,
  space: string,
  records: readonly LocalRecord[],
  bytes: Buffer = encodeBlock(records),
): Promise<void> {
  const first = records[0]!.pos;
  const last = records[records.length - 1]!.pos;
  // Its cursor range and streams, for history (postgres-history.ts 16).
  const { min, max, streams } = blockHistory(records);
  await c.query(
    `INSERT INTO ${s}.event_blocks
       (space, last_pos, first_pos, n, ids, bytes, min_cursor, max_cursor, streams)
     VALUES ($1, $2, $3, $4, $5::int4[], $6, $7, $8, $9::int4[])`,
    [space, last, first, records.length, blockIdKeys(space, records), bytes, min, max, streams],
  );
  const runs = runsOf(records);
  await c.query(
    `INSERT INTO ${s}.event_runs (space, replica, seq_lo, seq_hi, last_pos)
     SELECT $1, r, lo, hi, $5 FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS t(r, lo, hi)`,
    [space, runs.map((r) => r.replica), runs.map((r) => r.lo), runs.map((r) => r.hi), last],
  );
}

async function deleteBlock(c: PoolClient, s: string, space: string, last: number): Promise<void> {
  await c.query(`DELETE FROM ${s}.event_runs WHERE space = $1 AND last_pos = $2`, [space, last]);
  await c.query(`DELETE FROM ${s}.event_blocks WHERE space = $1 AND last_pos = $2`, [space, last]);
}

/**
 * Takes the events at `positions` out of the blocks that hold them (held copies that lost:
 * core/copies.ts), rewriting each block without them. Rare; the caller holds the space's lock.
 * Positions no block holds are ignored.
 */
export async function removeSealed(
  c: PoolClient,
  s: string,
  space: string,
  positions: readonly number[],
  decode: BlockDecoder,
): Promise<void> {
  const gone = new Set(positions);
  for (const pos of positions) {
    // Looked up one by one: an earlier rewrite may have moved the block's key (last_pos).
    const rows = await c.query<{ last_pos: string; first_pos: string; bytes: Buffer }>(
      `SELECT last_pos, first_pos, bytes FROM ${s}.event_blocks
       WHERE space = $1 AND last_pos >= $2 ORDER BY last_pos LIMIT 1`,
      [space, pos],
    );
    const block = rows.rows[0];
    if (block === undefined || Number(block.first_pos) > pos) continue;
    const records = decode(block.bytes);
    const kept = records.filter((r) => !gone.has(r.pos));
    if (kept.length === records.length) continue;
    await deleteBlock(c, s, space, Number(block.last_pos));
    if (kept.length > 0) await insertBlock(c, s, space, kept);
  }
}

/** What a lookup in the blocks asks for: ids (with their events' origins) and slots, unkeyed. */
export interface SealedQuery {
  /** Ids, each with the (replica, seq) of the event that carries it, if any. */
  ids: readonly { id: string; replica?: string; seq?: number }[];
  slots: readonly { replica: string; seq: number }[];
}

/** Runs of consecutive seqs per replica (keyed) of the slots asked for: one probe each. */
function slotRanges(slots: Iterable<{ replica: string; seq: number }>): Run[] {
  const records: LocalRecord[] = [];
  for (const { replica, seq } of slots) {
    if (Number.isSafeInteger(seq)) records.push({ pos: 0, event: { replica, seq } as never });
  }
  const ranges: Run[] = [];
  for (const run of runsOf(records)) {
    const last = ranges[ranges.length - 1];
    // A seq asked for twice: one range.
    if (last !== undefined && last.replica === run.replica && run.lo <= last.hi + 1) {
      last.hi = Math.max(last.hi, run.hi);
    } else ranges.push({ ...run });
  }
  return ranges;
}

/**
 * The sealed records of `space` (keyed) that may be those asked for (invariant 13): every record
 * of each block a key hits, decoded. The caller matches them by id or slot.
 */
export async function sealedCandidates(
  c: PoolClient,
  s: string,
  space: string,
  query: SealedQuery,
  decode: BlockDecoder,
): Promise<LocalRecord[]> {
  const slots = [...query.slots];
  const custom: number[] = [];
  const canonicalForm: number[] = [];
  for (const { id, replica, seq } of query.ids) {
    const origin = canonicalOrigin(id);
    if (origin !== undefined) slots.push(origin);
    const own = replica !== undefined && seq !== undefined && EventId.isCanonical(id, replica, seq);
    // The canonical id of its own event is held, if at all, at that slot, or under its hash as
    // another event's custom id of canonical form, which the space's marker tells of.
    if (own) canonicalForm.push(idHash(id));
    else custom.push(idHash(id));
  }
  const ranges = slotRanges(slots);
  if (ranges.length === 0 && custom.length === 0 && canonicalForm.length === 0) return [];
  // A range finds the runs from the lowest seq_hi at or above its start: none for the seqs of
  // new events, which lie above their replica's sealed ones (one index probe, no entry read).
  // The id hashes are looked up without the space, so that only the GIN index can serve them
  // (the primary key would, with a filter reading every block of the space).
  const result = await c.query<{ bytes: Buffer }>({
    name: `chronicle_${s}_sealed_candidates`,
    text: `WITH hit AS (
       SELECT r.last_pos FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS k(replica, lo, hi)
       JOIN ${s}.event_runs AS r
         ON r.space = $1 AND r.replica = k.replica AND r.seq_hi >= k.lo AND r.seq_lo <= k.hi
       UNION
       SELECT last_pos FROM ${s}.event_blocks WHERE ids && $5::int4[]
       UNION
       SELECT last_pos FROM ${s}.event_blocks WHERE ids && $6::int4[]
         AND EXISTS (SELECT 1 FROM ${s}.event_blocks WHERE ids @> ARRAY[$7::int4])
     )
     SELECT bytes FROM ${s}.event_blocks
     WHERE space = $1 AND last_pos IN (SELECT last_pos FROM hit)`,
    values: [
      space,
      ranges.map((r) => r.replica),
      ranges.map((r) => r.lo),
      ranges.map((r) => r.hi),
      custom,
      canonicalForm,
      canonicalFormKey(space),
    ],
  });
  return result.rows.flatMap((row) => decode(row.bytes));
}

/**
 * Blocks per read of `limit` events: enough for a whole page of full blocks, plus the one that
 * holds `afterPos` itself.
 */
export function blocksFor(limit: number): number {
  return Math.ceil(limit / BLOCK_EVENTS) + 1;
}

/**
 * Up to `limit` records of `space` (keyed) after `afterPos`, from the blocks and then the rows,
 * in ONE statement (one snapshot: invariant 12), and whether they are all there is up to
 * `limit` (`complete`: false when the blocks read may have been followed by more).
 */
export async function readAfter(
  c: PoolClient,
  s: string,
  space: string,
  afterPos: number,
  limit: number,
  decode: BlockDecoder,
  decoded?: DecodedBlocks,
): Promise<{ records: LocalRecord[]; complete: boolean }> {
  const blocks = blocksFor(limit);
  const result = await c.query<{
    pos: string;
    n: number | null;
    bytes: Buffer | null;
    body: string | null;
  }>(
    `WITH b AS MATERIALIZED (
       SELECT last_pos, n, bytes FROM ${s}.event_blocks
       WHERE space = $1 AND last_pos > $2 ORDER BY last_pos LIMIT $4
     )
     SELECT last_pos AS pos, n, bytes, NULL::text AS body FROM b
     UNION ALL
     (SELECT pos, NULL::int, NULL::bytea, body FROM ${s}.events
      WHERE space = $1 AND pos > $2 AND (SELECT count(*) FROM b) < $4
      ORDER BY pos LIMIT $3)`,
    [space, afterPos, limit, blocks],
  );
  const fromBlocks: LocalRecord[] = [];
  const fromRows: LocalRecord[] = [];
  let blockCount = 0;
  for (const row of result.rows) {
    if (row.bytes !== null) {
      blockCount += 1;
      const records = decoded?.get(Number(row.pos), row.n!) ?? decode(row.bytes);
      for (const record of records) {
        if (record.pos > afterPos) fromBlocks.push(record);
      }
      // A page that ends inside this block goes on from it: the next one needs it again.
      if (fromBlocks.length > limit) decoded?.set(Number(row.pos), row.n!, records);
    } else {
      fromRows.push({ pos: Number(row.pos), event: JSON.parse(row.body!) });
    }
  }
  fromBlocks.sort((a, b) => a.pos - b.pos);
  fromRows.sort((a, b) => a.pos - b.pos);
  const records = fromBlocks.concat(fromRows);
  const complete = blockCount < blocks;
  return { records: records.length > limit ? records.slice(0, limit) : records, complete };
}

/**
 * The blocks a space's reads decoded last, so that a catch-up whose page ends inside a block
 * does not inflate it again for the next page. A block is known by (last_pos, n): its events
 * change only when a held copy that lost leaves it, which lowers n (or last_pos), and positions
 * are never reused.
 */
export class DecodedBlocks {
  private readonly blocks = new Map<string, readonly LocalRecord[]>();

  get(lastPos: number, n: number): readonly LocalRecord[] | undefined {
    return this.blocks.get(`${lastPos}:${n}`);
  }

  set(lastPos: number, n: number, records: readonly LocalRecord[]): void {
    this.blocks.set(`${lastPos}:${n}`, records);
    // A few: one per catch-up going on at once, roughly.
    if (this.blocks.size > 4) this.blocks.delete(this.blocks.keys().next().value!);
  }
}

/** The sealed record at `pos` of `space` (keyed), if a block holds it. */
export async function sealedAt(
  c: PoolClient,
  s: string,
  space: string,
  pos: number,
  decode: BlockDecoder,
): Promise<LocalRecord | undefined> {
  const rows = await c.query<{ first_pos: string; bytes: Buffer }>(
    `SELECT first_pos, bytes FROM ${s}.event_blocks
     WHERE space = $1 AND last_pos >= $2 ORDER BY last_pos LIMIT 1`,
    [space, pos],
  );
  const block = rows.rows[0];
  if (block === undefined || Number(block.first_pos) > pos) return undefined;
  return decode(block.bytes).find((r) => r.pos === pos);
}
