/**
 * Segments: how a storage adapter may pack the log, pure (issue 3). A segment is one stored record
 * holding a run of events that are neighbours both in the total order and in receive order, of
 * one stream or of several (issue 14: a group commit of appends to 100 streams, or a synced batch
 * of many streams, is then one record, not one per stream). An append of 100 events costs one
 * record and a few index entries instead of one record and three index entries per event, and
 * what every event of the run shares (stream, replica, the first seq, version and HLC) is stored
 * once.
 *
 * Invariants:
 * 1. A segment's events have strictly increasing cursors and consecutive positions pos, pos+1, …
 * 2. No event outside a segment has a cursor in [first, last]: segments partition the total order,
 *    so segments sorted by `first` are the log in total order, and sorted by `pos` in receive order.
 * 3. A segment holds 1..MAX_SEGMENT_EVENTS events, of one or more streams; `streamKeys` names
 *    each of its streams once, with the cursor of that stream's first event in it.
 * 4. Packing loses nothing: unpacking gives back the records field for field; a field is left out
 *    of the per-event columns only where the segment header derives it exactly.
 * 5. planWrite keeps 1–3: a new event whose cursor falls inside an existing segment splits it, and
 *    new events share a segment only with their immediate neighbours in the final total order.
 * 6. Two events never share a cursor: planWrite throws rather than store a second one.
 * 7. eventAt reads both forms of a segment: as packSegment writes it, and as IndexedDB stores it
 *    (core/segment-codec.ts compactSegment): an empty id is the event's canonical id, `sigs`
 *    holds the bytes of each `$sig`, `links` the hash bytes of each `$link` that names its
 *    replica's previous seq, and `streamOf` each event's stream by its place in `streamKeys`.
 *    Both unpack to the same records.
 * 8. A reader that strips the integrity meta before it reads an event (`signatures` false: a
 *    projection fold, storage/adapter.ts CursorQuery.withoutSignatures) gets `$sig` and `$link`
 *    as the 0s of a compact segment, every other field the same: the text of 64 bytes per event,
 *    written out only to be dropped, was what a replay of a synced log paid for the compact form.
 */
import { encodeBase64UrlChunks } from './base64.ts';
import { slotOf } from './copies.ts';
import { StorageError } from './errors.ts';
import type { JsonObject, JsonValue, LocalRecord, StoredEventRecord } from './events.ts';
import { hlcAfter, hlcWall } from './hlc.ts';
import { Cursor, EventId, type Hlc, type ReplicaId, Seq } from './ids.ts';

/**
 * Events per segment at most. It bounds what a read holds beyond its limit (one segment at each end
 * of the range) and keeps a record well under Chromium's 64 KiB threshold for moving values to
 * blob files, for events of a few hundred bytes.
 */
export const MAX_SEGMENT_EVENTS = 128;

/**
 * A segment's place in the total order: its first and last cursors and its event count (the
 * IndexedDB primary key up to schema 5, the key of its `order` index since schema 6).
 */
export type SegmentKey = [first: Cursor, last: Cursor, n: number];

/**
 * A stored segment. `seq`, `version` and `hlc` are the first event's when the others follow by
 * +1 (the HLC by +1 on its counter), else one per event; `replica` is one or one per event.
 * `meta` and `schema` exist only when an event has one (null: this event has none).
 */
