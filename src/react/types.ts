/**
 * The store and projection shapes the hooks need, declared structurally: a store from openStore
 * and one from connectStore both fit, and /react imports nothing of the store's code (its bundle
 * is the hooks alone).
 */

/** What useProjection and useQuery call on a store. */
export interface WatchableStore {
  watch(projection: string, listener: (state: unknown) => void): () => void;
  state(projection: string): Promise<unknown>;
  query(projection: string, name: string, ...args: never[]): Promise<unknown>;
}

/** What useSyncStatus calls on a store: its `sync` API (Status is the store's SyncStatus). */
export interface SyncingStore<Status> {
  readonly sync: {
    status(): Status;
    on(event: 'status', listener: (status: Status) => void): () => void;
  };
}

/** A projection object (from defineProjection), typed by its state; or pass its name. */
export interface ProjectionLike<S> {
  readonly name: string;
  initial(): S;
}

type QueriesOf<P> = P extends { readonly queries: infer Q } ? Q : Record<string, never>;

/**
 * The names of a projection's queries; any string when its queries are typed only as a record
 * (what defineProjection declares today).
 */
export type QueryName<P> = string extends keyof QueriesOf<P>
  ? string
  : Extract<keyof QueriesOf<P>, string>;

type QueryFn<P, K> = K extends keyof QueriesOf<P> ? QueriesOf<P>[K] : undefined;

/**
 * A query's parameters after the state. `never[]` (a query typed loosely, as in
 * ProjectionQuery) reads as `unknown[]`.
 */
export type QueryArgs<P, K> =
  QueryFn<P, K> extends (state: never, ...args: infer A) => unknown
    ? [A] extends [never[]]
      ? [never[]] extends [A]
        ? unknown[]
        : A
      : A
    : unknown[];

/** What a query returns (awaited); `unknown` for a name or a loosely typed query. */
export type QueryResult<P, K> =
  QueryFn<P, K> extends (...args: never[]) => infer R ? Awaited<R> : unknown;

/**
 * A projection object whose queries are not declared precisely (any name goes): for these, and
 * for names, useQuery takes any query name and arguments and a result type to declare.
 * A projection that declares its queries precisely is checked against them instead.
 */
export type LooselyQueried<P> = P & (string extends QueryName<P> ? unknown : never);
