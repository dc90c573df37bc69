import type { StoredEventRecord } from '../../src/core/events.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import type { StoreInternals, SyncController } from '../../src/store/internal.ts';
import type { StoreOptions } from '../../src/store/types.ts';

/** A syncFactory that captures the store's internals, to feed it remote events in tests. */
export function captureInternals(): {
  factory: NonNullable<StoreOptions['syncFactory']>;
  internals: () => StoreInternals;
} {
  let captured: StoreInternals | undefined;
  const factory = (internals: StoreInternals): SyncController => {
    captured = internals;
    return {
      connect() {
        throw new Error('not in this test');
      },
      status: () => ({ state: 'offline', pending: 0 }),
      on: () => () => {},
      close: async () => {},
    };
  };
  return {
    factory,
    internals: () => {
      if (captured === undefined) throw new Error('store not opened');
      return captured;
    },
  };
}

/** A wall clock that tests move by hand. */
export function manualClock(start = Date.UTC(2026, 0, 1)) {
  let now = start;
  return {
    now: () => now,
    set: (ms: number) => {
      now = ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

export function asRecords(events: unknown[]): StoredEventRecord[] {
  return events as StoredEventRecord[];
}

/**
 * `inner`, whose logs answer with `overrides(log)` where it has a method, and as themselves
 * elsewhere: a seam to tap or delay one storage call in a store test. A log whose readByCursor
 * is overridden has no readByCursorAtHorizon (unless overridden too), so that the store's reads
 * go through the tapped one (store/history-reads.ts invariant 7).
 */
export function withLogOverrides(
  inner: StorageAdapter,
  overrides: (log: EventLog) => Partial<EventLog>,
): StorageAdapter {
  return {
    ...inner,
    async open(options) {
      const log = await inner.open(options);
      const own = overrides(log) as Record<PropertyKey, unknown>;
      return new Proxy(log, {
        get(target, property) {
          if (Object.hasOwn(own, property)) return own[property];
          if (property === 'readByCursorAtHorizon' && Object.hasOwn(own, 'readByCursor')) {
            return undefined;
          }
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}
