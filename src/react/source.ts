/**
 * A Source is what one hook instance hands to React's useSyncExternalStore: a snapshot read
 * synchronously, and a subscribe that React calls after commit and undoes on unmount.
 *
 * Invariants:
 * 1. Nothing subscribes during render: the store is only touched in subscribe, which React calls
 *    after commit, so a render that React discards (Suspense, transitions) leaves no listener.
 * 2. Every subscription is undone by the function subscribe returns; values and errors that
 *    arrive for a subscription already undone are dropped.
 * 3. The reading changes reference only when the value changed (settle.ts 1) or an error came:
 *    React renders once per emitted state that differs, never for an equal one.
 * 4. Through useSyncExternalStore every component reads one snapshot per render: no tearing.
 */
import { settle } from './settle.ts';

/** What a hook reads: the settled value (undefined before the first), or the error to throw. */
export type Reading<T> =
  | { readonly ok: true; readonly value: T | undefined }
  | { readonly ok: false; readonly error: unknown };

/** Where one subscription delivers; after its subscription is undone, a no-op (invariant 2). */
export interface Sink<T> {
  next(value: T): void;
  fail(error: unknown): void;
  readonly live: boolean;
}

export interface Source<T> {
  /** Stable per source: React resubscribes when this function changes. */
  readonly subscribe: (onChange: () => void) => () => void;
  readonly read: () => Reading<T>;
}

/**
 * A source whose `start` subscribes to the store and returns how to stop; a throw from `start`
 * is the source's error. `initial` is the value before anything is emitted.
 */
export function createSource<T>(start: (sink: Sink<T>) => () => void, initial?: T): Source<T> {
  let reading: Reading<T> = {
    ok: true,
    value: initial === undefined ? undefined : settle(undefined, initial),
  };
  const listeners = new Set<() => void>();
  let stop: (() => void) | undefined;
  let current: { live: boolean } | undefined;

  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  const open = () => {
    const session = { live: true };
    current = session;
    const sink: Sink<T> = {
      get live() {
        return session.live;
      },
      next(value) {
        if (!session.live || !reading.ok) return;
        const settled = settle(reading.value, value);
        if (Object.is(settled, reading.value)) return;
        reading = { ok: true, value: settled };
        notify();
      },
      fail(error) {
        if (!session.live || !reading.ok) return;
        reading = { ok: false, error };
        notify();
      },
    };
    try {
      stop = start(sink);
    } catch (error) {
      sink.fail(error);
    }
  };

  const close = () => {
    if (current !== undefined) current.live = false;
    current = undefined;
    const undo = stop;
    stop = undefined;
    undo?.();
  };

  return {
    subscribe(onChange) {
      listeners.add(onChange);
      if (listeners.size === 1) open();
      return () => {
        if (!listeners.delete(onChange)) return;
        if (listeners.size === 0) close();
      };
    },
    read: () => reading,
  };
}
