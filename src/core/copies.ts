/**
 * Which copy of an event a replica keeps when two copies collide (RELIABILITY cases 34 and 35),
 * pure. Two copies collide when they share an id but differ (stream, type, schema, data, meta or
 * cursor: one id appended offline on two replicas, or a device restored from a backup reusing
 * canonical ids), or share an origin `(replica, seq)` under two ids (a hostile writer, or a
 * restored device reusing its seqs with ids of its own).
 *
 * Invariants:
 * 1. The rule does not depend on arrival order: of two colliding copies, the one whose cursor
 *    sorts first in the total order (hlc, replica, seq) wins ("first writer wins"); equal cursors
 *    fall back to the canonical JSON of the whole copy (keys sorted), so every replica, client or
 *    server, peer-to-peer or through a server, picks the same copy.
 * 2. A winner never sorts after the loser it replaces, so a projection that folded the loser
 *    rebases from before the winner's cursor, which also undoes the loser (store.ts rebase).
 * 3. A held copy that loses leaves the log; the winner is written at a new local position (so a
 *    peer whose checkpoint is past the loser's position still receives it): positions may have
 *    holes where losers were.
 * 4. Every copy that loses, held or incoming, is reported (`lost`) with its code and id: never a
 *    silent drop.
 * 5. In `refuseSeqConflicts` mode (the server) an incoming event whose (replica, seq) is held
 *    under another id and does not win, or repeated under two ids in one batch, refuses the whole
 *    batch (SEQ_CONFLICT): the writer hears of it, nothing of the batch is stored.
 * 6. Copies that differ only in `$sig` and `$tree` are one copy: the digest leaves both out, and
 *    they differ only where one event was signed twice, in two trees (core/sign-trees.ts), each
 *    valid, or where a store held it without its signature (covered signatures, withdrawn:
 *    core/integrity.ts invariant 8).
 * 7. A partial replica's trace of a trimmed event (core/trimmed-copies.ts) is a held copy
 *    without its body: weighed by its cursor alone, and when it loses it goes to `evict` (the log
 *    drops it) and is reported in `lostTrimmed`.
 */
import type { JsonObject, LocalRecord, StoredEventRecord } from './events.ts';
import type { Cursor, EventId } from './ids.ts';
import { INTEGRITY_META } from './integrity-meta.ts';
import { jsonEqual } from './json.ts';

export type CopyConflictCode = 'ID_CONFLICT' | 'SEQ_CONFLICT';

/** What a partial replica keeps of a trimmed event to meet its copies by (invariant 7). */
export interface TrimmedTrace {
  id: EventId;
  /** Undefined where the log cannot tell it (core/trimmed-copies.ts invariant 5). */
  cursor: Cursor | undefined;
}

/** A trimmed event that lost to a copy that came later (core/trimmed-copies.ts invariant 2). */
export interface TrimmedCopyLoss {
  code: CopyConflictCode;
  /** The trimmed copy's id and cursor: all the log kept of it. */
  id: EventId;
  cursor: Cursor;
  /** The copy kept instead. */
  keptId: EventId;
  keptReplica: string;
}

/** A copy that lost (invariant 4). */
export interface LostCopy {
  /** ID_CONFLICT: the same id with another copy; SEQ_CONFLICT: the same (replica, seq). */
  code: CopyConflictCode;
  /** The losing copy. */
  event: StoredEventRecord;
  /** Id of the copy kept instead. */
  keptId: EventId;
  /** Origin replica of the copy kept instead. */
  keptReplica: string;
  /** Whether the loser was held here (it left the log) or arrived and was not stored. */
  held: boolean;
}

/** `<replica>.<seq>` of an event: the cursor after its HLC (ids.ts: an HLC holds no '.'). */
export function slotOf(event: Pick<StoredEventRecord, 'cursor'>): string {
  return event.cursor.slice(event.cursor.indexOf('.') + 1);
}

/** JSON with object keys sorted: equal JSON values give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

function copyText(e: StoredEventRecord, meta: JsonObject | undefined = e.meta): string {
  return canonicalJson({
    id: e.id,
    stream: e.stream,
    type: e.type,
    schema: e.schema ?? 1,
    data: e.data,
    meta: meta ?? null,
    version: e.version,
  });
}

/** Negative when `a` wins over `b` (invariant 1), 0 for the same copy (invariant 6). */
export function compareCopies(a: StoredEventRecord, b: StoredEventRecord): number {
  if (a.cursor !== b.cursor) return a.cursor < b.cursor ? -1 : 1;
  const ta = copyText(a);
  const tb = copyText(b);
  if (ta === tb) return 0;
  if (hasSig(a.meta) || hasSig(b.meta)) {
    if (copyText(a, withoutSig(a.meta)) === copyText(b, withoutSig(b.meta))) return 0;
  }
  return ta < tb ? -1 : 1;
}

