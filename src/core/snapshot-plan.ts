/**
 * The decisions of the server's snapshotter (server/snapshotter.ts), pure: which projection set a
 * snapshot belongs to, whether it answers a device's wanted versions, how each event moves the
 * stream heads and the version vector, and which stored snapshot a new fold may start from.
 *
 * Invariants (space-snapshot.ts 1–3 hold for every snapshot these build):
 * 1. A set key names a list of projections and their versions whatever its order: two servers
 *    registering the same projections keep their snapshots under one key.
 * 2. A snapshot answers `wanted` when every wanted name is in it at exactly its version; extra
 *    projections it holds do not matter (they are left out of the answer).
 * 3. Heads and vector are folded in position order, and need no total order: a stream's version
 *    is the largest version of its events, its conflict flag is set by an event whose version is
 *    not above the version already seen (core/append.ts planIngest's rule: the log holds every
 *    version up to a stream's largest, so another replica wrote that version), and a replica's
 *    vector entry is its largest seq.
 * 4. A fold may start from a stored snapshot (K, P) only while no event after P sorts below K
 *    (core/projection.ts invariant 3); else from an older valid one, else from `initial()`.
 */
import type { ProjectionVersion, SnapshotStream } from './space-snapshot.ts';

/** invariant 1. */
export function projectionSetKey(list: readonly ProjectionVersion[]): string {
  const pairs = list.map((p) => [p.name, p.version] as const);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  return JSON.stringify(pairs);
}

/** invariant 2. */
export function answersWanted(
  stored: readonly ProjectionVersion[],
  wanted: readonly ProjectionVersion[],
): boolean {
  const versions = new Map(stored.map((p) => [p.name, p.version]));
  return wanted.every((w) => versions.get(w.name) === w.version);
}

/** Stream heads and the version vector as a fold accumulates them (invariant 3). */
export interface SnapshotHeads {
  streams: Map<string, SnapshotStream>;
  vector: Map<string, number>;
}

export function emptyHeads(): SnapshotHeads {
  return { streams: new Map(), vector: new Map() };
}

export function headsOf(
  streams: readonly SnapshotStream[],
  vector: Readonly<Record<string, number>>,
): SnapshotHeads {
  return {
    streams: new Map(streams.map((s) => [s.stream, { ...s }])),
    vector: new Map(Object.entries(vector)),
  };
}

/** Moves the heads past one event, taken in position order (invariant 3). */
export function noteEvent(
  heads: SnapshotHeads,
  event: { stream: string; version: number; replica: string; seq: number },
): void {
  const head = heads.streams.get(event.stream);
  if (head === undefined) {
    heads.streams.set(event.stream, {
      stream: event.stream,
      version: event.version,
      conflict: false,
    });
  } else if (event.version <= head.version) {
    head.conflict = true;
  } else {
    head.version = event.version;
  }
  const seq = heads.vector.get(event.replica) ?? 0;
  if (event.seq > seq) heads.vector.set(event.replica, event.seq);
}

/** The heads as a snapshot stores them: streams by name, vector as a record. */
export function headsToJson(heads: SnapshotHeads): {
  streams: SnapshotStream[];
  vector: Record<string, number>;
} {
  const streams = [...heads.streams.values()]
    .map((s) => ({ ...s }))
    .sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  const vector: Record<string, number> = {};
  for (const [replica, seq] of [...heads.vector].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    vector[replica] = seq;
  }
  return { streams, vector };
}

/** A stored snapshot as a fold's starting point sees it. */
export interface SnapshotBase {
  pos: number;
  cursor: string;
}

/**
 * Where a fold of positions up to a new head starts (invariant 4): `newest` if nothing after it
 * sorts below its cursor, else `older` if nothing after it does, else undefined (initial()).
 * `minSinceNewest` is the smallest cursor among positions after newest.pos. A stored `older` was
 * valid when `newest` was written (the snapshotter keeps no other), so events up to newest.pos
 * need no check. The base is also the one snapshot worth keeping beside the new one.
 */
export function chooseBase<T extends SnapshotBase>(
  newest: T | undefined,
  older: T | undefined,
  minSinceNewest: string | undefined,
): T | undefined {
  if (newest === undefined) return undefined;
  const above = (cursor: string) => minSinceNewest === undefined || minSinceNewest > cursor;
  if (above(newest.cursor)) return newest;
  if (older !== undefined && above(older.cursor)) return older;
  return undefined;
}
