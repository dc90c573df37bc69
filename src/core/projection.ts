/**
 * Projections: folds of the log, in total order, into application state.
 *
 * A projection's progress is a pair (cursor K, position H) meaning "the fold of every event whose
 * local position is <= H and whose cursor is <= K". It is caught up when K is the largest cursor
 * among positions <= H. Snapshots record the same pair.
 *
 * Invariants:
 * 1. State is always the fold, in total order, of a set of events closed under "earlier in the
 *    order, and received no later than H".
 * 2. An event received after H whose cursor is < K (a late event) forces a rebase: the fold
 *    restarts from the newest snapshot that is still valid, or from `initial()`; never past it.
 * 3. A snapshot (K, H) is valid while no event received after H has a cursor < K. Once invalid it
 *    stays invalid and may be deleted.
 * 4. A projection whose version changed starts again from `initial()`; old snapshots are unused.
 */
import { ValidationError } from './errors.ts';
import type { StoredEvent } from './events.ts';

/**
 * A named query over a projection's state. Parameters after the state are whatever the query
 * needs; `never[]` lets any parameter list be assigned here.
 */
export type ProjectionQuery<S> = {
  // A method signature is checked bivariantly, so projections of different states fit one list.
  bivarianceHack(state: S, ...args: never[]): unknown;
}['bivarianceHack'];

/**
 * A projection's named queries. Left to inference, defineProjection keeps their names and
 * parameter types, and store.query(projection, name, ...args) checks them; this loose form
 * (any name, any arguments) is what a projection declared with explicit type arguments has.
 */
export type ProjectionQueries<S> = Record<string, ProjectionQuery<S>>;

/**
 * What defineProjection takes. E is the store's event map (core/event-map.ts): `apply` gets a
 * union discriminated by `type`, so `if (event.type === 'TodoAdded')` narrows `event.data`.
 */
export interface ProjectionDefinition<
  S,
  E = unknown,
  Q extends ProjectionQueries<S> = ProjectionQueries<S>,
> {
  name: string;
  /** Bump it when `apply` changes: the projection is then rebuilt from the log. */
  version: number;
  initial: () => S;
  /** Returns the next state. It may return a new object or the mutated one. */
  apply: (state: S, event: StoredEvent<E>) => S;
  /** Persist a snapshot every N folded events (default 1,000; 0 turns snapshots off). */
  snapshotEvery?: number;
  queries?: Q;
}

/**
 * A projection as the store holds it. `apply` is declared as a method so that projections over
 * different state and event types fit in one list (method parameters are bivariant). The object
 * is also a typed handle: store.state(projection) resolves to S, store.query(projection, ...)
 * checks a query of Q.
 */
export interface Projection<
  S = unknown,
  E = unknown,
  Q extends ProjectionQueries<S> = ProjectionQueries<S>,
> {
  readonly name: string;
  readonly version: number;
  readonly snapshotEvery: number;
  initial(): S;
  apply(state: S, event: StoredEvent<E>): S;
  readonly queries: Readonly<Q>;
}

export const DEFAULT_SNAPSHOT_EVERY = 1000;

/**
 * Declares a projection.
 *
 * @example
 * type TodoEvents = { TodoAdded: { title: string }; TodoDone: { done: boolean } };
 * const open = defineProjection<number, TodoEvents>({
 *   name: 'open', version: 1,
 *   initial: () => 0,
 *   apply: (n, event) => (event.type === 'TodoAdded' ? n + 1 : n),
 * });
 * // Left to inference (no type arguments), the queries' names and parameters are typed too:
 * const titles = defineProjection({
 *   name: 'titles', version: 1,
 *   initial: (): string[] => [],
 *   apply: (list, e: StoredEvent<TodoEvents>) => (e.type === 'TodoAdded' ? [...list, e.data.title] : list),
 *   queries: { at: (list: string[], i: number) => list[i] },
 * });
 */
