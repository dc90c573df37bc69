/**
 * A device joining its space from a server snapshot (core/space-snapshot.ts, docs/storage-growth.md
 * "A new device joins from a snapshot"), pure: which snapshot a device takes, what its log keeps
 * of it, and which received events the snapshot already covers.
 *
 * Invariants:
 * 1. A device asks to join only while its log is empty: no event, no horizon. A log that holds
 *    anything replays instead (an append made before the snapshot arrived included), so a base
 *    is never laid under events the store already folded.
 * 2. A snapshot is taken only when it holds every projection the device runs, each at exactly
 *    the device's version (SnapshotSource.latest's promise, checked again here: the server is
 *    not trusted to have kept it). Otherwise the device replays the whole log.
 * 3. The base's version vector stands for the ids of the events it folds (space-snapshot.ts
 *    invariant 2): an event (r, s) with s <= vector[r] is one of them, or a rival copy of one
 *    that the server resolved when it took the first, so it is skipped, never stored.
 * 4. The device's clock is raised to the HLC of the base's cursor: what it appends after joining
 *    sorts after every event the snapshot folds, as it would on a device that held them.
 */
import { decodeHlc, type HlcState } from './hlc.ts';
import type { ProjectionVersion, SnapshotState, SpaceSnapshot } from './space-snapshot.ts';

/**
 * The largest snapshot a client takes, in one `snapshot` message or in parts, unless it says
 * otherwise (UTF-8 bytes of its JSON). The demo's board after 1M events is ~24 MB.
 */
export const DEFAULT_JOIN_BYTES = 64 * 1024 * 1024;

/** Whether `event` is one the base covers (invariant 3). */
export function coveredBy(
  vector: Readonly<Record<string, number>>,
  event: { replica: string; seq: number },
): boolean {
  const top = vector[event.replica];
  return top !== undefined && event.seq <= top;
}

/** The events of `events` the base does not cover (invariant 3); the same array when none is. */
export function uncovered<T extends { replica: string; seq: number }>(
  vector: Readonly<Record<string, number>> | undefined,
  events: T[],
): T[] {
  if (vector === undefined || !events.some((e) => coveredBy(vector, e))) return events;
  return events.filter((e) => !coveredBy(vector, e));
}

/**
 * The states of `snapshot` for the projections `wanted`, in the order asked, or undefined when
 * one is missing or at another version (invariant 2).
 */
export function matchSnapshot(
  snapshot: SpaceSnapshot,
  wanted: readonly ProjectionVersion[],
): SnapshotState[] | undefined {
  const byName = new Map(snapshot.projections.map((p) => [p.name, p]));
  const out: SnapshotState[] = [];
  for (const want of wanted) {
    const found = byName.get(want.name);
    if (found === undefined || found.version !== want.version) return undefined;
    out.push(found);
  }
  return out;
}

/** The clock a joined log starts from (invariant 4): the base cursor's HLC, or `clock` if later. */
export function clockAfterBase(clock: HlcState, cursor: string): HlcState {
  if (cursor === '') return clock;
  const base = decodeHlc(cursor.slice(0, cursor.indexOf('.')));
  return base.wall > clock.wall || (base.wall === clock.wall && base.counter > clock.counter)
    ? base
    : clock;
}
