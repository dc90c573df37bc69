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
import { resolveCopies, slotOf } from '../core/copies.ts';
import { SeqConflictError, StorageError } from '../core/errors.ts';
import type { LocalRecord } from '../core/events.ts';
import {
  acceptedCopies,
  decideStrict,
  predecessorsToRead,
  prevOf,
  type StrictHead,
  type StrictOrigin,
  type StrictPlace,
} from '../core/strict.ts';
import type { BlockDecoder } from './archive-files.ts';
import { loadPg } from './peers.ts';
import { sealedCandidates } from './postgres-blocks.ts';
import { deleteRows, heldRows, insertRows } from './postgres-event-rows.ts';
import type { Outcome } from './postgres-group-commit.ts';
import { type EventRow, storageError } from './postgres-rows.ts';
import { channelOf, inTransaction } from './postgres-schema.ts';
import {
  heldPredecessors,
  keepRejections,
  readStrictHeads,
  sealedHeadOrigins,
  writeStrictHeads,
} from './postgres-strict-writes.ts';
import type { IngestWritten } from './storage.ts';

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
  /** Reads block bodies and archive stubs alike (archive-files.ts). */
  decode: BlockDecoder;
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
): Promise<Outcome<IngestWritten>[]> {
  try {
    return await inTransaction(c, () => writeAll(c, context, pieces, false));
  } catch (error) {
    // Only a statement the database refused leaves the connection fit for a second attempt.
    if (pieces.length === 1 || !(error instanceof loadPg().DatabaseError)) throw error;
  }
  return inTransaction(c, () => writeAll(c, context, pieces, true));
}

/** The heads and held copies of a group's spaces, as its ingests advance them. */
interface SpaceState {
  name: string;
  /** The head read under the lock. */
  locked: number;
  head: number;
  /** Held records by id and by (replica, seq) (core/copies.ts), as the group changes them. */
  byId: Map<string, LocalRecord>;
  bySlot: Map<string, LocalRecord>;
  /** Whether the space had strict heads when it was locked. */
  hasStrict: boolean;
  /** Strict streams' heads (core/strict.ts) read under the lock, by stream name. */
  strictHeads: Map<string, StrictHead>;
  /** Who wrote the heads (core/strict.ts invariant 8), as read and as the group moved them. */
  strictOrigins: Map<string, StrictOrigin>;
  /** The strict heads the group moved, to be written with it. */
  strictMoved: Map<string, StrictHead>;
}

/** The rows an ingest adds and deletes, with their positions, and how to take them back. */
type Plan =
  | { refused: SeqConflictError }
  | {
      refused?: undefined;
      result: IngestWritten;
      rows: (EventRow & { pos: number })[];
      /** Positions of held losers to delete before the rows go in. */
      deletes: number[];
      undo(): void;
    };

