/**
 * The statements over the `events` table of a group's ingest on PostgreSQL (postgres-ingest.ts):
 * the rows held under the group's ids and (replica, seq), the deletes of held losers, and the
 * inserts of new rows. The invariant numbers refer to the header of postgres.ts.
 *
 * Invariants:
 * 1. Lookups probe the index once per key (a LATERAL subquery that cannot be flattened): the
 *    planner cannot trade the probes for a scan of the whole table.
 * 2. A held loser that is not a row any more has been sealed meanwhile (postgres-blocks.ts): it is
 *    removed from its block, in the same transaction.
 * 3. Inserts go 1000 rows to a statement, full chunks as a prepared statement per schema.
 */
import type { PoolClient } from 'pg';
import type { LocalRecord } from '../core/events.ts';
import type { BlockDecoder } from './archive-files.ts';
import { removeSealed } from './postgres-blocks.ts';
import { type EventRow, eventOfRow } from './postgres-rows.ts';

/** Held rows matching `where` for each key (one index probe each, as storedIds below). */
export async function heldRows(
  c: PoolClient,
  s: string,
  where: string,
  spaces: readonly string[],
  a: readonly string[],
  b?: readonly number[],
): Promise<{ space: string; record: LocalRecord }[]> {
  if (spaces.length === 0) return [];
  const result = await c.query<{ space: string; pos: string; body: string }>(
    `SELECT e.space, e.pos, e.body FROM unnest($1::text[], $2::text[]${b === undefined ? '' : ', $3::bigint[]'}) AS k(space, a${b === undefined ? '' : ', b'})
     CROSS JOIN LATERAL (
       SELECT space, pos, body FROM ${s}.events WHERE space = k.space AND ${where} OFFSET 0
     ) AS e`,
    b === undefined ? [spaces, a] : [spaces, a, b],
  );
  return result.rows.map((row) => ({
    space: row.space,
    record: { pos: Number(row.pos), event: eventOfRow(row) },
  }));
}

/**
 * Which of the (space, id) pairs, as stored, the events table holds. One index probe per pair:
 * the subquery cannot be flattened (OFFSET 0), so the planner cannot trade the probes for a scan
 * of the whole table, which it did for a few thousand ids (a join, or `id = ANY($1)`).
 */
export async function storedIds(
  c: PoolClient,
  s: string,
  spaces: readonly string[],
  ids: readonly string[],
): Promise<{ space: string; id: string }[]> {
  if (ids.length === 0) return [];
  const rows = await c.query<{ space: string; id: string }>(
    `SELECT e.space, e.id FROM unnest($1::text[], $2::text[]) AS k(space, id)
     CROSS JOIN LATERAL (
       SELECT space, id FROM ${s}.events WHERE space = k.space AND id = k.id OFFSET 0
     ) AS e`,
    [spaces, ids],
  );
  return rows.rows;
}

/** Deletes held losers: their rows, or (rare) their events from the blocks that hold them. */
export async function deleteRows(
  c: PoolClient,
  s: string,
  decode: BlockDecoder,
  rows: readonly { space: string; pos: number }[],
): Promise<void> {
  if (rows.length === 0) return;
  const deleted = await c.query<{ space: string; pos: string }>(
    `DELETE FROM ${s}.events AS e USING unnest($1::text[], $2::bigint[]) AS d(space, pos)
     WHERE e.space = d.space AND e.pos = d.pos RETURNING e.space, e.pos`,
    [rows.map((r) => r.space), rows.map((r) => r.pos)],
  );
  const gone = new Set(deleted.rows.map((r) => `${r.pos}\u0000${r.space}`));
  const sealed = new Map<string, number[]>();
  for (const { space, pos } of rows) {
    if (gone.has(`${pos}\u0000${space}`)) continue;
    sealed.set(space, [...(sealed.get(space) ?? []), pos]);
  }
  for (const [space, positions] of sealed) await removeSealed(c, s, space, positions, decode);
}

/**
 * Rows per INSERT (8 parameters each; PostgreSQL takes at most 65,535). Measured on 4,400 rows:
 * full chunks as a prepared statement (parsed and planned once per connection) took 50-55 ms,
 * the same unprepared 58-77 ms, one INSERT of unnested arrays 71-108 ms.
 */
const INSERT_CHUNK = 1000;
const ROW_PARAMS = 8;
/** The text of a full chunk's INSERT, for the last schema it was made for. */
let chunkText = { schema: '', text: '' };

function insertText(s: string, count: number): string {
  if (count === INSERT_CHUNK && chunkText.schema === s) return chunkText.text;
  const tuples: string[] = [];
  for (let row = 0; row < count; row++) {
    const first = row * ROW_PARAMS;
    const marks = Array.from({ length: ROW_PARAMS }, (_, k) => `$${first + k + 1}`);
    tuples.push(`(${marks.join(',')})`);
  }
  const text = `INSERT INTO ${s}.events (space, pos, id, replica, seq, stream, cursor, body)
    VALUES ${tuples.join(',')}`;
  if (count === INSERT_CHUNK) chunkText = { schema: s, text };
  return text;
}

export async function insertRows(
  c: PoolClient,
  s: string,
  rows: readonly { space: string; row: EventRow & { pos: number } }[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const part = rows.slice(i, i + INSERT_CHUNK);
    const values: unknown[] = [];
    for (const { space, row } of part) {
      values.push(space, row.pos, row.id, row.replica, row.seq, row.stream, row.cursor, row.body);
    }
    const text = insertText(s, part.length);
    await c.query(
      part.length === INSERT_CHUNK
        ? { name: `chronicle_${s}_insert_events`, text, values }
        : { text, values },
    );
  }
}
