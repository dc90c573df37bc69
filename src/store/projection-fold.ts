/**
 * Folding helpers of the projection runtime (projection-runtime.ts), with no state of their own:
 * applying one event, a fresh fold of a range (time travel, retention's snapshots), and which
 * snapshots pruning deletes.
 */
import { ProjectionError } from '../core/errors.ts';
import type { StoredEvent, StoredEventRecord } from '../core/events.ts';
import type { Projection } from '../core/projection.ts';
import { foldable } from '../core/sealing.ts';
import type { UpcastFn } from '../core/upcast.ts';
import type { SnapshotMeta } from '../storage/adapter.ts';
import type { CursorReader } from './history-reads.ts';

/** Events per read while folding: fewer read transactions, still bounded memory. */
export const PAGE = 1000;

/**
 * What a fold's reads ask for: the store's upcast strips the integrity meta before `apply`, and
 * the fold reads none of it (storage/adapter.ts CursorQuery.withoutSignatures).
 */
export const UNSIGNED = { withoutSignatures: true } as const;

/** `projection.apply` on one stored event, upcast; its failure as a ProjectionError. */
export function applyEvent(
  projection: Projection,
  upcast: UpcastFn,
  state: unknown,
  record: StoredEventRecord,
): unknown {
  const event = upcast(record as StoredEvent);
  try {
    return projection.apply(state, event);
  } catch (cause) {
    throw new ProjectionError(
      `projection "${projection.name}" threw on event ${event.id}: ${String(cause)}`,
      { projection: projection.name, eventId: event.id },
    );
  }
}

/**
 * Folds the events after `after` up to the inclusive cursor bound `until` into `state`, reading
 * through `reader` (history below a horizon included); `head`: only events received no later.
 */
export async function foldRange(
  projection: Projection,
  upcast: UpcastFn,
  reader: CursorReader,
  start: { state: unknown; count: number; after: string },
  until: string,
  head: number,
): Promise<{ state: unknown; count: number }> {
  let { state, count, after } = start;
  for (;;) {
    const page = await reader.readByCursor(
      after === ''
        ? { until, limit: PAGE, ...UNSIGNED }
        : { after, until, limit: PAGE, ...UNSIGNED },
    );
    for (const record of page) {
      if (record.pos > head || !foldable(record.event)) continue;
      state = applyEvent(projection, upcast, state, record.event);
      count += 1;
    }
    if (page.length < PAGE) return { state, count };
    after = page[page.length - 1]!.event.cursor;
  }
}

/**
 * The snapshots pruning deletes (listed oldest first): all but the newest `keep`, and but the
 * newest `retained` at or below the horizon (projection-runtime.ts invariant 12).
 */
export function prunable(
  all: readonly SnapshotMeta[],
  keep: number,
  retained: number,
  horizon: string | undefined,
): SnapshotMeta[] {
  if (all.length <= keep) return [];
  const kept = new Set(
    horizon === undefined
      ? []
      : all
          .filter((s) => s.cursor <= horizon)
          .slice(-retained)
          .map((s) => s.cursor),
  );
  return all.slice(0, all.length - keep).filter((s) => !kept.has(s.cursor));
}
