/**
 * The memory adapter's orders (memory.ts): records in cursor order, kept sorted lazily, and
 * binary searches by cursor and by position (positions may have holes: adapter.ts invariant 3).
 */
import type { LocalRecord } from '../core/events.ts';

/** Index of the first element whose cursor is > cursor (or >= when inclusive). */
export function upperBound(
  list: readonly LocalRecord[],
  cursor: string,
  inclusive: boolean,
): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = list[mid]!.event.cursor;
    if (inclusive ? c < cursor : c <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first record whose position is > pos (positions may have holes: adapter.ts 3). */
export function firstAfterPos(list: readonly LocalRecord[], pos: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.pos <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const byCursor = (a: LocalRecord, b: LocalRecord) =>
  a.event.cursor < b.event.cursor ? -1 : a.event.cursor > b.event.cursor ? 1 : 0;

/**
 * Records in cursor order. Local events (and most synced ones) sort after everything held and
 * are pushed; the others wait in `late` and are merged in one pass when the order is next read,
 * so a catch-up of older history costs one merge per read, not a move of the tail per batch.
 */
export class CursorOrder {
  private sorted: LocalRecord[] = [];
  private late: LocalRecord[] = [];

  add(batch: readonly LocalRecord[]): void {
    for (const record of batch) {
      const last = this.sorted[this.sorted.length - 1];
      if (
        this.late.length === 0 &&
        (last === undefined || last.event.cursor < record.event.cursor)
      ) {
        this.sorted.push(record);
      } else this.late.push(record);
    }
  }

  /** Takes a record out (a copy that lost: core/copies.ts). */
  remove(record: LocalRecord): void {
    const list = this.view() as LocalRecord[];
    const i = upperBound(list, record.event.cursor, true);
    for (let k = i; k < list.length && list[k]!.event.cursor === record.event.cursor; k++) {
      if (list[k] === record) {
        list.splice(k, 1);
        return;
      }
    }
  }

  /** Puts `record` in the place of `held`, which has the same cursor (a signed copy). */
  replace(held: LocalRecord, record: LocalRecord): void {
    const list = this.view() as LocalRecord[];
    const i = upperBound(list, held.event.cursor, true);
    for (let k = i; k < list.length && list[k]!.event.cursor === held.event.cursor; k++) {
      if (list[k] === held) {
        list[k] = record;
        return;
      }
    }
  }

  /** The records in cursor order (merging what waits). */
  view(): readonly LocalRecord[] {
    if (this.late.length === 0) return this.sorted;
    const late = this.late.sort(byCursor);
    const held = this.sorted;
    const merged: LocalRecord[] = new Array(held.length + late.length);
    let i = 0;
    let j = 0;
    for (let k = 0; k < merged.length; k++) {
      merged[k] =
        j >= late.length || (i < held.length && held[i]!.event.cursor < late[j]!.event.cursor)
          ? held[i++]!
          : late[j++]!;
    }
    this.sorted = merged;
    this.late = [];
    return merged;
  }
}
