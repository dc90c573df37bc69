/**
 * Builds one space's snapshot up to a head (snapshotter.ts), from the space's newest stored
 * snapshot when it is still valid, else from an older valid one, else from `initial()`.
 *
 * Invariants:
 * 1. The snapshot folds exactly the events at positions <= head, in cursor order
 *    (space-snapshot.ts invariant 1): the fold reads by cursor from its base's cursor and skips
 *    every event above head, as a replica's catch-up does (store/projection-fold.ts foldRange).
 * 2. Each projection gets the event a client's projection gets: the stored event, through the
 *    same upcasters (store/projection-fold.ts applyEvent), so the two folds give one state.
 * 3. Heads and vector come from a pass in position order from the newest snapshot on
 *    (core/snapshot-plan.ts invariant 3), which also finds the smallest cursor after it
 *    (choosing the base: invariant 4 there) and any event the server cannot fold.
 * 4. An event no projection may fold (sealed, or of the keyring: core/sealing.ts foldable) means
 *    the space is encrypted: no snapshot, ever (clients fold what they decrypt). A projection
 *    that throws gives no snapshot either: clients replay, and meet the same error themselves.
 * 5. A state is stored only if it survives a JSON round trip (deep-equal after parse): one that
 *    does not (a Map, a Date, an undefined property) is left out, and named in `skipped`.
 * 6. The work yields to the event loop after every page and after every SLICE_MS of folding (an
 *    app's `apply` may cost milliseconds an event: one that copies its whole state does),
 *    so sessions on the same loop wait at most about that long; it stops when `alive()` turns
 *    false.
 */
import { isDeepStrictEqual } from 'node:util';
import type { JsonValue, LocalRecord, StoredEvent } from '../core/events.ts';
import type { Projection } from '../core/projection.ts';
import { foldable } from '../core/sealing.ts';
import { chooseBase, emptyHeads, headsOf, headsToJson, noteEvent } from '../core/snapshot-plan.ts';
import type { SnapshotState, SpaceSnapshot } from '../core/space-snapshot.ts';
import type { UpcastFn } from '../core/upcast.ts';
import type { SpaceLog, StoredSnapshotMeta } from './storage.ts';

/** Events per read. */
export const BUILD_PAGE = 1000;
/** The longest run of folding between two yields (invariant 6). */
export const SLICE_MS = 10;

export interface BuildInput {
  log: Pick<SpaceLog, 'readByPos' | 'readByCursor'>;
  /** The projections to fold (all of the set but those a stored snapshot left out). */
  projections: readonly Projection[];
  upcast: UpcastFn;
  /** The position to fold up to. */
  head: number;
  /** The set's newest stored snapshot, whole, and the older one's meta (if any). */
  newest?: SpaceSnapshot;
  older?: StoredSnapshotMeta;
  /** Reads the older snapshot whole when the fold starts there. */
  readOlder: () => Promise<SpaceSnapshot | undefined>;
  alive: () => boolean;
}

export type BuildOutcome =
  | {
      kind: 'built';
      snapshot: SpaceSnapshot;
      /** The stored snapshot to keep beside it (the base, when it was one). */
      keep: number[];
      /** Projections whose state did not survive JSON (invariant 5). */
      skipped: string[];
      /** Where the fold started: 'newest', 'older' or 'initial' (a late event refolds). */
      from: 'newest' | 'older' | 'initial';
    }
  | { kind: 'encrypted'; eventId: string }
  | { kind: 'threw'; projection: string; eventId: string; message: string }
  | { kind: 'stopped' };

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Invariant 5: the state as stored, or undefined when JSON would change it. */
export function jsonState(state: unknown): JsonValue | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(state);
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  const parsed = JSON.parse(text) as JsonValue;
  return isDeepStrictEqual(parsed, state) ? parsed : undefined;
}

export async function buildSnapshot(input: BuildInput): Promise<BuildOutcome> {
  const { log, head, newest } = input;
  // invariant 3: position order from the newest snapshot.
  const heads = newest === undefined ? emptyHeads() : headsOf(newest.streams, newest.vector);
  let minSince: string | undefined;
  let after = newest?.pos ?? 0;
  while (after < head) {
    if (!input.alive()) return { kind: 'stopped' };
    const page = await log.readByPos(after, BUILD_PAGE);
    for (const { event, pos } of page) {
      if (pos > head) break;
      if (!foldable(event)) return { kind: 'encrypted', eventId: event.id };
      noteEvent(heads, event);
      if (minSince === undefined || event.cursor < minSince) minSince = event.cursor;
    }
    if (page.length < BUILD_PAGE) break;
    after = page[page.length - 1]!.pos;
    await turn();
  }

  const base = chooseBase<{ pos: number; cursor: string }>(newest, input.older, minSince);
  let start: SpaceSnapshot | undefined;
  let from: 'newest' | 'older' | 'initial' = 'initial';
  if (base !== undefined && base === newest) {
    start = newest;
    from = 'newest';
  } else if (base !== undefined) {
    start = await input.readOlder();
    from = start === undefined ? 'initial' : 'older';
  }
  const stored = new Map(start?.projections.map((p) => [p.name, p]));
  if (start !== undefined && !input.projections.every((p) => stored.has(p.name))) {
    start = undefined;
    from = 'initial';
  }
  const states = input.projections.map((p) =>
    start === undefined ? p.initial() : (stored.get(p.name)!.state as unknown),
  );
  let count = start?.count ?? 0;
  let cursor = start?.cursor ?? '';
  // invariant 1: cursor order from the base; `read` is where the read is, `cursor` the largest
  // cursor folded (events above head are read past, not folded).
  let read = cursor;
  let slice = performance.now();
  for (;;) {
    if (!input.alive()) return { kind: 'stopped' };
    const page: LocalRecord[] = await log.readByCursor!(
      read === '' ? { limit: BUILD_PAGE } : { after: read, limit: BUILD_PAGE },
    );
    for (const record of page) {
      if (record.pos > head) continue;
      if (performance.now() - slice > SLICE_MS) {
        await turn();
        if (!input.alive()) return { kind: 'stopped' };
        slice = performance.now();
      }
      const threw = applyAll(input, states, record);
      if (threw !== undefined) return threw;
      count += 1;
      cursor = record.event.cursor;
    }
    const last = page[page.length - 1];
    if (page.length < BUILD_PAGE || last === undefined) break;
    read = last.event.cursor;
    await turn();
    slice = performance.now();
  }

  const projections: SnapshotState[] = [];
  const skipped: string[] = [];
  for (const [i, projection] of input.projections.entries()) {
    const state = jsonState(states[i]);
    if (state === undefined) skipped.push(projection.name);
    else projections.push({ name: projection.name, version: projection.version, state });
  }
  const keep = start !== undefined && start.pos < head ? [start.pos] : [];
  return {
    kind: 'built',
    snapshot: { pos: head, cursor, count, projections, ...headsToJson(heads) },
    keep,
    skipped,
    from,
  };
}

/** Folds one record into every projection's state (invariant 2); a throw as an outcome. */
function applyAll(
  input: BuildInput,
  states: unknown[],
  record: LocalRecord,
): Extract<BuildOutcome, { kind: 'threw' }> | undefined {
  const event = input.upcast(record.event as StoredEvent);
  for (const [i, projection] of input.projections.entries()) {
    try {
      states[i] = projection.apply(states[i], event);
    } catch (error) {
      return {
        kind: 'threw',
        projection: projection.name,
        eventId: event.id,
        message: error instanceof Error ? error.message : String(error),
      };
    }
  }
  return undefined;
}