async function writeAll(
  c: PoolClient,
  context: GroupContext,
  pieces: readonly IngestPiece[],
  separately: boolean,
): Promise<Outcome<IngestWritten>[]> {
  const s = context.schema;
  const spaces = await lockSpaces(c, s, pieces, context.decode);
  const outcomes: Outcome<IngestWritten>[] = [];
  if (!separately) {
    const plans = pieces.map((piece) => plan(piece, spaces.get(piece.space)!));
    await deleteRows(
      c,
      s,
      context.decode,
      pieces.flatMap((piece, i) => {
        const p = plans[i]!;
        return p.refused === undefined ? p.deletes.map((pos) => ({ space: piece.space, pos })) : [];
      }),
    );
    await insertRows(
      c,
      s,
      pieces.flatMap((piece, i) => {
        const p = plans[i]!;
        return p.refused === undefined ? p.rows.map((row) => ({ space: piece.space, row })) : [];
      }),
    );
    for (const p of plans) {
      outcomes.push(
        p.refused === undefined ? { ok: true, value: p.result } : { ok: false, error: p.refused },
      );
    }
  } else {
    for (const piece of pieces) {
      const p = plan(piece, spaces.get(piece.space)!);
      if (p.refused !== undefined) {
        outcomes.push({ ok: false, error: p.refused });
        continue;
      }
      if (p.rows.length === 0 && p.deletes.length === 0) {
        outcomes.push({ ok: true, value: p.result });
        continue;
      }
      await c.query('SAVEPOINT ingest');
      try {
        await deleteRows(
          c,
          s,
          context.decode,
          p.deletes.map((pos) => ({ space: piece.space, pos })),
        );
        await insertRows(
          c,
          s,
          p.rows.map((row) => ({ space: piece.space, row })),
        );
        await c.query('RELEASE SAVEPOINT ingest');
        outcomes.push({ ok: true, value: p.result });
      } catch (error) {
        if (!(error instanceof loadPg().DatabaseError)) throw error;
        await c.query('ROLLBACK TO SAVEPOINT ingest');
        p.undo();
        outcomes.push({ ok: false, error: storageError('ingest', error) });
      }
    }
  }
  const moved = [...spaces].flatMap(([space, state]) =>
    [...state.strictMoved].map(([stream, head]) => ({ space, stream, head })),
  );
  await writeStrictHeads(c, s, moved);
  await keepRejections(
    c,
    s,
    outcomes.flatMap((outcome, i) =>
      outcome.ok
        ? (outcome.value.rejected ?? []).map((rejection) => ({
            space: pieces[i]!.space,
            rejection,
          }))
        : [],
    ),
  );
  await advanceHeads(c, context, spaces);
  return outcomes;
}

/**
 * Locks the rows of the group's spaces in key order (invariant 2, and the lock order above), and
 * reads their heads and the copies they hold of the group's ids and (replica, seq) (invariant 3).
 */
