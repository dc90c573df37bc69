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
 * 6. Copies that differ only in `$sig` are one copy: an event held without its signature (a
 *    server left it out where a later event covered it: core/integrity.ts invariant 8) is the
 *    event that came elsewhere with it. The digest leaves `$sig` out, and a replica's signature
 *    of one digest is always the same (Ed25519 is deterministic), so nothing else can differ.
 */
import type { JsonObject, LocalRecord, StoredEventRecord } from './events.ts';
import type { EventId } from './ids.ts';
import { INTEGRITY_META } from './integrity-meta.ts';
import { jsonEqual } from './json.ts';

export type CopyConflictCode = 'ID_CONFLICT' | 'SEQ_CONFLICT';

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

/** Invariant 6: metas that differ only in `$sig` are one copy's. */
function sameMeta(a: JsonObject | undefined, b: JsonObject | undefined): boolean {
  if (jsonEqual(a ?? null, b ?? null)) return true;
  return (hasSig(a) || hasSig(b)) && jsonEqual(withoutSig(a) ?? null, withoutSig(b) ?? null);
}

function hasSig(meta: JsonObject | undefined): boolean {
  return meta !== undefined && Object.hasOwn(meta, INTEGRITY_META.sig);
}

function withoutSig(meta: JsonObject | undefined): JsonObject | undefined {
  if (!hasSig(meta)) return meta;
  const { [INTEGRITY_META.sig]: _sig, ...rest } = meta!;
  return Object.keys(rest).length === 0 ? undefined : rest;
}

export interface CopiesInput {
  /** Incoming events, in receive order. */
  events: readonly StoredEventRecord[];
  /** The held record with each event's id, in input order. */
  heldById: readonly (LocalRecord | undefined)[];
  /** The held record at each event's (replica, seq), in input order. */
  heldBySlot: readonly (LocalRecord | undefined)[];
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
    }
  | { kind: 'refused'; eventId: EventId; keptId: EventId };

interface Entry {
  event: StoredEventRecord;
  held: LocalRecord | undefined;
  dropped: boolean;
}

/**
 * Decides, for a batch, which events are new, which are repeats, and which copies win
 * (invariants 1–5). Held records that an earlier event of the batch replaced are not looked at
 * again.
 */
export function resolveCopies(input: CopiesInput): CopiesResolution {
  const byId = new Map<string, Entry>();
  const bySlot = new Map<string, Entry>();
  /** Ids and slots whose held record lost to an event of this batch. */
  const gone = new Set<string>();
  const added: Entry[] = [];
  const remove: LocalRecord[] = [];
  const lost: LostCopy[] = [];

  const know = (held: LocalRecord | undefined): void => {
    if (held === undefined) return;
    const { id } = held.event;
    const slot = slotOf(held.event);
    if (gone.has(`i${id}`) || gone.has(`s${slot}`)) return;
    const entry: Entry = { event: held.event, held, dropped: false };
    if (!byId.has(id)) byId.set(id, entry);
    if (!bySlot.has(slot)) bySlot.set(slot, entry);
  };
  const drop = (entry: Entry): void => {
    entry.dropped = true;
    const slot = slotOf(entry.event);
    if (byId.get(entry.event.id) === entry) byId.delete(entry.event.id);
    if (bySlot.get(slot) === entry) bySlot.delete(slot);
    if (entry.held !== undefined) {
      remove.push(entry.held);
      gone.add(`i${entry.event.id}`);
      gone.add(`s${slot}`);
    }
  };

  for (let i = 0; i < input.events.length; i++) {
    const event = input.events[i]!;
    know(input.heldById[i]);
    know(input.heldBySlot[i]);
    const slot = slotOf(event);
    const idRival = byId.get(event.id);
    if (idRival !== undefined && sameCopy(idRival.event, event)) continue;
    const slotEntry = bySlot.get(slot);
    const slotRival = slotEntry !== undefined && slotEntry !== idRival ? slotEntry : undefined;
    if (
      input.refuseSeqConflicts === true &&
      slotRival !== undefined &&
      slotRival.event.id !== event.id &&
      (slotRival.held === undefined || compareCopies(event, slotRival.event) > 0)
    ) {
      return { kind: 'refused', eventId: event.id, keptId: slotRival.event.id };
    }
    const rivals: [Entry, CopyConflictCode][] = [];
    if (idRival !== undefined) rivals.push([idRival, 'ID_CONFLICT']);
    if (slotRival !== undefined) {
      rivals.push([slotRival, slotRival.event.id === event.id ? 'ID_CONFLICT' : 'SEQ_CONFLICT']);
    }
    const beaten = rivals.find(([rival]) => compareCopies(event, rival.event) > 0);
    if (beaten !== undefined) {
      lost.push({
        code: beaten[1],
        event,
        keptId: beaten[0].event.id,
        keptReplica: beaten[0].event.replica,
        held: false,
      });
      continue;
    }
    for (const [rival, code] of rivals) {
      drop(rival);
      lost.push({
        code,
        event: rival.event,
        keptId: event.id,
        keptReplica: event.replica,
        held: rival.held !== undefined,
      });
    }
    const entry: Entry = { event, held: undefined, dropped: false };
    byId.set(event.id, entry);
    bySlot.set(slot, entry);
    added.push(entry);
  }
  return {
    kind: 'resolved',
    write: added.filter((e) => !e.dropped).map((e) => e.event),
    remove,
    lost,
  };
}
