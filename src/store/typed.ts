/**
 * Projection objects as typed handles: state, watch, query and rebuild take a projection or its
 * name; given the object, the state and the query are typed from it.
 *
 * Invariants:
 * 1. A projection object is looked up by its `name` among the projections the store was opened
 *    with: one it was not opened with is refused like an unknown name (NotFoundError).
 * 2. Only the name crosses a worker boundary (functions cannot be cloned).
 * 3. A projection whose queries are loose (declared with explicit type arguments) takes any query
 *    name and arguments, as a name string does.
 */
import type { Projection } from '../core/projection.ts';

/** A projection of the store's event map E, whatever its state and queries. */
export type AnyProjection<E = unknown> = Projection<unknown, E>;

/** What state, watch, query and rebuild look a projection up by: the object or its name. */
export type ProjectionRef<E = unknown> = string | AnyProjection<E>;

type Loose<Q> = string extends keyof Q ? true : false;

/** The query names of Q (invariant 3: any string when Q is loose). */
export type QueryName<Q> = Loose<Q> extends true ? string : keyof Q & string;

/** The arguments of query N of Q, after the state; none will do for a name Q lacks. */
export type QueryArgs<Q, N extends string> =
  Loose<Q> extends true
    ? unknown[]
    : N extends keyof Q
      ? Q[N] extends (state: never, ...args: infer A) => unknown
        ? A
        : [never]
      : [never];

/** What query N of Q resolves to. */
export type QueryResult<Q, N extends string> =
  Loose<Q> extends true
    ? unknown
    : N extends keyof Q
      ? Q[N] extends (...args: never[]) => infer R
        ? Awaited<R>
        : never
      : never;

/** The name a projection is looked up by (invariants 1, 2); anything else is left as it is. */
export function projectionName(projection: ProjectionRef): string {
  return typeof projection === 'object' && projection !== null ? projection.name : projection;
}
