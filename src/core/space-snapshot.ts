/**
 * A space's snapshot as the server keeps it and sends it to a device that joins from it
 * (docs/storage-growth.md, parts 3 and 4), pure types.
 *
 * Invariants:
 * 1. A snapshot folds every event of its space at server positions <= `pos`, in the total order,
 *    into each projection's state at that projection's version; nothing else.
 * 2. `cursor` is the largest cursor among those events: a device that joins from the snapshot
 *    has it as its horizon. `vector` holds, for each replica, the largest seq among them; every
 *    log holds each replica's seqs as a dense prefix, so it stands for their ids.
 * 3. `streams` holds each stream's version at `pos` and whether two replicas wrote the same
 *    version of it (a conflict), so that the device allocates versions and finds conflicts as a
 *    device holding the whole log would.
 */
import type { JsonValue } from './event-map.ts';

/** A projection named with the version whose `apply` made (or would make) a state. */
export interface ProjectionVersion {
  name: string;
  version: number;
}

/** One projection's state in a snapshot (JSON: it crosses the wire and the server's storage). */
export interface SnapshotState extends ProjectionVersion {
  state: JsonValue;
}

/** A stream's head at a snapshot's position (invariant 3). */
export interface SnapshotStream {
  stream: string;
  version: number;
  conflict: boolean;
}

export interface SpaceSnapshot {
  /** The server position it folds up to (invariant 1). */
  pos: number;
  /** The largest cursor it folds (invariant 2); '' for an empty space. */
  cursor: string;
  /** How many events it folds. */
  count: number;
  projections: SnapshotState[];
  streams: SnapshotStream[];
  /** Replica id → largest seq folded (invariant 2). */
  vector: Record<string, number>;
}
