/**
 * One ingest's writes in the SQLite server storage (sqlite.ts invariants 2, 3, 8, 11, 12): the
 * events new to a space at the positions after its head, colliding copies resolved over rows and
 * blocks, strict streams decided in the same transaction.
 */
import type Database from 'better-sqlite3';
import { type LostCopy, resolveCopies, slotOf } from '../core/copies.ts';
import { SeqConflictError } from '../core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import {
  acceptedCopies,
  decideStrict,
  isStrictEvent,
  predecessorsToRead,
  prevOf,
  type StrictHead,
  type StrictOrigin,
  type StrictPlace,
  type StrictRejection,
  streamsOf,
} from '../core/strict.ts';
import { type BlockStore, heldByIdAll, heldBySlotAll } from './sqlite-blocks.ts';
import { insertRows, storedBody } from './sqlite-rows.ts';
import type { Statements } from './sqlite-schema.ts';

/** What one ingest wrote, took out (core/copies.ts) and rejected (core/strict.ts). */
export interface Written {
  written: LocalRecord[];
  removed: LocalRecord[];
  lost: LostCopy[];
  rejected: StrictRejection[];
}

/**
 * The events of `events` that strict streams accept (core/strict.ts), decided against the heads
 * read in this transaction, which it moves (invariant 11). A space with no strict stream costs
 * one lookup when the batch holds no strict event.
 */
function keepStrict(
  { db, st, space, sid, blocks }: Where,
  events: readonly StoredEventRecord[],
  copies?: ReadonlyMap<StoredEventRecord, StrictHead>,
): { accepted: readonly StoredEventRecord[]; rejected: StrictRejection[] } {
  if (events.length === 0) return { accepted: events, rejected: [] };
  if (!events.some(isStrictEvent) && st.anyStrictHead.get(space) === undefined) {
    return { accepted: events, rejected: [] };
  }
  const heads = new Map<string, StrictHead>();
  for (const stream of streamsOf(events)) {
    const head = st.getStrictHead.get(space, stream);
    if (head !== undefined) heads.set(stream, { version: head.version, id: head.id });
  }
  // core/strict.ts invariant 8: who wrote the heads that events of the batch name as `prev`.
  const named = new Set(events.map(prevOf));
  const origins = new Map<string, StrictOrigin>();
  const lookups = [...heads.values()].filter((h) => named.has(h.id));
  if (lookups.length > 0) {
    const held = heldByIdAll(db, blocks, space, sid, lookups);
    for (const [stream, head] of heads) {
      const event = held.get(head.id)?.event;
      if (event !== undefined) origins.set(stream, { replica: event.replica, seq: event.seq });
    }
  }
  // core/strict.ts invariant 10: where the events that would begin a strict stream were decided.
  const predecessors = new Map<string, StrictPlace>();
  const firsts = predecessorsToRead(events, heads);
  if (firsts.length > 0) {
    const held = heldByIdAll(
      db,
      blocks,
      space,
      sid,
      firsts.map((id) => ({ id })),
    );
    for (const [id, { event }] of held)
      predecessors.set(id, { stream: event.stream, version: event.version });
  }
  const decision = decideStrict(events, heads, {
    origins,
    predecessors,
    ...(copies !== undefined && { copies }),
  });
  for (const [stream, head] of decision.moved) {
    st.setStrictHead.run(space, stream, head.version, head.id);
  }
  if (decision.rejected.length === 0) return decision;
  // Without the lookup (invariant 8) a held event is found by the unique index only when it is
  // inserted: one the decision turned away is a resent duplicate, not a rejection, when the
  // event held under its id is at its (replica, seq). A command's re-run reuses its ids at new
  // seqs (core/strict.ts invariant 4): its first run, come late, is rejected.
  const refused = new Set(decision.rejected.map((r) => r.id));
  const held = heldByIdAll(
    db,
    blocks,
    space,
    sid,
    events.filter((e) => refused.has(e.id)),
  );
  const rejected = decision.rejected.filter((r) => {
    const h = held.get(r.id)?.event;
    return h === undefined || h.replica !== r.replica || h.seq !== r.seq;
  });
  for (const r of rejected) st.keepRejection.run(space, r.replica, r.seq, JSON.stringify(r));
  return { accepted: decision.accepted, rejected };
}

/**
 * Writes the events new to the space at the positions after its head. `lookUp`: look the batch's
 * ids and (replica, seq) up and resolve colliding copies (core/copies.ts: a held loser is deleted,
 * a reused (replica, seq) that does not win refuses the batch); without it a held id or slot
 * fails the statement (invariant 8).
 */
export function insertEvents(
  where: Where,
  events: readonly StoredEventRecord[],
  lookUp: boolean,
): Written {
  const { db, st, space, sid, blocks } = where;
  let head = st.getHead.get(space)?.head ?? 0;
  let toWrite: readonly StoredEventRecord[] = events;
  let removed: LocalRecord[] = [];
  let lost: LostCopy[] = [];
  let copies: Map<StoredEventRecord, StrictHead> | undefined;
  if (lookUp) {
    const byId = heldByIdAll(db, blocks, space, sid, events);
    const bySlot = heldBySlotAll(db, blocks, space, sid, events);
    // core/strict.ts invariant 7: another copy of an accepted strict event goes to the decision,
    // which rejects it, not to the copies' rule, which may take the accepted one out.
    copies = acceptedCopies(
      events,
      events.map((e) => byId.get(e.id)),
      events.map((e) => bySlot.get(slotOf(e))),
    );
    const others = copies.size === 0 ? events : events.filter((e) => !copies!.has(e));
    const resolution = resolveCopies({
      events: others,
      heldById: others.map((e) => byId.get(e.id)),
      heldBySlot: others.map((e) => bySlot.get(slotOf(e))),
      refuseSeqConflicts: true,
    });
    if (resolution.kind === 'refused') {
      throw new SeqConflictError(resolution.eventId, resolution.keptId);
    }
    ({ write: toWrite, remove: removed, lost } = resolution);
    if (copies.size > 0) {
      const write = new Set(toWrite);
      toWrite = events.filter((e) => write.has(e) || copies!.has(e));
    }
    for (const record of removed) {
      if (st.deleteAtPos.run(space, record.pos).changes === 0) blocks.remove(sid, record.pos);
    }
  }
  const strict = keepStrict(where, toWrite, copies);
  toWrite = strict.accepted;
  const written: LocalRecord[] = [];
  const rows: unknown[] = [];
  for (const event of toWrite) {
    head += 1;
    rows.push(
      space,
      head,
      event.id,
      event.replica,
      event.seq,
      event.stream,
      event.cursor,
      storedBody(event),
    );
    written.push({ event, pos: head });
  }
  insertRows(db, rows);
  if (written.length > 0) st.setHead.run(head, space);
  return { written, removed, lost, rejected: strict.rejected };
}

/** Where a space's events are: its rows (by name) and its blocks (by integer key). */
export interface Where {
  db: Database.Database;
  st: Statements;
  blocks: BlockStore;
  space: string;
  sid: number;
}

/**
 * Whether an ingest must look its ids and slots up first (invariant 12): some of them may be
 * sealed, where the unique indexes of the rows cannot catch them.
 */
export function maySeal({ blocks, sid }: Where, events: readonly StoredEventRecord[]): boolean {
  if (!blocks.has(sid)) return false;
  return (
    blocks.mayHoldIds(
      sid,
      events.map((e) => e.id),
    ) || blocks.mayHoldSlots(sid, events)
  );
}
