/**
 * The hooks: each one builds a Source (source.ts) for its store and arguments, and reads it
 * through React's useSyncExternalStore.
 *
 * Invariants:
 * 1. A hook resubscribes exactly when its store, its projection's name, its query's name or its
 *    arguments change; arguments are compared by value (plain objects and arrays by contents,
 *    the rest with Object.is). A new projection object with the same name, or new arguments of
 *    the same values, keep the subscription.
 * 2. Before the store delivered a first value, useProjection and useQuery return undefined. The
 *    first value is pulled (state(), query()); watch starts once it came, so a name the store
 *    does not know fails the hook and leaves no listener behind.
 * 3. What the store refuses is thrown from the hook during render, for the nearest error
 *    boundary: an unknown projection or query, a closed store, a projection that throws while
 *    its first state is folded, a query that throws on any state. A projection that throws on a
 *    later event is reported by the store's watch as today (globally) and the hook keeps the
 *    last good state, as the store does (ProjectionError).
 * 4. useQuery runs at most one query at a time per hook: states that arrive while one runs
 *    coalesce into one more run after it, so results never go back in time.
 */
import { useMemo, useRef, useSyncExternalStore } from 'react';
import { settle } from './settle.ts';
import { createSource, type Reading, type Sink, type Source } from './source.ts';
import type {
  LooselyQueried,
  ProjectionLike,
  QueryArgs,
  QueryName,
  QueryResult,
  SyncingStore,
  WatchableStore,
} from './types.ts';

function nameOf(projection: string | ProjectionLike<unknown>): string {
  return typeof projection === 'string' ? projection : projection.name;
}

function unwrap<T>(reading: Reading<T>): T | undefined {
  if (!reading.ok) throw reading.error;
  return reading.value;
}

function useSource<T>(source: Source<T>): Reading<T> {
  // The server snapshot is the same reading: undefined (or the sync status) until subscribed.
  return useSyncExternalStore(source.subscribe, source.read, source.read);
}

/**
 * The previous array while the arguments are the same values (invariant 1): compared item by
 * item, plain objects and arrays by their contents (settle.ts 1), so an inline `{ id }` does not
 * resubscribe on every render, which would run the query again and render again, forever.
 */
function useStableArgs(args: readonly unknown[]): readonly unknown[] {
  const held = useRef(args);
  if (settle(held.current, args) !== held.current) held.current = args;
  return held.current;
}

/**
 * Watches `name` once `started()` is called, after the first pull succeeded (invariant 2): a
 * name the store does not know fails that pull, for the hook, and leaves no listener behind
 * (through connectStore a watch on an unknown name reports it only globally). watch's first
 * state is the current one, so no change is missed in between.
 */
function watchAfter(
  store: WatchableStore,
  name: string,
  sink: Sink<unknown>,
  onState: (state: unknown) => void,
): { started(): void; stop(): void } {
  let stop: (() => void) | undefined;
  return {
    started() {
      if (stop !== undefined || !sink.live) return;
      try {
        stop = store.watch(name, onState);
      } catch (error) {
        sink.fail(error);
      }
    },
    stop: () => stop?.(),
  };
}

function projectionSource<S>(store: WatchableStore, name: string): Source<S> {
  return createSource<S>((sink) => {
    const watching = watchAfter(store, name, sink as Sink<unknown>, (state) =>
      sink.next(state as S),
    );
    store.state(name).then(
      (state) => {
        sink.next(state as S);
        watching.started();
      },
      (error: unknown) => sink.fail(error),
    );
    return watching.stop;
  });
}

function querySource<R>(
  store: WatchableStore,
  projection: string,
  name: string,
  args: readonly unknown[],
): Source<R> {
  return createSource<R>((sink) => {
    let running = false;
    let again = false;
    const query = store.query as (p: string, q: string, ...a: unknown[]) => Promise<unknown>;
    const watching = watchAfter(store, projection, sink as Sink<unknown>, () => run());
    const run = (): void => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      again = false;
      query(projection, name, ...args)
        .then(
          (result) => {
            sink.next(result as R);
            watching.started();
          },
          (error: unknown) => sink.fail(error),
        )
        .finally(() => {
          running = false;
          if (again && sink.live) run();
        });
    };
    run();
    return watching.stop;
  });
}

/**
 * The state of a projection, kept current: the component renders again when the state changes,
 * once per state the store's watch emits that differs from the last one (structurally: an equal
 * state keeps its reference, and so do the unchanged parts of a changed one). `undefined` until
 * the store delivered the first state. Errors are thrown for an error boundary. Treat the state
 * as read-only.
 *
 * @example
 * const open = useProjection(store, openTodos);   // or useProjection<number>(store, 'open-todos')
 * return open === undefined ? <Spinner /> : <p>{open} to do</p>;
 */
export function useProjection<S = unknown>(
  store: WatchableStore,
  projection: string | ProjectionLike<S>,
): S | undefined {
  const name = nameOf(projection);
  const source = useMemo(() => projectionSource<S>(store, name), [store, name]);
  return unwrap(useSource(source));
}

/**
 * The result of a projection's named query, run again whenever the projection's state changes;
 * arguments are compared by value (new arguments of the same values do not run it again).
 * `undefined` until the first result. Errors (an unknown query, a query that throws) are thrown
 * for an error boundary.
 *
 * @example
 * const title = useQuery(store, todos, 'title', id);
 */
export function useQuery<P extends ProjectionLike<unknown>, K extends QueryName<P>>(
  store: WatchableStore,
  projection: P,
  name: K,
  ...args: QueryArgs<P, K>
): QueryResult<P, K> | undefined;
export function useQuery<R = unknown, P extends ProjectionLike<unknown> = ProjectionLike<unknown>>(
  store: WatchableStore,
  projection: string | LooselyQueried<P>,
  name: string,
  ...args: unknown[]
): R | undefined;
export function useQuery(
  store: WatchableStore,
  projection: string | ProjectionLike<unknown>,
  name: string,
  ...args: unknown[]
): unknown {
  const projectionName = nameOf(projection);
  const stableArgs = useStableArgs(args);
  const source = useMemo(
    () => querySource<unknown>(store, projectionName, name, stableArgs),
    [store, projectionName, name, stableArgs],
  );
  return unwrap(useSource(source));
}

/**
 * The store's sync status (state, pending, lastSyncedAt, lastError), current from the first
 * render: it is known synchronously. Renders again only when the status changes.
 *
 * @example
 * const { state, pending } = useSyncStatus(store);
 */
export function useSyncStatus<Status>(store: SyncingStore<Status>): Status {
  const source = useMemo(
    () =>
      createSource<Status>((sink) => {
        const stop = store.sync.on('status', (status) => sink.next(status));
        // A change between the first render and this subscription.
        sink.next(store.sync.status());
        return stop;
      }, store.sync.status()),
    [store],
  );
  // Never undefined: the source starts from the status (createSource's initial).
  return unwrap(useSource(source)) as Status;
}