export interface Segment {
  first: Cursor;
  last: Cursor;
  n: number;
  /** Position of the first event; event i is at pos + i. */
  pos: number;
  /** One stream for every event, or one per event. */
  stream: string | string[];
  /**
   * [stream, cursor of its first event here] for each stream of the segment, for the multi-entry
   * `stream` index (since schema 4): a stream's events are found in the segments that list it,
   * in the order of these keys, which is the total order.
   */
  streamKeys?: [string, Cursor][];
  /**
   * [stream, the largest version of its events here] for each stream of the segment, for the
   * multi-entry `version` index (since schema 4): a stream's version is found from its segments,
   * with no record of its own to write on every append.
   */
  streamMax?: [string, number][];
  ids: EventId[];
  types: string[];
  data: JsonValue[];
  meta?: (JsonObject | null)[];
  schema?: (number | null)[];
  replica: ReplicaId | ReplicaId[];
  seq: Seq | Seq[];
  version: number | number[];
  hlc: Hlc | Hlc[];
  /**
   * The (replica, seq) slots of the events (core/copies.ts slotOf) as runs [first slot, last
   * slot] of consecutive seqs of one replica, for the multi-entry `slot` index (since schema 5;
   * schema 3 and 4 kept one entry per event in `slots`): an append of 100 events takes one
   * entry, not 100. Slots sort as (replica, seq) (Seq.encode is fixed-width), so a slot is held
   * here when some run has first <= slot <= last (slotRunHolds). Not in event order; a slot held
   * twice by a log written before schema 3 is listed once (idb-schema.ts).
   */
  slotRuns?: SlotRun[];
  /** Schema 3 and 4 only: one slot per event (read by the upgrade to schema 5). */
  slots?: string[];
  /**
   * The ids that the `slot` index cannot find (since schema 4): every id but the canonical id of
   * an event whose slot is the one that id names (EventId.canonicalSlot). Only these take an
   * entry in the unique `id` index; absent when there are none, as for a local append without
   * ids. Not in event order.
   */
  customIds?: EventId[];
  /** A husk's only: where each custom id's event sits among its events (core/husks.ts 5). */
  customAt?: number[];
  /** A husk's count of trimmed events (core/husks.ts): absent on a segment holding its events. */
  trimmed?: number;
  /** Only when some event's cursor or time is not the one its hlc, replica and seq give. */
  cursors?: Cursor[];
  times?: number[];
  /**
   * IndexedDB only (core/segment-codec.ts, invariant 7): every event's `meta.$sig` as its 64
   * bytes, event i's at i × 64, its place in `meta[i]` kept by a 0. Present only when every event
   * has one that base64url gives back exactly; the servers never write it.
   */
  sigs?: Uint8Array;
  /**
   * IndexedDB only (core/segment-codec.ts, invariant 7): the 16 hash bytes of event i's
   * `meta.$link` at i × 16, where its place in `meta[i]` holds a 0 and the slot is not all
   * zeros; the rest of that link is its replica's previous seq and that seq's canonical id.
   * Events whose link says anything else keep its text (their slot is zeros).
   */
  links?: Uint8Array;
  /**
   * IndexedDB only (core/segment-codec.ts, invariant 7): event i's stream as its index in
   * `streamKeys`, in place of `stream`, which is then ''.
   */
  streamOf?: number[];
  /**
   * The store's own key for the record, on a segment read back from IndexedDB (since schema 6:
   * storage/idb-schema.ts invariant 8). Never set by packing: a new segment gets a new one.
   */
  key?: number;
}

/** Bytes of an Ed25519 signature, a `$sig` in Segment.sigs (core/integrity.ts). */
export const SIG_BYTES = 64;

/** base64url characters of a `$sig`. */
export const SIG_TEXT = Math.ceil((SIG_BYTES * 4) / 3);
/**
 * Each `sigs` or `links` column's text, encoded once for all its events (base64.ts
 * encodeBase64UrlChunks).
 */
const columnTexts = new WeakMap<Uint8Array, string>();

/** The base64url text of the `i`th chunk of `size` bytes of a column (columnTexts). */
function chunkText(column: Uint8Array, size: number, i: number): string {
  let all = columnTexts.get(column);
  if (all === undefined) {
    all = encodeBase64UrlChunks(column, size);
    columnTexts.set(column, all);
  }
  const width = Math.ceil((size * 4) / 3);
  return all.slice(i * width, (i + 1) * width);
}

/** Bytes of the hash in a `$link` (core/integrity.ts linkText), a slot of Segment.links. */
export const LINK_HASH_BYTES = 16;
/** base64url characters of that hash. */
export const LINK_HASH_TEXT = Math.ceil((LINK_HASH_BYTES * 4) / 3);

/** The `$link` text of an event at (replica, seq) whose link names seq - 1 (Segment.links). */
export function previousLinkText(replica: ReplicaId, seq: Seq, hashText: string): string {
  const previous = (seq - 1) as Seq;
  return `${previous.toString(36)}.${hashText}.${EventId.canonical(replica, previous)}`;
}

