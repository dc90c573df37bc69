/**
 * The records a server storage wrote last, kept parsed so that peers read memory, not the
 * database: live tailing (every connected client reads the same few new events), and a catch-up
 * forwarding one client's upload to another while it is still arriving (measured: reading those
 * back from SQLite cost a quarter of the server's time in a 2 × 50,000-event catch-up).
 *
 * Invariants:
 * 1. The kept records of one space are contiguous in position and end at the newest one written.
 * 2. `slice` answers only when the cache covers the request up to the head; otherwise undefined,
 *    and the caller reads the database.
 * 3. Memory is bounded per storage, not per space: every space's cache draws on one RecentBudget
 *    of estimated bytes, so a busy space may use all of it while a thousand quiet ones cost
 *    little. Over the budget, caches holding more than an even share lose their oldest records,
 *    down to below the limit with room to spare (so eviction is rare, not on every write). The
 *    records of the write just added are always kept.
 */
import type { LocalRecord } from '../core/events.ts';
import { dataTextOf } from '../sync/event-codec.ts';

/** The default budget of one storage, in estimated bytes. */
const RECENT_BYTES = 128 * 1024 * 1024;
/**
 * Estimated heap bytes of a record beside its data: the record and event objects, and the
 * strings of id, stream, type, HLC and cursor. Measured: 816 bytes a record for data of 234
 * characters (heapUsed after GC, 20,000 decoded records).
 */
const RECORD_OVERHEAD = 320;
/** After an eviction the budget is this full at most, so the next writes evict nothing. */
const EVICT_TO = 0.75;

/** Estimated heap bytes of a record: its data twice over (parsed, and its JSON text kept). */
export function recordBytes(record: LocalRecord): number {
  return RECORD_OVERHEAD + 2 * dataTextOf(record.event).length;
}

export class RecentBudget {
  used = 0;
  readonly caches = new Set<RecentRecords>();
  readonly limitBytes: number;

  constructor(limitBytes = RECENT_BYTES) {
    this.limitBytes = limitBytes;
  }

  /** Invariant 3: trims the caches above an even share until the budget has room again. */
  evict(adding: RecentRecords, keepLast: number): void {
    if (this.used <= this.limitBytes) return;
    const target = this.limitBytes * EVICT_TO;
    const share = target / Math.max(1, this.caches.size);
    for (const cache of this.caches) {
      if (this.used <= target) return;
      if (cache !== adding) cache.trimTo(share, 0);
    }
    adding.trimTo(Math.max(share, adding.bytes - (this.used - target)), keepLast);
  }
}

export class RecentRecords {
  private records: LocalRecord[] = [];
  private sizes: number[] = [];
  /** Estimated bytes of the records kept. */
  bytes = 0;

  private readonly budget: RecentBudget;

  /** `budget`: the storage's, shared by all its spaces (invariant 3). */
  constructor(budget: RecentBudget) {
    this.budget = budget;
    budget.caches.add(this);
  }

  /** Adds what one write stored; a gap (another writer's records) restarts the cache. */
  add(written: readonly LocalRecord[]): void {
    const first = written[0];
    if (first === undefined) return;
    const last = this.records[this.records.length - 1];
    if (last === undefined || first.pos !== last.pos + 1) this.trimTo(0, 0);
    for (const record of written) {
      const size = recordBytes(record);
      this.records.push(record);
      this.sizes.push(size);
      this.bytes += size;
      this.budget.used += size;
    }
    // The newest write stays whatever the budget (invariant 3): an empty cache would send every
    // live reader of the space to the database.
    this.budget.evict(this, written.length);
  }

  /** Up to `max` records after `afterPos`, when the cache holds them and ends at `head`. */
  slice(head: number, afterPos: number, max: number): LocalRecord[] | undefined {
    const first = this.records[0];
    const last = this.records[this.records.length - 1];
    if (first === undefined || last?.pos !== head || afterPos < first.pos - 1) return undefined;
    const start = afterPos - (first.pos - 1);
    return this.records.slice(start, start + max);
  }

  /** Drops the oldest records until at most `bytes` are kept, but never the last `keepLast`. */
  trimTo(bytes: number, keepLast: number): void {
    const droppable = this.records.length - keepLast;
    let drop = 0;
    let freed = 0;
    while (drop < droppable && this.bytes - freed > bytes) {
      freed += this.sizes[drop]!;
      drop += 1;
    }
    if (drop === 0) return;
    this.records = this.records.slice(drop);
    this.sizes = this.sizes.slice(drop);
    this.bytes -= freed;
    this.budget.used -= freed;
  }
}
