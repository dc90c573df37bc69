/**
 * Husks: what a segment (core/segments.ts) leaves when a partial replica trims its events
 * (docs/storage-growth.md, storage/adapter.ts invariant 6), pure. A husk keeps what the log's
 * indexes need to keep answering for trimmed events, and nothing a read returns.
 *
 * Invariants:
 * 1. A husk's key (segments.ts SegmentKey) is [first, last, 0]: `n` is 0, so every reader that
 *    counts or unpacks events by `n` sees none, and a key alone tells a husk (n = 0) from a
 *    segment (n >= 1). `trimmed` holds how many events it stands for.
 * 2. It keeps the cursors of its events (their hlc, replica and seq columns, and `cursors` only
 *    where those do not derive them, compressed as segments are), so a late event that sorts inside it splits it
 *    exactly, and segments keep partitioning the total order (segments.ts invariant 2).
 * 3. It keeps `slotRuns` (the `slot` index: a trimmed (replica, seq) is still held), `customIds`
 *    (the unique `id` index: a trimmed custom id is still held) and `streamMax` (the `version`
 *    index: a stream's version never goes back). It has no `pos` and no `streamKeys`: the `pos`
 *    and `stream` indexes, which only reads use, do not list it.
 * 4. Splitting a husk gives its stream maxima to its first part only (any part may keep one),
 *    and each custom id to the part that holds its event (invariant 5); a husk that cannot tell
 *    gives them all to its first part. The unique `id` index must list an id once.
 * 5. `customAt` says where each custom id sits among the husk's events (customIds[k] is event
 *    customAt[k]'s), so that a copy met by a trimmed id is weighed against the trimmed one's
 *    cursor (core/trimmed-copies.ts). Husks written before it existed lack it: their custom ids'
 *    cursors are unknown, and their slots' ids too where they hold any custom id.
 * 6. Dropping an event from a husk (a trimmed copy that lost: huskWithout) keeps its other
 *    events' traces, custom ids and the stream maxima; a husk left with no event is deleted.
 */
import { slotOf } from './copies.ts';
import type { LocalRecord } from './events.ts';
import { hlcAfter } from './hlc.ts';
import { Cursor, EventId, type Hlc, type ReplicaId, type Seq } from './ids.ts';
import { cursorAt, foundBySlot, type Segment, slotRunsOf } from './segments.ts';
import type { TrimmedTrace } from './trimmed-copies.ts';

/** How many trimmed events a stored segment stands for (0: a segment holding its events). */
export const huskSize = (s: Segment): number => s.trimmed ?? 0;

/** Whether a segment key (or segment) is a husk's (invariant 1). */
export const isHuskKey = (key: readonly [string, string, number]): boolean => key[2] === 0;

/** What a husk keeps of each trimmed event: where it sorts, and its (replica, seq). */
interface Trace {
  cursor: Cursor;
  hlc: Hlc;
  replica: ReplicaId;
  seq: Seq;
}

/** The husk of `records` (a run of one stored segment, in its order: segments.ts invariant 1). */
export function huskOf(records: readonly LocalRecord[]): Segment {
  const custom: CustomId[] = [];
  const maxVersion = new Map<string, number>();
  records.forEach(({ event: e }, i) => {
    if (!foundBySlot(e.id, e.replica, e.seq, slotOf(e))) custom.push([e.id, i]);
    if (e.version > (maxVersion.get(e.stream) ?? 0)) maxVersion.set(e.stream, e.version);
  });
  return huskFrom(
    records.map((r) => r.event),
    custom,
    [...maxVersion],
  );
}

/** A custom id and the index of its event among a husk's (invariant 5; -1: not known). */
type CustomId = [EventId, number];

/** The husk's custom ids with their places (invariant 5). */
function customIdsOf(husk: Segment): CustomId[] {
  const ids = husk.customIds ?? [];
  return ids.map((id, k) => [id, husk.customAt?.[k] ?? -1]);
}

/** Parts of a husk cut before each index of `cuts` (ascending, inside 1..trimmed-1). */
export function splitHusk(husk: Segment, cuts: readonly number[]): Segment[] {
  const bounds = [0, ...cuts, huskSize(husk)];
  const custom = customIdsOf(husk);
  const out: Segment[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const [from, to] = [bounds[k]!, bounds[k + 1]!];
    const traces: Trace[] = [];
    for (let i = from; i < to; i++) traces.push(traceAt(husk, i));
    // Invariant 4.
    const mine = custom.filter(([, at]) => (at < 0 ? k === 0 : at >= from && at < to));
    out.push(
      huskFrom(
        traces,
        mine.map(([id, at]) => [id, at < 0 ? -1 : at - from]),
        k === 0 ? (husk.streamMax ?? []) : [],
      ),
    );
  }
  return out;
}

/** The husk without the events at `drop` (invariant 6); undefined when none is left. */
export function huskWithout(husk: Segment, drop: ReadonlySet<number>): Segment | undefined {
  const size = huskSize(husk);
  const traces: Trace[] = [];
  /** Each kept event's index in the new husk. */
  const moved = new Map<number, number>();
  for (let i = 0; i < size; i++) {
    if (drop.has(i)) continue;
    moved.set(i, traces.length);
    traces.push(traceAt(husk, i));
  }
  if (traces.length === 0) return undefined;
  const custom: CustomId[] = [];
  for (const [id, at] of customIdsOf(husk)) {
    if (at < 0) custom.push([id, -1]);
    else if (moved.has(at)) custom.push([id, moved.get(at)!]);
  }
  return huskFrom(traces, custom, husk.streamMax ?? []);
}