/** Two records are one copy: same id, cursor and payload (the version may differ: DESIGN). */
export function sameCopy(a: StoredEventRecord, b: StoredEventRecord): boolean {
  return (
    a.id === b.id &&
    a.cursor === b.cursor &&
    a.stream === b.stream &&
    a.type === b.type &&
    (a.schema ?? 1) === (b.schema ?? 1) &&
    jsonEqual(a.data, b.data) &&
    sameMeta(a.meta, b.meta)
  );
}

/** Invariant 6: metas that differ only in `$sig` and `$tree` are one copy's. */
function sameMeta(a: JsonObject | undefined, b: JsonObject | undefined): boolean {
  if (jsonEqual(a ?? null, b ?? null)) return true;
  return (hasSig(a) || hasSig(b)) && jsonEqual(withoutSig(a) ?? null, withoutSig(b) ?? null);
}

function hasSig(meta: JsonObject | undefined): boolean {
  return meta !== undefined && Object.hasOwn(meta, INTEGRITY_META.sig);
}

function withoutSig(meta: JsonObject | undefined): JsonObject | undefined {
  if (!hasSig(meta)) return meta;
  const { [INTEGRITY_META.sig]: _sig, [INTEGRITY_META.tree]: _tree, ...rest } = meta!;
  return Object.keys(rest).length === 0 ? undefined : rest;
}

export interface CopiesInput {
  /** Incoming events, in receive order. */
  events: readonly StoredEventRecord[];
  /** The held record with each event's id, in input order. */
  heldById: readonly (LocalRecord | undefined)[];
  /** The held record at each event's (replica, seq), in input order. */
  heldBySlot: readonly (LocalRecord | undefined)[];
  /**
   * What a partial replica keeps of the trimmed event with each event's id, and at its
   * (replica, seq), in input order (core/trimmed-copies.ts): a held copy without its body.
   */
  trimmedById?: readonly (TrimmedTrace | undefined)[];
  trimmedBySlot?: readonly (TrimmedTrace | undefined)[];
  /** Invariant 5. */
  refuseSeqConflicts?: boolean;
}

export type CopiesResolution =
  | {
      kind: 'resolved';
      /** Incoming events to store, in receive order. */
      write: StoredEventRecord[];
      /** Held records that lost and leave the log (invariant 3). */
      remove: LocalRecord[];
      lost: LostCopy[];
      /** Traces of trimmed events that lost: the log drops them (core/trimmed-copies.ts). */
      evict: { id: EventId; cursor: Cursor }[];
      lostTrimmed: TrimmedCopyLoss[];
    }
  | { kind: 'refused'; eventId: EventId; keptId: EventId };

/** A copy met in a batch: held, trimmed (a trace, no body) or incoming. */
interface Entry {
  id: EventId;
  slot: string;
  /** Undefined: a trace whose cursor the log cannot tell (trimmed-copies.ts invariant 5). */
  cursor: Cursor | undefined;
  /** Undefined for a trace. */
  event: StoredEventRecord | undefined;
  held: LocalRecord | undefined;
  dropped: boolean;
}

/** Negative when `event` wins over `rival`, 0 for the same copy (trimmed-copies.ts 1, 4, 5). */
function compareWith(event: StoredEventRecord, rival: Entry): number {
  if (rival.event !== undefined) return compareCopies(event, rival.event);
  if (rival.cursor === undefined) return 1;
  if (rival.cursor === event.cursor) return rival.id === event.id ? 0 : 1;
  return event.cursor < rival.cursor ? -1 : 1;
}

/** The replica of a cursor `<hlc>.<replica>.<seq>`. */
export function replicaOfCursor(cursor: Cursor): string {
  const slot = slotOf({ cursor });
  return slot.slice(0, slot.indexOf('.'));
}

/**
 * Decides, for a batch, which events are new, which are repeats, and which copies win
 * (invariants 1–5). Held records (and traces) that an earlier event of the batch replaced are
 * not looked at again.
 */
