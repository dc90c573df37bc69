/**
 * peekState: a projection's state read by the page itself, for its first paint, while the store's
 * worker starts. Starting a worker costs more than a page's whole budget for a first paint; a
 * read-only look at IndexedDB from the page does not (storage/idb-peek.ts does the reading).
 *
 * Invariants:
 * 1. The state is the one the store's state() gives at the head that was read: the same snapshot,
 *    the same events in the same order, through the same upcasters and apply.
 * 2. Undefined means "ask the store": no database yet, a database the store must migrate or that
 *    newer code wrote, no usable snapshot and more than `maxEvents` events to fold, or any failure
 *    (a throwing apply included: the store reports it). It never writes anything.
 */
import type { StoredEvent } from '../core/events.ts';
import type { Projection } from '../core/projection.ts';
import { foldable, isSealedState, sealedKid } from '../core/sealing.ts';
import { makeUpcast, type Upcaster } from '../core/upcast.ts';
import { type PeekSource, peekLog } from '../storage/idb-peek.ts';

export interface PeekStateOptions<S> extends PeekSource {
  /** The projection, as the store's worker declares it (same name, version and apply). */
  projection: Projection<S>;
  /** The store's upcasters, if it has any. */
  upcasters?: readonly Upcaster[];
}

/**
 * The projection's state as stored, read on the page without waiting for the store's worker, or
 * undefined: then ask the store. It folds at most `maxEvents` (default 2,000) events after the
 * projection's newest snapshot; past that the worker is the faster path.
 *
 * @example
 * // Before starting the worker: a worker starting beside it nearly doubles the page's read.
 * const first = await peekState({ name: 'app', projection: board });
 * const store = connectStore(new Worker(new URL('./store.worker.ts', import.meta.url), { type: 'module' }));
 * render(first ?? (await (await store).state('board')));
 */
export async function peekState<S>(options: PeekStateOptions<S>): Promise<S | undefined> {
  const { projection } = options;
  const upcast = makeUpcast(options.upcasters ?? []);
  try {
    const peeked = await peekLog(options, projection);
    if (peeked === undefined) return undefined;
    // An encrypted store's snapshots and events are sealed: only its worker holds the key.
    if (peeked.snapshot !== undefined && isSealedState(peeked.snapshot.state)) return undefined;
    let state = peeked.snapshot === undefined ? projection.initial() : (peeked.snapshot.state as S);
    for (const record of peeked.events) {
      if (sealedKid(record.event.meta) !== undefined) return undefined;
      if (!foldable(record.event)) continue;
      state = projection.apply(state, upcast(record.event as StoredEvent));
    }
    return state;
  } catch {
    return undefined;
  }
}