/** Index of the trimmed event at `slot` (`<replica>.<seq>`: copies.ts slotOf), or -1. */
export function huskIndexOfSlot(husk: Segment, slot: string): number {
  const size = huskSize(husk);
  for (let i = 0; i < size; i++) if (slotOf({ cursor: cursorAt(husk, i) }) === slot) return i;
  return -1;
}

/**
 * What the husk keeps of its event `i` (core/trimmed-copies.ts): its id and cursor, the cursor
 * undefined where the husk cannot tell the id (invariant 5).
 */
export function huskTraceAt(husk: Segment, i: number): TrimmedTrace {
  const t = traceAt(husk, i);
  const canonical = EventId.canonical(t.replica, t.seq);
  const custom = customIdsOf(husk);
  const own = custom.find(([, at]) => at === i);
  if (own !== undefined) return { id: own[0], cursor: t.cursor };
  if (custom.some(([, at]) => at < 0)) return { id: canonical, cursor: undefined };
  return { id: canonical, cursor: t.cursor };
}

/** What the husk keeps of the event with custom id `id` (undefined: not one of its ids). */
export function huskTraceOfId(husk: Segment, id: string): TrimmedTrace | undefined {
  const found = customIdsOf(husk).find(([custom]) => custom === id);
  if (found === undefined) return undefined;
  return found[1] < 0
    ? { id: found[0], cursor: undefined }
    : { id: found[0], cursor: cursorAt(husk, found[1]) };
}

/**
 * A husk split where new cursors fall inside it (segment-plan.ts planWrite): its parts, and for each
 * such cursor the first trimmed cursor after it (the stored neighbour a new run must not pass).
 */
export function splitHuskAround(
  husk: Segment,
  cursors: readonly string[],
  nextStored: Map<string, string>,
  duplicate: (cursor: string) => Error,
): Segment[] {
  const cuts = new Set<number>();
  for (const cursor of cursors) {
    if (cursor <= husk.first || cursor >= husk.last) continue;
    const cut = huskIndexAfter(husk, cursor);
    if (cursorAt(husk, cut) === cursor) throw duplicate(cursor);
    nextStored.set(cursor, cursorAt(husk, cut));
    cuts.add(cut);
  }
  return splitHusk(
    husk,
    [...cuts].sort((a, b) => a - b),
  );
}

/** Index of the first trimmed event whose cursor is >= `cursor` (the husk's size when none). */
export function huskIndexAfter(husk: Segment, cursor: string): number {
  let lo = 0;
  let hi = huskSize(husk);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cursorAt(husk, mid) < cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const column = <T>(col: T | T[], i: number, step: (first: T, i: number) => T): T =>
  Array.isArray(col) ? col[i]! : step(col, i);

function traceAt(husk: Segment, i: number): Trace {
  return {
    cursor: cursorAt(husk, i),
    hlc: column(husk.hlc, i, hlcAfter),
    replica: column(husk.replica, i, (first) => first),
    seq: column(husk.seq, i, (first, k) => (first + k) as Seq),
  };
}

/**
 * A husk of these events. Their cursors are kept as a segment keeps them (segments.ts
 * packSegment): one hlc, replica and seq for a run that follows on by +1, else one per event, and
 * `cursors` only where they are not derived; a run of local appends costs a few bytes.
 */
function huskFrom(
  traces: readonly Trace[],
  customIds: readonly CustomId[],
  streamMax: readonly [string, number][],
): Segment {
  const head = traces[0]!;
  let oneReplica = true;
  let seqRun = true;
  let hlcRun = true;
  let derived = true;
  traces.forEach((t, i) => {
    oneReplica &&= t.replica === head.replica;
    seqRun &&= t.seq === head.seq + i;
    hlcRun &&= t.hlc === hlcAfter(head.hlc, i);
    derived &&= t.cursor === Cursor.make(t.hlc, t.replica, t.seq);
  });
  // No `pos` (invariant 3): the type says every segment has one, the `pos` index must not list it.
  const husk = {
    first: head.cursor,
    last: traces[traces.length - 1]!.cursor,
    n: 0,
    trimmed: traces.length,
    stream: '',
    streamMax: streamMax.map(([stream, version]) => [stream, version]),
    ids: [],
    types: [],
    data: [],
    replica: oneReplica ? head.replica : traces.map((t) => t.replica),
    seq: seqRun ? head.seq : traces.map((t) => t.seq),
    version: 0,
    hlc: hlcRun ? head.hlc : traces.map((t) => t.hlc),
    slotRuns: slotRunsOf(traces.map((t) => slotOf(t))),
  } as Omit<Segment, 'pos'> as Segment;
  if (!derived) husk.cursors = traces.map((t) => t.cursor);
  if (customIds.length > 0) {
    husk.customIds = customIds.map(([id]) => id);
    // Invariant 5: known for all, or (an old husk's ids) for none.
    if (customIds.every(([, at]) => at >= 0)) husk.customAt = customIds.map(([, at]) => at);
  }
  return husk;
}