export function resolveCopies(input: CopiesInput): CopiesResolution {
  const byId = new Map<string, Entry>();
  const bySlot = new Map<string, Entry>();
  /** Ids and slots whose held record or trace lost to an event of this batch. */
  const gone = new Set<string>();
  const added: Entry[] = [];
  const remove: LocalRecord[] = [];
  const lost: LostCopy[] = [];
  const evict: { id: EventId; cursor: Cursor }[] = [];
  const lostTrimmed: TrimmedCopyLoss[] = [];

  const place = (entry: Entry): void => {
    if (gone.has(`i${entry.id}`) || gone.has(`s${entry.slot}`)) return;
    if (!byId.has(entry.id)) byId.set(entry.id, entry);
    if (!bySlot.has(entry.slot)) bySlot.set(entry.slot, entry);
  };
  const know = (held: LocalRecord | undefined): void => {
    if (held === undefined) return;
    const { event } = held;
    place({ id: event.id, slot: slotOf(event), cursor: event.cursor, event, held, dropped: false });
  };
  const knowTrace = (trace: TrimmedTrace | undefined, slot: string | undefined): void => {
    if (trace === undefined) return;
    // A trace found by id whose cursor is unknown has no slot to go by: one of its own.
    const at =
      trace.cursor !== undefined ? slotOf({ cursor: trace.cursor }) : (slot ?? `?${trace.id}`);
    place({
      id: trace.id,
      slot: at,
      cursor: trace.cursor,
      event: undefined,
      held: undefined,
      dropped: false,
    });
  };
  const drop = (entry: Entry, winner: StoredEventRecord, code: CopyConflictCode): void => {
    entry.dropped = true;
    if (byId.get(entry.id) === entry) byId.delete(entry.id);
    if (bySlot.get(entry.slot) === entry) bySlot.delete(entry.slot);
    if (entry.event === undefined) {
      // A trace (trimmed-copies.ts invariant 2): only a known cursor can lose.
      const cursor = entry.cursor!;
      evict.push({ id: entry.id, cursor });
      lostTrimmed.push({
        code,
        id: entry.id,
        cursor,
        keptId: winner.id,
        keptReplica: winner.replica,
      });
    } else {
      lost.push({
        code,
        event: entry.event,
        keptId: winner.id,
        keptReplica: winner.replica,
        held: entry.held !== undefined,
      });
      if (entry.held !== undefined) remove.push(entry.held);
    }
    if (entry.held !== undefined || entry.event === undefined) {
      gone.add(`i${entry.id}`);
      gone.add(`s${entry.slot}`);
    }
  };

  for (let i = 0; i < input.events.length; i++) {
    const event = input.events[i]!;
    const slot = slotOf(event);
    know(input.heldById[i]);
    know(input.heldBySlot[i]);
    knowTrace(input.trimmedById?.[i], undefined);
    knowTrace(input.trimmedBySlot?.[i], slot);
    const idRival = byId.get(event.id);
    if (idRival !== undefined) {
      if (
        idRival.event !== undefined
          ? sameCopy(idRival.event, event)
          : idRival.cursor === event.cursor
      ) {
        continue;
      }
    }
    const slotEntry = bySlot.get(slot);
    const slotRival = slotEntry !== undefined && slotEntry !== idRival ? slotEntry : undefined;
    if (
      input.refuseSeqConflicts === true &&
      slotRival !== undefined &&
      slotRival.id !== event.id &&
      (slotRival.held === undefined || compareWith(event, slotRival) > 0)
    ) {
      return { kind: 'refused', eventId: event.id, keptId: slotRival.id };
    }
    const rivals: [Entry, CopyConflictCode][] = [];
    if (idRival !== undefined) rivals.push([idRival, 'ID_CONFLICT']);
    if (slotRival !== undefined) {
      rivals.push([slotRival, slotRival.id === event.id ? 'ID_CONFLICT' : 'SEQ_CONFLICT']);
    }
    const beaten = rivals.find(([rival]) => compareWith(event, rival) > 0);
    if (beaten !== undefined) {
      const [rival, code] = beaten;
      // A trace that cannot be weighed holds its id and slot as before (trimmed-copies.ts 5).
      if (rival.cursor === undefined) continue;
      lost.push({
        code,
        event,
        keptId: rival.id,
        keptReplica: rival.event?.replica ?? replicaOfCursor(rival.cursor),
        held: false,
      });
      continue;
    }
    for (const [rival, code] of rivals) drop(rival, event, code);
    const entry: Entry = {
      id: event.id,
      slot,
      cursor: event.cursor,
      event,
      held: undefined,
      dropped: false,
    };
    byId.set(event.id, entry);
    bySlot.set(slot, entry);
    added.push(entry);
  }
  return {
    kind: 'resolved',
    write: added.filter((e) => !e.dropped).map((e) => e.event!),
    remove,
    lost,
    evict,
    lostTrimmed,
  };
}
