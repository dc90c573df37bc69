/**
 * A partial replica beside a full one, for retention tests: a store with `retain` (the device)
 * and a real memory log holding every event (the server). The device's server link reads
 * history from that log's readByCursor, and its checkpoint moves only when the test syncs.
 */
import { HistoryUnavailableError } from '../../src/core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import type { Projection } from '../../src/core/projection.ts';
import type { RetainPolicy } from '../../src/core/retention.ts';
import { defineProjection, memoryStorage, openStore } from '../../src/index.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import type { ServerLink } from '../../src/store/server-link.ts';
import { captureInternals, manualClock } from './helpers.ts';

export const T0 = Date.UTC(2026, 0, 1);

export async function partialReplica<E>(
  retain: RetainPolicy | undefined,
  projections: Projection<unknown, E>[],
  storage: StorageAdapter = memoryStorage(),
) {
  const clock = manualClock(T0);
  const capture = captureInternals();
  const store = await openStore<E>({
    name: 'device',
    storage,
    projections,
    ...(retain === undefined ? {} : { retain }),
    syncFactory: capture.factory,
    now: clock.now,
    signing: false,
  });
  const internals = capture.internals();
  const server: EventLog = await memoryStorage().open();
  let acked = 0;
  let online = true;
  let historyReads = 0;
  const listeners = new Set<() => void>();
  const link: ServerLink = {
    history: {
      async read(query) {
        if (!online) throw new HistoryUnavailableError();
        historyReads += 1;
        return (await server.readByCursor(query)).map((r) => r.event);
      },
    },
    ackedPos: () => acked,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  internals.attachServer?.(link);

  return {
    store,
    internals,
    server,
    clock,
    /** The device's own log (as sync replicates it). */
    log: internals.log,
    /** Sends the device's log to the server; the server's checkpoint then covers `upTo` (default: all). */
    async sync(upTo?: number): Promise<void> {
      const head = upTo ?? (await internals.log.headPos());
      const records = (await internals.log.readByPos(acked, 1_000_000)).filter(
        (r) => r.pos <= head,
      );
      await server.ingest({
        events: records.map((r) => r.event),
        now: clock.now(),
        maxClockDriftMs: Number.POSITIVE_INFINITY,
      });
      acked = Math.max(acked, head);
    },
    /** Events another replica wrote: the server holds them, and the device receives them. */
    async remote(events: StoredEventRecord[]): Promise<void> {
      await server.ingest({ events, now: clock.now(), maxClockDriftMs: Number.POSITIVE_INFINITY });
      await internals.ingest(events, { vouchedByServer: true });
    },
    setOnline(value: boolean): void {
      online = value;
      for (const listener of [...listeners]) listener();
    },
    get acked() {
      return acked;
    },
    get historyReads() {
      return historyReads;
    },
    retain() {
      if (internals.retainNow === undefined) throw new Error('the store does not retain');
      return internals.retainNow();
    },
    /** Every event the server holds, in the total order. */
    async full(): Promise<LocalRecord[]> {
      return server.readByCursor({ limit: 1_000_000 });
    },
  };
}

/** The events of `seenProjection`: each carries its place `n`. */
export type SeenEvents = { t: { n: number } };

/**
 * Every `n` in the order folded: order matters, so a wrong rebase shows. `snapshotEvery` small,
 * so that retention finds snapshots to keep and rebases start from them.
 */
export function seenProjection(snapshotEvery: number) {
  return defineProjection<number[], SeenEvents>({
    name: 'seen',
    version: 1,
    snapshotEvery,
    initial: () => [],
    apply: (list, e) => [...list, e.data.n],
  });
}