export function defineProjection<
  S,
  E = unknown,
  Q extends ProjectionQueries<S> = ProjectionQueries<S>,
>(definition: ProjectionDefinition<S, E, Q>): Projection<S, E, Q> {
  const { name, version, initial, apply } = definition;
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new ValidationError(
      'projection.name',
      'must be a non-empty string of at most 256 characters',
    );
  }
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new ValidationError('projection.version', 'must be a positive integer');
  }
  if (typeof initial !== 'function')
    throw new ValidationError('projection.initial', 'must be a function');
  if (typeof apply !== 'function')
    throw new ValidationError('projection.apply', 'must be a function');
  const snapshotEvery = definition.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
  if (!Number.isSafeInteger(snapshotEvery) || snapshotEvery < 0) {
    throw new ValidationError('projection.snapshotEvery', 'must be a non-negative integer');
  }
  return {
    name,
    version,
    snapshotEvery,
    initial,
    apply,
    // A copy: the store must not see queries added to the definition afterwards.
    queries: { ...definition.queries } as Q,
  };
}

/**
 * The meta key (getMeta/setMeta) under which the store keeps the version of projection `name`
 * it ran last (invariant 4).
 */
export function projectionVersionKey(name: string): string {
  return `projection.${name}.version`;
}

/** (K, H): see the header. `cursor` is '' before the first event. */
export interface FoldProgress {
  cursor: string;
  pos: number;
  /**
   * False when events received no later than H may still sort after K: after loading a snapshot
   * taken in the middle of a fold, or a fold that stopped early. Such progress must advance even
   * when nothing new was received. Default true.
   */
  complete?: boolean;
}

export const NO_PROGRESS: FoldProgress = { cursor: '', pos: 0 };

export type CatchUpDecision =
  | { kind: 'up-to-date' }
  /** Fold the events after `progress.cursor` received no later than `head`. */
  | { kind: 'advance'; head: number }
  /** A late event: restart from the newest valid snapshot before `before`, or from initial(). */
  | { kind: 'rebase'; head: number; before: string };

/**
 * @param head the local log's last position now
 * @param minCursorSince the smallest cursor among positions in (progress.pos, head], if any
 */
export function decideCatchUp(
  progress: FoldProgress,
  head: number,
  minCursorSince: string | undefined,
): CatchUpDecision {
  if (head <= progress.pos || minCursorSince === undefined) {
    return progress.complete === false
      ? { kind: 'advance', head: Math.max(head, progress.pos) }
      : { kind: 'up-to-date' };
  }
  if (minCursorSince > progress.cursor) return { kind: 'advance', head };
  return { kind: 'rebase', head, before: minCursorSince };
}

export interface SnapshotPoint {
  cursor: string;
  pos: number;
}

/**
 * Invariant 3: a snapshot is usable for a fold that must include `before` when it lies before it
 * and nothing received after it sorts before it.
 * @param minCursorSinceSnapshot the smallest cursor among positions after snapshot.pos
 */
export function snapshotIsValid(
  snapshot: SnapshotPoint,
  minCursorSinceSnapshot: string | undefined,
): boolean {
  return minCursorSinceSnapshot === undefined || minCursorSinceSnapshot > snapshot.cursor;
}

/** Candidate snapshots for a rebase or time travel, newest first: those strictly before `bound`. */
export function snapshotCandidates<T extends SnapshotPoint>(snapshots: T[], bound: string): T[] {
  return snapshots
    .filter((s) => s.cursor < bound)
    .sort((a, b) => (a.cursor < b.cursor ? 1 : a.cursor > b.cursor ? -1 : 0));
}

/** Whether a snapshot is due after folding `foldedSinceSnapshot` events. */
export function snapshotDue(projection: Projection, foldedSinceSnapshot: number): boolean {
  return projection.snapshotEvery > 0 && foldedSinceSnapshot >= projection.snapshotEvery;
}