async function lockSpaces(
  c: PoolClient,
  s: string,
  pieces: readonly IngestPiece[],
  decode: BlockDecoder,
): Promise<Map<string, SpaceState>> {
  const names = new Map(pieces.map((p) => [p.space, p.name]));
  const keys = [...names.keys()];
  const locked = await c.query<{ space: string; head: string }>(
    `SELECT sp.space, sp.head FROM ${s}.spaces AS sp
     WHERE sp.space = ANY($1::text[]) ORDER BY sp.space FOR UPDATE OF sp`,
    [keys],
  );
  // Whether a space has strict heads, read once its lock is held: they are written under it
  // only. A statement of its own, so that it reads what a server that held the lock before us
  // committed: read in the locking statement, it would use that statement's snapshot, taken
  // before the wait (test/server/postgres-strict-race.test.ts).
  const strict = await c.query<{ space: string }>(
    `SELECT DISTINCT h.space FROM ${s}.strict_heads AS h WHERE h.space = ANY($1::text[])`,
    [keys],
  );
  const hasStrict = new Set(strict.rows.map((r) => r.space));
  const spaces = new Map<string, SpaceState>();
  for (const row of locked.rows) {
    const head = Number(row.head);
    spaces.set(row.space, {
      name: names.get(row.space)!,
      locked: head,
      head,
      byId: new Map(),
      bySlot: new Map(),
      hasStrict: hasStrict.has(row.space),
      strictHeads: new Map(),
      strictOrigins: new Map(),
      strictMoved: new Map(),
    });
  }
  for (const [space, name] of names) {
    if (!spaces.has(space)) throw new StorageError('STORAGE', `space ${name} vanished`);
  }
  const rowSpaces = pieces.flatMap((p) => p.rows.map(() => p.space));
  const rows = pieces.flatMap((p) => p.rows);
  // A seq no BIGINT holds must fail its own ingest (at its insert), not the group's lookup.
  const slotKeys = pieces.flatMap((p) =>
    p.rows.filter((r) => Number.isSafeInteger(r.seq)).map((r) => ({ space: p.space, row: r })),
  );
  // One after another: a pg client runs one query at a time (it queues the rest, and warns that
  // it will stop queueing).
  // The strict heads of the streams the group writes, in spaces that have some.
  const pairs = new Map<string, { space: string; stream: string }>();
  for (const p of pieces) {
    if (spaces.get(p.space)?.hasStrict !== true) continue;
    for (const r of p.rows)
      pairs.set(`${p.space}\u0000${r.stream}`, { space: p.space, stream: r.stream });
  }
  for (const { space, stream, head, origin } of await readStrictHeads(c, s, [...pairs.values()])) {
    spaces.get(space)?.strictHeads.set(stream, head);
    if (origin !== undefined) spaces.get(space)?.strictOrigins.set(stream, origin);
  }
  const byId = await heldRows(
    c,
    s,
    `id = k.a`,
    rowSpaces,
    rows.map((r) => r.id),
  );
  const bySlot = await heldRows(
    c,
    s,
    `replica = k.a AND seq = k.b ORDER BY cursor LIMIT 1`,
    slotKeys.map((k) => k.space),
    slotKeys.map((k) => k.row.replica),
    slotKeys.map((k) => k.row.seq),
  );
  for (const held of byId) spaces.get(held.space)!.byId.set(held.record.event.id, held.record);
  for (const held of bySlot) {
    spaces.get(held.space)!.bySlot.set(slotOf(held.record.event), held.record);
  }
  // After the rows, in statements of their own: the compactor moves rows into blocks without
  // the space's lock, and a later statement sees what an earlier one missed (postgres-blocks.ts
  // 14). Every space, sealed or not yet: its first block may have been committed meanwhile.
  for (const space of spaces.keys())
    await heldSealed(c, s, space, pieces, spaces.get(space)!, decode);
  // core/strict.ts invariant 8: who wrote a sealed head that the group's events name.
  for (const [space, state] of spaces) {
    if (!state.hasStrict) continue;
    const named = new Set(
      pieces.filter((p) => p.space === space).flatMap((p) => p.rows.map((r) => prevOf(r.event))),
    );
    await sealedHeadOrigins(c, s, space, state.strictHeads, state.strictOrigins, named, decode);
  }
  // core/strict.ts invariant 10: the events that would begin a strict stream name as `prev`.
  for (const [space, state] of spaces) {
    const events = pieces
      .filter((p) => p.space === space)
      .flatMap((p) => p.rows.map((r) => r.event));
    await heldPredecessors(c, s, space, events, state.strictHeads, state.byId, decode);
  }
  return spaces;
}

/**
 * Adds to `state` the sealed copies (postgres-blocks.ts) of the ids and (replica, seq) of the
 * group's events in `space` that no row holds (invariant 3): an old id re-arriving is known.
 */
async function heldSealed(
  c: PoolClient,
  s: string,
  space: string,
  pieces: readonly IngestPiece[],
  state: SpaceState,
  decode: BlockDecoder,
): Promise<void> {
  // An event that cannot be stored (no id, a replica that is not a string) fails its own ingest
  // where it is written, not the group's lookups.
  const events = pieces
    .filter((p) => p.space === space)
    .flatMap((p) => p.rows.map((r) => r.event))
    .filter(
      (e) =>
        typeof e.id === 'string' && typeof e.replica === 'string' && typeof e.cursor === 'string',
    );
  const ids = new Map(events.filter((e) => !state.byId.has(e.id)).map((e) => [e.id, e] as const));
  const slots = new Map(
    events.filter((e) => !state.bySlot.has(slotOf(e))).map((e) => [slotOf(e), e] as const),
  );
  if (ids.size === 0 && slots.size === 0) return;
  const candidates = await sealedCandidates(
    c,
    s,
    space,
    {
      ids: [...ids.values()].map((e) => ({ id: e.id, replica: e.replica, seq: e.seq })),
      slots: [...slots.values()].map((e) => ({ replica: e.replica, seq: e.seq })),
    },
    decode,
  );
  for (const record of candidates) {
    const { event } = record;
    if (ids.has(event.id)) state.byId.set(event.id, record);
    const slot = slotOf(event);
    if (!slots.has(slot)) continue;
    const held = state.bySlot.get(slot);
    // As the rows' lookup: the first copy in cursor order, if a slot is held twice.
    if (held === undefined || event.cursor < held.event.cursor) state.bySlot.set(slot, record);
  }
}