/** Event i's `$link` from `links`, or undefined where its slot is zeros (it kept its text). */
function linkAt(links: Uint8Array, i: number, replica: ReplicaId, seq: Seq): string | undefined {
  // A zero slot: the link kept its text (core/segment-codec.ts invariant 7).
  let bits = 0;
  for (let b = i * LINK_HASH_BYTES; b < (i + 1) * LINK_HASH_BYTES; b++) bits |= links[b]!;
  if (bits === 0) return undefined;
  return previousLinkText(replica, seq, chunkText(links, LINK_HASH_BYTES, i));
}

export const segmentKey = (s: Segment): SegmentKey => [s.first, s.last, s.n];

/** Consecutive slots of one replica: the first and the last (Segment.slotRuns). */
export type SlotRun = [first: string, last: string];

/** The replica part of a slot `<replica>.<seq>`, and its seq. */
function splitSlot(slot: string): [replica: string, seq: number] {
  const dot = slot.indexOf('.');
  return [slot.slice(0, dot), Number.parseInt(slot.slice(dot + 1), 36)];
}

/**
 * `slots` as runs of consecutive seqs of one replica, in slot order (Segment.slotRuns): each slot
 * is inside exactly one run, and each run holds only given slots.
 */
export function slotRunsOf(slots: readonly string[]): SlotRun[] {
  const sorted = [...new Set(slots)].sort();
  const runs: SlotRun[] = [];
  let run: SlotRun | undefined;
  let replica = '';
  let seq = 0;
  for (const slot of sorted) {
    const [r, q] = splitSlot(slot);
    if (run !== undefined && r === replica && q === seq + 1) run[1] = slot;
    else {
      run = [slot, slot];
      runs.push(run);
    }
    replica = r;
    seq = q;
  }
  return runs;
}

/**
 * Whether `run` holds `slot`. Two slots of one replica bound only slots of that replica (the
 * replica is everything before the first '.', and '.' sorts before every character of an id), so
 * comparing strings is enough.
 */
export const slotRunHolds = (run: SlotRun, slot: string): boolean =>
  run[0] <= slot && slot <= run[1];

/** Every slot of a segment's events, in event order (core/copies.ts slotOf). */
export function slotsOf(s: Segment): string[] {
  const out: string[] = new Array(s.n);
  for (let i = 0; i < s.n; i++) out[i] = slotOf({ cursor: cursorAt(s, i) });
  return out;
}

/**
 * Whether the `slot` index finds the event with this id, replica, seq and slot by its id: the id
 * is the canonical id of its own (replica, seq), at the slot that pair names. Every other id is a
 * custom id (Segment.customIds), found through the `id` index.
 */
export function foundBySlot(id: string, replica: string, seq: number, slot: string): boolean {
  return EventId.isCanonical(id, replica, seq) && slot === `${replica}.${Seq.encode(seq as Seq)}`;
}

/** The stream of event `i` of a segment. */
export const streamAt = (s: Segment, i: number): string =>
  s.streamOf !== undefined
    ? s.streamKeys![s.streamOf[i]!]![0]
    : typeof s.stream === 'string'
      ? s.stream
      : s.stream[i]!;

/** The cursor of the first event of `stream` in `s`, its key in the `stream` index. */
export function streamFirst(s: Segment, stream: string): Cursor | undefined {
  if (s.streamOf !== undefined) return s.streamKeys!.find(([name]) => name === stream)?.[1];
  if (typeof s.stream === 'string') return s.stream === stream ? s.first : undefined;
  const i = s.stream.indexOf(stream);
  return i < 0 ? undefined : cursorAt(s, i);
}

