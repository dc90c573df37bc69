/**
 * How far the broker publisher (publisher.ts) is behind: positions not yet published per space
 * and in total, and the age of the oldest of them, for ServerMetrics and /metrics.
 *
 * Invariants:
 * 1. The lag of a space is its head minus its published position: holes (copies that lost,
 *    core/copies.ts) past the position count until the publisher passes them, so it errs high.
 * 2. The age of the oldest unpublished event is measured from when this server first saw the head
 *    that holds it (an append it made or heard of, or the head it found when it began to
 *    publish: a lower bound then), to within MARK_EVERY_MS; marks are kept per space only while
 *    it is behind, at most one per MARK_EVERY_MS, so a broker down for hours costs little memory.
 */

/** Coarseness of the oldest-event age (invariant 2). */
const MARK_EVERY_MS = 1000;

interface Mark {
  /** The head seen... */
  head: number;
  /** ...first at this time (ms). */
  at: number;
}

export class PublishLag {
  private readonly heads = new Map<string, number>();
  private readonly positions = new Map<string, number>();
  private readonly marks = new Map<string, Mark[]>();
  private total = 0;
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  /** The head of `space` as last seen. */
  headOf(space: string): number {
    return this.heads.get(space) ?? 0;
  }

  /** The published position of `space` as last recorded. */
  positionOf(space: string): number {
    return this.positions.get(space) ?? 0;
  }

  /** A head seen (an append, or a listing); lower ones than known are ignored. */
  sawHead(space: string, head: number): void {
    const before = this.heads.get(space) ?? 0;
    if (head <= before) return;
    this.heads.set(space, head);
    if (head > this.positionOf(space)) {
      const marks = this.marks.get(space) ?? [];
      const last = marks[marks.length - 1];
      const at = this.now();
      if (last !== undefined && at - last.at < MARK_EVERY_MS) last.head = head;
      else marks.push({ head, at });
      this.marks.set(space, marks);
    }
    this.update(space, before, this.positionOf(space));
  }

  /** A position published (or found published); lower ones than known are ignored. */
  published(space: string, pos: number): void {
    const before = this.positionOf(space);
    if (pos <= before) return;
    this.positions.set(space, pos);
    const marks = this.marks.get(space);
    if (marks !== undefined) {
      while (marks.length > 0 && marks[0]!.head <= pos) marks.shift();
      if (marks.length === 0) this.marks.delete(space);
    }
    this.update(space, this.headOf(space), before);
  }

  /** Forgets positions (a publisher that lost its lock no longer knows them); heads stay. */
  forgetPositions(): void {
    this.positions.clear();
    this.marks.clear();
    this.total = 0;
    for (const head of this.heads.values()) this.total += head;
  }

  private update(space: string, oldHead: number, oldPos: number): void {
    const lag = this.lagOf(space);
    this.total += lag - Math.max(0, oldHead - oldPos);
    // Behind with no mark (positions forgotten, or found behind at start): seen from now.
    if (lag > 0 && !this.marks.has(space)) {
      this.marks.set(space, [{ head: this.headOf(space), at: this.now() }]);
    }
  }

  lagOf(space: string): number {
    return Math.max(0, this.headOf(space) - this.positionOf(space));
  }

  /** Every space behind, with its lag. */
  spacesBehind(): Map<string, number> {
    const behind = new Map<string, number>();
    for (const space of this.heads.keys()) {
      const lag = this.lagOf(space);
      if (lag > 0) behind.set(space, lag);
    }
    return behind;
  }

  totalLag(): number {
    return this.total;
  }

  /** Milliseconds since the oldest unpublished event was first seen; 0 when none (invariant 2). */
  oldestAgeMs(): number {
    let oldest: number | undefined;
    for (const marks of this.marks.values()) {
      const at = marks[0]?.at;
      if (at !== undefined && (oldest === undefined || at < oldest)) oldest = at;
    }
    return oldest === undefined ? 0 : Math.max(0, this.now() - oldest);
  }
}