/**
 * The next positions for the events of `piece` that are new or win over a held copy, the held
 * losers to delete, or the refusal of the piece (core/copies.ts; invariants 2, 3).
 */
function plan(piece: IngestPiece, space: SpaceState): Plan {
  const events = piece.rows.map((r) => r.event);
  // core/strict.ts invariant 7: another copy of an accepted strict event goes to the decision,
  // which rejects it, not to the copies' rule, which may take the accepted one out.
  const copies = acceptedCopies(
    events,
    events.map((e) => space.byId.get(e.id)),
    events.map((e) => space.bySlot.get(slotOf(e))),
  );
  const others = copies.size === 0 ? events : events.filter((e) => !copies.has(e));
  const resolution = resolveCopies({
    events: others,
    heldById: others.map((e) => space.byId.get(e.id)),
    heldBySlot: others.map((e) => space.bySlot.get(slotOf(e))),
    refuseSeqConflicts: true,
  });
  if (resolution.kind === 'refused') {
    return { refused: new SeqConflictError(resolution.eventId, resolution.keptId) };
  }
  const write = new Set(resolution.write);
  const start = space.head;
  const movedBefore = new Map(space.strictMoved);
  const originsBefore = new Map(space.strictOrigins);
  const decided =
    copies.size === 0 ? resolution.write : events.filter((e) => write.has(e) || copies.has(e));
  const heads = new Map([...space.strictHeads, ...space.strictMoved]);
  // core/strict.ts invariant 10, from the held records: those read under the lock, and the
  // events earlier ingests of the group wrote.
  const predecessors = new Map<string, StrictPlace>();
  for (const id of predecessorsToRead(decided, heads)) {
    const held = space.byId.get(id)?.event;
    if (held !== undefined) predecessors.set(id, { stream: held.stream, version: held.version });
  }
  const strict = decideStrict(decided, heads, {
    copies,
    origins: space.strictOrigins,
    predecessors,
  });
  for (const [stream, head] of strict.moved) {
    space.strictMoved.set(stream, head);
    const last = strict.accepted.findLast((e) => e.stream === stream)!;
    space.strictOrigins.set(stream, { replica: last.replica, seq: last.seq });
  }
  const changes: [Map<string, LocalRecord>, string, LocalRecord | undefined][] = [];
  const set = (map: Map<string, LocalRecord>, k: string, value: LocalRecord | undefined) => {
    changes.push([map, k, map.get(k)]);
    if (value === undefined) map.delete(k);
    else map.set(k, value);
  };
  for (const record of resolution.remove) {
    set(space.byId, record.event.id, undefined);
    set(space.bySlot, slotOf(record.event), undefined);
  }
  const rowOf = new Map(piece.rows.map((r) => [r.event, r]));
  const records: LocalRecord[] = [];
  const rows: (EventRow & { pos: number })[] = [];
  for (const event of strict.accepted) {
    space.head += 1;
    const record = { event, pos: space.head };
    rows.push({ ...rowOf.get(event)!, pos: space.head });
    records.push(record);
    set(space.byId, event.id, record);
    set(space.bySlot, slotOf(event), record);
  }
  const undo = () => {
    space.head = start;
    space.strictMoved = movedBefore;
    space.strictOrigins = originsBefore;
    for (const [map, k, before] of changes.reverse()) {
      if (before === undefined) map.delete(k);
      else map.set(k, before);
    }
  };
  return {
    result: {
      written: records,
      removed: resolution.remove,
      lost: resolution.lost,
      ...(strict.rejected.length > 0 ? { rejected: strict.rejected } : {}),
    },
    rows,
    deletes: resolution.remove.map((r) => r.pos),
    undo,
  };
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
