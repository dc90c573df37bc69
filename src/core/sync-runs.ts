/**
 * The runs of elided events open in a batch that planBatches (core/sync.ts) is filling: events
 * whose `$sig` was left out because a later event of their replica in the same batch covers them
 * (core/integrity.ts isElided, invariant 8). A receiver accepts an elided event only when a later
 * event of its batch covers it, so a batch must not end in the middle of a run.
 *
 * Invariants:
 * 1. A run of replica R opens at the first carried elided event of R in the batch and closes at
 *    the next carried event of R that is chained and not elided (the one that covers it). A
 *    strict event (outside the chain) neither opens nor closes a run; a skipped or left-out
 *    event is not carried, so neither does it.
 * 2. The mark is the batch as it stood right before the first record of the runs open now: since
 *    then, some run was open at every record. Cutting the batch back to it gives exactly the
 *    batch that would have ended there, and that batch ends with no run open. It is where the
 *    earliest open run began, unless runs overlap (replicas interleaved): then it is where the
 *    first of the overlapping runs began, which may have closed since (cutting at the earliest
 *    open run would leave that one open).
 * 3. There is no cut when the mark holds no event: the runs began at the batch's first carried
 *    event, cannot go whole to another batch, and cutting would not make progress.
 */
import type { StoredEventRecord } from './events.ts';
import { isChained } from './integrity.ts';

/** A batch as it stood before the record at `index` of the page (invariant 2). */
export interface BatchMark {
  /** Index in the page of the record where the run began: the next batch starts there. */
  index: number;
  events: number;
  bytes: number;
  ownSeq: number;
  leftOut: number;
  to: number;
  toId: string;
}

export class OpenRuns {
  private readonly open = new Set<string>();
  /** The batch before the first record of the runs open now (invariant 2). */
  private since: BatchMark | undefined;
  private readonly elided: (event: StoredEventRecord) => boolean;

  constructor(elided: (event: StoredEventRecord) => boolean) {
    this.elided = elided;
  }

  /** Notes a carried event; `mark` is asked only when it opens a run while none is open. */
  carry(event: StoredEventRecord, mark: () => BatchMark): void {
    if (this.elided(event)) {
      if (this.open.size === 0) this.since = mark();
      this.open.add(event.replica);
    } else if (isChained(event) && this.open.delete(event.replica) && this.open.size === 0) {
      this.since = undefined;
    }
  }

  /** Where the runs open now began (invariant 2); undefined when none is open. */
  openSince(): BatchMark | undefined {
    return this.since;
  }

  /** Where to cut the batch so that no run is left open, if it can be cut (invariant 3). */
  cut(): BatchMark | undefined {
    const since = this.since;
    return since === undefined || since.events === 0 ? undefined : since;
  }

  /** A new batch begins: runs are counted per batch. */
  clear(): void {
    this.open.clear();
    this.since = undefined;
  }
}

/** What of a batch a mark holds (core/sync.ts PlannedBatch). */
export interface MarkedBatch {
  events: StoredEventRecord[];
  leftOut: unknown[];
  bytes: number;
  ownSeq: number;
  to: number;
  toId: string;
  replicas: Set<string>;
}

/** The batch as it stands before the record at `index` (invariant 2). */
export function markOf(batch: MarkedBatch, index: number): BatchMark {
  return {
    index,
    events: batch.events.length,
    bytes: batch.bytes,
    ownSeq: batch.ownSeq,
    leftOut: batch.leftOut.length,
    to: batch.to,
    toId: batch.toId,
  };
}

/** Ends `batch` where `mark` was taken: exactly the batch that would have ended there. */
export function cutBack<B extends MarkedBatch>(batch: B, mark: BatchMark): B {
  batch.events.length = mark.events;
  batch.leftOut.length = mark.leftOut;
  batch.bytes = mark.bytes;
  batch.ownSeq = mark.ownSeq;
  batch.to = mark.to;
  batch.toId = mark.toId;
  batch.replicas.clear();
  for (const event of batch.events) batch.replicas.add(event.replica);
  return batch;
}

/**
 * Where the runs open at `end` began among `records[0, end)` (invariant 2, with every record not
 * skipped counted as carried), or `end` when none is open there. A sender that must stop at
 * `end` (a record it holds back) stops here instead: the run waits with the event covering it.
 */
export function runsOpenAt<R extends { event: StoredEventRecord }>(
  records: readonly R[],
  end: number,
  skip: (record: R) => boolean,
  elided: (event: StoredEventRecord) => boolean,
): number {
  const open = new Set<string>();
  let since = end;
  for (let i = 0; i < end; i++) {
    const record = records[i]!;
    if (skip(record)) continue;
    const event = record.event;
    if (elided(event)) {
      if (open.size === 0) since = i;
      open.add(event.replica);
    } else if (isChained(event) && open.delete(event.replica) && open.size === 0) {
      since = end;
    }
  }
  return open.size === 0 ? end : since;
}
