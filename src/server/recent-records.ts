/**
 * The records a server storage wrote last, kept parsed so that live peers read memory, not the
 * database (the common case: every connected client tails the same few new events).
 *
 * Invariants:
 * 1. The kept records are contiguous in position and at most `capacity` long.
 * 2. `slice` answers only when the cache covers the request up to the head; otherwise undefined,
 *    and the caller reads the database.
 */
import type { LocalRecord } from '../core/events.ts';

export const RECENT_RECORDS = 4096;

export class RecentRecords {
  private records: LocalRecord[] = [];

  constructor(private readonly capacity = RECENT_RECORDS) {}

  /** Adds what one write stored; a gap (another writer's records) restarts the cache. */
  add(written: readonly LocalRecord[]): void {
    const first = written[0];
    if (first === undefined) return;
    const last = this.records[this.records.length - 1];
    if (last === undefined || first.pos !== last.pos + 1) this.records = [];
    this.records.push(...written);
    if (this.records.length > this.capacity) {
      this.records = this.records.slice(this.records.length - this.capacity);
    }
  }

  /** Up to `max` records after `afterPos`, when the cache holds them and ends at `head`. */
  slice(head: number, afterPos: number, max: number): LocalRecord[] | undefined {
    const first = this.records[0];
    const last = this.records[this.records.length - 1];
    if (first === undefined || last?.pos !== head || afterPos < first.pos - 1) return undefined;
    const start = afterPos - (first.pos - 1);
    return this.records.slice(start, start + max);
  }
}
