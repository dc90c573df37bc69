/**
 * The positions of a log written because one session's peer sent them, with their event ids: the
 * sender skips them rather than echo them (session-sender.ts, invariant 5). A catch-up marks tens
 * of thousands of positions, nearly all in runs (each ingest writes consecutive positions), so
 * they are kept as spans of consecutive positions, not one map entry each: marking, skipping and
 * dropping a run costs per span, not per position.
 *
 * Invariants:
 * 1. Spans are disjoint, ordered by position, and each holds consecutive positions.
 * 2. A position not after the last one marked is not recorded (a log's positions only grow): at
 *    worst its event goes back to the peer, which dedupes it.
 * 3. `dropThrough(pos)` forgets every position up to `pos`; the sender calls it as it moves past.
 */
interface Span {
  first: number;
  ids: string[];
}

export class ReceivedSpans {
  private spans: Span[] = [];
  /** Index of the first live span: dropping from the front does not shift the array each time. */
  private start = 0;

  /** Marks `pos` as received, with its event id (invariant 2). */
  add(pos: number, id: string): void {
    const last = this.spans[this.spans.length - 1];
    if (last !== undefined && this.start < this.spans.length) {
      const next = last.first + last.ids.length;
      if (pos < next) return;
      if (pos === next) {
        last.ids.push(id);
        return;
      }
    }
    this.spans.push({ first: pos, ids: [id] });
  }

  has(pos: number): boolean {
    return this.indexAt(pos) >= 0;
  }

  /**
   * The longest run of received positions from `from + 1`, at most `maxEvents` long: its last
   * position and that position's id; undefined when `from + 1` was not received.
   */
  runAfter(from: number, maxEvents: number): { to: number; toId: string } | undefined {
    let index = this.indexAt(from + 1);
    if (index < 0) return undefined;
    let to = from;
    const limit = from + maxEvents;
    let toId = '';
    while (index < this.spans.length && to < limit) {
      const span = this.spans[index]!;
      if (span.first > to + 1) break;
      const end = Math.min(span.first + span.ids.length - 1, limit);
      if (end > to) {
        to = end;
        toId = span.ids[end - span.first]!;
      }
      index += 1;
    }
    return { to, toId };
  }

  /** Forgets every position up to and including `pos` (invariant 3). */
  dropThrough(pos: number): void {
    while (this.start < this.spans.length) {
      const span = this.spans[this.start]!;
      const end = span.first + span.ids.length - 1;
      if (end <= pos) {
        this.start += 1;
        continue;
      }
      if (span.first <= pos) {
        span.ids = span.ids.slice(pos - span.first + 1);
        span.first = pos + 1;
      }
      break;
    }
    // Compact once the dropped front outweighs the live spans.
    if (this.start > 32 && this.start * 2 > this.spans.length) {
      this.spans = this.spans.slice(this.start);
      this.start = 0;
    }
  }

  clear(): void {
    this.spans = [];
    this.start = 0;
  }

  /** The index of the live span holding `pos`, or -1: a binary search (invariant 1). */
  private indexAt(pos: number): number {
    let low = this.start;
    let high = this.spans.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const span = this.spans[mid]!;
      if (pos < span.first) high = mid - 1;
      else if (pos >= span.first + span.ids.length) low = mid + 1;
      else return mid;
    }
    return -1;
  }
}
