/**
 * The transaction of one group of ingests on PostgreSQL (postgres.ts invariants 1–3, 10): the
 * `commit` of an AsyncGroupCommit (postgres-group-commit.ts). The invariant numbers refer to the
 * header of postgres.ts.
 *
 * A group is written with a handful of statements, however many ingests and spaces it holds:
 * BEGIN; lock the spaces' rows (in one order, see below) and read their heads; look up which ids
 * the spaces hold (one statement for every id of the group); insert the new rows (1000 rows a
 * statement); advance the heads and NOTIFY (one statement); COMMIT.
 *
 * A statement the database refuses (a bad row) fails the whole transaction, so then the group is
 * written again, each ingest under a savepoint of its own: the failing one is rolled back and
 * rejected alone, and the positions it would have taken go to the ingests after it. A group of
 * one ingest fails as a whole instead, since that ingest is all it holds.
 *
 * Lock order: the rows of a group's spaces are locked by one statement in the order of the space
 * key, as every server does, so two groups sharing spaces (on this or another server) wait for
 * each other instead of deadlocking.
 */
import type { PoolClient } from 'pg';
import pg from 'pg';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord } from '../core/events.ts';
import type { Outcome } from './postgres-group-commit.ts';
import { type EventRow, storageError } from './postgres-rows.ts';
import { channelOf, inTransaction } from './postgres-schema.ts';

/** One ingest handed to the group commit: rows of one space, prepared off the group's path. */
export interface IngestPiece {
  /** The space as stored (invariant 9). */
  space: string;
  /** The space's name, for the notification (postgres-schema.ts). */
  name: string;
  rows: readonly EventRow[];
}

export interface GroupContext {
  schema: string;
  /** Tells this instance's notifications from other servers' (invariant 5). */
  instanceId: string;
}

/**
 * Writes `pieces` in one transaction and resolves after its COMMIT: the records each stored, or
 * why it failed (rolled back alone). Throws when the transaction as a whole fails.
 */
export async function writeGroup(
  c: PoolClient,
  context: GroupContext,
  pieces: readonly IngestPiece[],
): Promise<Outcome<LocalRecord[]>[]> {
  try {
    return await inTransaction(c, () => writeAll(c, context, pieces, false));
  } catch (error) {
    // Only a statement the database refused leaves the connection fit for a second attempt.
    if (pieces.length === 1 || !(error instanceof pg.DatabaseError)) throw error;
  }
  return inTransaction(c, () => writeAll(c, context, pieces, true));
}

/** The heads and held ids of a group's spaces, as its ingests advance them. */
interface SpaceState {
  name: string;
  /** The head read under the lock. */
  locked: number;
  head: number;
  /** Ids held in the space or taken by an earlier ingest of the group, as stored. */
  seen: Set<string>;
}

/** The rows an ingest adds, with their positions, and how to take them back. */
interface Plan {
  records: LocalRecord[];
  rows: (EventRow & { pos: number })[];
  undo(): void;
}

async function writeAll(
  c: PoolClient,
  context: GroupContext,
  pieces: readonly IngestPiece[],
  separately: boolean,
): Promise<Outcome<LocalRecord[]>[]> {
  const s = context.schema;
  const spaces = await lockSpaces(c, s, pieces);
  const outcomes: Outcome<LocalRecord[]>[] = [];
  if (!separately) {
    const plans = pieces.map((piece) => plan(piece, spaces.get(piece.space)!));
    await insertRows(
      c,
      s,
      pieces.flatMap((piece, i) => plans[i]!.rows.map((row) => ({ space: piece.space, row }))),
    );
    for (const p of plans) outcomes.push({ ok: true, value: p.records });
  } else {
    for (const piece of pieces) {
      const p = plan(piece, spaces.get(piece.space)!);
      if (p.rows.length === 0) {
        outcomes.push({ ok: true, value: [] });
        continue;
      }
      await c.query('SAVEPOINT ingest');
      try {
        await insertRows(
          c,
          s,
          p.rows.map((row) => ({ space: piece.space, row })),
        );
        await c.query('RELEASE SAVEPOINT ingest');
        outcomes.push({ ok: true, value: p.records });
      } catch (error) {
        if (!(error instanceof pg.DatabaseError)) throw error;
        await c.query('ROLLBACK TO SAVEPOINT ingest');
        p.undo();
        outcomes.push({ ok: false, error: storageError('ingest', error) });
      }
    }
  }
  await advanceHeads(c, context, spaces);
  return outcomes;
}

/**
 * Locks the rows of the group's spaces in key order (invariant 2, and the lock order above), and
 * reads their heads and which of the group's ids they hold (invariant 3).
 */
async function lockSpaces(
  c: PoolClient,
  s: string,
  pieces: readonly IngestPiece[],
): Promise<Map<string, SpaceState>> {
  const names = new Map(pieces.map((p) => [p.space, p.name]));
  const keys = [...names.keys()];
  const locked = await c.query<{ space: string; head: string }>(
    `SELECT space, head FROM ${s}.spaces WHERE space = ANY($1::text[]) ORDER BY space FOR UPDATE`,
    [keys],
  );
  const spaces = new Map<string, SpaceState>();
  for (const row of locked.rows) {
    const head = Number(row.head);
    spaces.set(row.space, { name: names.get(row.space)!, locked: head, head, seen: new Set() });
  }
  for (const [space, name] of names) {
    if (!spaces.has(space)) throw new StorageError('STORAGE', `space ${name} vanished`);
  }
  const held = await storedIds(
    c,
    s,
    pieces.flatMap((p) => p.rows.map(() => p.space)),
    pieces.flatMap((p) => p.rows.map((r) => r.id)),
  );
  for (const row of held) spaces.get(row.space)!.seen.add(row.id);
  return spaces;
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

/** The next positions for the ids of `piece` its space does not hold yet (invariants 2, 3). */
function plan(piece: IngestPiece, space: SpaceState): Plan {
  const start = space.head;
  const records: LocalRecord[] = [];
  const rows: (EventRow & { pos: number })[] = [];
  for (const row of piece.rows) {
    // A repeat within the batch, or of an earlier ingest of the group, is stored once.
    if (space.seen.has(row.id)) continue;
    space.seen.add(row.id);
    space.head += 1;
    rows.push({ ...row, pos: space.head });
    records.push({ event: row.event, pos: space.head });
  }
  const undo = () => {
    space.head = start;
    for (const row of rows) space.seen.delete(row.id);
  };
  return { records, rows, undo };
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

async function insertRows(
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

/** Stores the heads that moved, and tells the other servers (postgres-schema.ts invariant 3). */
async function advanceHeads(
  c: PoolClient,
  context: GroupContext,
  spaces: Map<string, SpaceState>,
): Promise<void> {
  const s = context.schema;
  const keys: string[] = [];
  const heads: number[] = [];
  const notices: string[] = [];
  for (const [space, state] of spaces) {
    if (state.head === state.locked) continue;
    keys.push(space);
    heads.push(state.head);
    notices.push(JSON.stringify({ space: state.name, head: state.head, from: context.instanceId }));
  }
  if (keys.length === 0) return;
  // Sent on commit only; the UPDATE of a data-modifying WITH runs whatever the SELECT reads.
  await c.query(
    `WITH moved AS (
       UPDATE ${s}.spaces AS sp SET head = m.head
       FROM unnest($1::text[], $2::bigint[]) AS m(space, head) WHERE sp.space = m.space
     )
     SELECT pg_notify($3, n) FROM unnest($4::text[]) AS n`,
    [keys, heads, channelOf(s), notices],
  );
}