/** Packs a run of records (invariants 1 and 3 are the caller's: see planWrite) into a segment. */
export function packSegment(records: readonly LocalRecord[]): Segment {
  const head = records[0]!.event;
  const n = records.length;
  const ids: EventId[] = new Array(n);
  const types: string[] = new Array(n);
  const data: JsonValue[] = new Array(n);
  const replicas: ReplicaId[] = new Array(n);
  const seqs: Seq[] = new Array(n);
  const versions: number[] = new Array(n);
  const hlcs: Hlc[] = new Array(n);
  const cursors: Cursor[] = new Array(n);
  const times: number[] = new Array(n);
  const streams: string[] = new Array(n);
  const streamKeys: [string, Cursor][] = [];
  const maxVersion = new Map<string, number>();
  const seen = new Set<string>();
  let oneStream = true;
  let meta: (JsonObject | null)[] | undefined;
  let schema: (number | null)[] | undefined;
  let oneReplica = true;
  let seqRun = true;
  let versionRun = true;
  let hlcRun = true;
  let cursorsDerived = true;
  let timesDerived = true;
  for (let i = 0; i < n; i++) {
    const e = records[i]!.event;
    streams[i] = e.stream;
    if (!seen.has(e.stream)) {
      seen.add(e.stream);
      streamKeys.push([e.stream, e.cursor]);
    }
    oneStream &&= e.stream === head.stream;
    if (e.version > (maxVersion.get(e.stream) ?? 0)) maxVersion.set(e.stream, e.version);
    ids[i] = e.id;
    types[i] = e.type;
    data[i] = e.data;
    replicas[i] = e.replica;
    seqs[i] = e.seq;
    versions[i] = e.version;
    hlcs[i] = e.hlc;
    cursors[i] = e.cursor;
    times[i] = e.time;
    if (e.meta !== undefined) {
      meta ??= new Array<JsonObject | null>(n).fill(null);
      meta[i] = e.meta;
    }
    if (e.schema !== undefined) {
      schema ??= new Array<number | null>(n).fill(null);
      schema[i] = e.schema;
    }
    oneReplica &&= e.replica === head.replica;
    seqRun &&= e.seq === head.seq + i;
    versionRun &&= e.version === head.version + i;
    hlcRun &&= e.hlc === hlcAfter(head.hlc, i);
    cursorsDerived &&= e.cursor === Cursor.make(e.hlc, e.replica, e.seq);
    timesDerived &&= e.time === hlcWall(e.hlc);
  }
  const segment: Segment = {
    first: head.cursor,
    last: records[n - 1]!.event.cursor,
    n,
    pos: records[0]!.pos,
    stream: oneStream ? head.stream : streams,
    streamKeys,
    streamMax: [...maxVersion],
    ids,
    types,
    data,
    replica: oneReplica ? head.replica : replicas,
    seq: seqRun ? head.seq : seqs,
    version: versionRun ? head.version : versions,
    hlc: hlcRun ? head.hlc : hlcs,
  };
  const slots = cursors.map((c) => slotOf({ cursor: c }));
  segment.slotRuns = slotRunsOf(slots);
  const custom = ids.filter((id, i) => !foundBySlot(id, replicas[i]!, seqs[i]!, slots[i]!));
  if (custom.length > 0) segment.customIds = custom;
  if (meta !== undefined) segment.meta = meta;
  if (schema !== undefined) segment.schema = schema;
  if (!cursorsDerived) segment.cursors = cursors;
  if (!timesDerived) segment.times = times;
  return segment;
}

const at = <T>(column: T | T[], i: number, step: (first: T, i: number) => T): T =>
  Array.isArray(column) ? column[i]! : step(column, i);
const plus = (first: number, i: number) => first + i;
const same = <T>(first: T) => first;

export function cursorAt(s: Segment, i: number): Cursor {
  if (s.cursors !== undefined) return s.cursors[i]!;
  const hlc = at(s.hlc, i, hlcAfter);
  return Cursor.make(hlc, at(s.replica, i, same), at(s.seq, i, plus) as Seq);
}

/**
 * The event at index `i` of a segment; `signatures` false: `$sig` may be left as its 0 (invariant
 * 8), for a caller that strips it unread.
 */
export function eventAt(s: Segment, i: number, signatures = true): StoredEventRecord {
  const hlc = at(s.hlc, i, hlcAfter);
  const replica = at(s.replica, i, same);
  const seq = at(s.seq, i, plus) as Seq;
  const event: StoredEventRecord = {
    // Invariant 7: '' is never an id (ids.ts), so an empty one stands for the canonical id.
    id: s.ids[i] || EventId.canonical(replica, seq),
    type: s.types[i]!,
    data: s.data[i]!,
    stream: streamAt(s, i),
    version: at(s.version, i, plus),
    replica,
    seq,
    hlc,
    time: s.times?.[i] ?? hlcWall(hlc),
    cursor: s.cursors?.[i] ?? Cursor.make(hlc, replica, seq),
  };
  const meta = s.meta?.[i];
  if (meta !== undefined && meta !== null) {
    // Invariant 7: `$sig` goes where the 0 holding its place stands, so the keys keep their
    // order. The segment read is this reader's own copy, and a second read sets the same text.
    if (signatures && s.sigs !== undefined && meta.$sig === 0)
      meta.$sig = chunkText(s.sigs, SIG_BYTES, i);
    if (signatures && s.links !== undefined && meta.$link === 0) {
      const link = linkAt(s.links, i, replica, seq);
      if (link !== undefined) meta.$link = link;
    }
    event.meta = meta;
  }
  const schema = s.schema?.[i];
  if (schema !== undefined && schema !== null) event.schema = schema;
  return event;
}

/** Records from, and including, index `from` to, excluding, index `to` (`signatures`: eventAt). */
export function unpackSegment(s: Segment, from = 0, to = s.n, signatures = true): LocalRecord[] {
  const out: LocalRecord[] = [];
  for (let i = Math.max(0, from); i < Math.min(to, s.n); i++) {
    out.push({ event: eventAt(s, i, signatures), pos: s.pos + i });
  }
  return out;
}

/** Index of the first event whose cursor is > cursor (or >= when inclusive); n when none. */
export function indexAfter(s: Segment, cursor: string, inclusive = false): number {
  if (cursor < s.first || (inclusive && cursor === s.first)) return 0;
  if (cursor > s.last || (!inclusive && cursor === s.last)) return s.n;
  let lo = 0;
  let hi = s.n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = cursorAt(s, mid);
    if (inclusive ? c < cursor : c <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Existing segments around a cursor: the one with the greatest first <= it, the next after. */
export interface Neighbours {
  before?: SegmentKey;
  after?: SegmentKey;
}

/**
 * The neighbours of each cursor, from the stored keys around them: `keys` in key order, holding
 * the last segment whose first cursor is <= the smallest cursor (if any), every segment whose
 * first lies after it up to the largest cursor, and the next one after that (if any). Read as a
 * range, these cost a few requests for a whole batch instead of two per cursor.
 */
export function neighboursFromKeys(
  cursors: readonly string[],
  keys: readonly SegmentKey[],
): Map<string, Neighbours> {
  const sorted = [...new Set(cursors)].sort();
  const out = new Map<string, Neighbours>();
  let k = 0; // keys[k - 1] is the last key whose first is <= the cursor
  for (const cursor of sorted) {
    while (k < keys.length && keys[k]![0] <= cursor) k += 1;
    const around: Neighbours = {};
    if (k > 0) around.before = keys[k - 1]!;
    if (k < keys.length) around.after = keys[k]!;
    out.set(cursor, around);
  }
  return out;
}

/** The cursors of new records that may fall among stored ones: those <= the largest stored. */
export function cursorsToPlace(records: readonly LocalRecord[], maxCursor: string): Cursor[] {
  const out: Cursor[] = [];
  for (const r of records) if (r.event.cursor <= maxCursor) out.push(r.event.cursor);
  return out;
}

export function duplicateCursor(cursor: string): StorageError {
  return new StorageError('STORAGE', `two different events share the cursor ${cursor}`, {
    cursor,
  });
}

/** The stored segments that a new cursor falls strictly inside of: they are read and split. */
export function segmentsToSplit(neighbours: ReadonlyMap<string, Neighbours>): SegmentKey[] {
  const out = new Map<string, SegmentKey>();
  for (const [cursor, { before }] of neighbours) {
    if (before === undefined) continue;
    if (before[0] === cursor || before[1] === cursor) throw duplicateCursor(cursor);
    if (cursor < before[1]) out.set(before[0], before);
  }
  return [...out.values()];
}
