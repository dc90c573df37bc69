import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { RecentBudget, RecentRecords, recordBytes } from '../../src/server/recent-records.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { makeEvent, makeEvents } from './events.ts';

/** Records at positions from..to (inclusive), each with `dataChars` characters of data. */
function records(from: number, to: number, dataChars = 10): LocalRecord[] {
  const out: LocalRecord[] = [];
  for (let pos = from; pos <= to; pos++) {
    out.push({ pos, event: makeEvent({ data: 'x'.repeat(dataChars) }) });
  }
  return out;
}

const positions = (list: readonly LocalRecord[] | undefined) => list?.map((r) => r.pos);

describe('RecentRecords', () => {
  it('serves contiguous records up to the head, and nothing it does not cover', () => {
    const cache = new RecentRecords(new RecentBudget());
    cache.add(records(1, 5));
    cache.add(records(6, 8));
    expect(positions(cache.slice(8, 0, 100))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(positions(cache.slice(8, 5, 2))).toEqual([6, 7]);
    // The database's head moved past the cache (another process wrote): not served.
    expect(cache.slice(9, 5, 2)).toBeUndefined();
    // A gap restarts the cache: 1..8 are gone, 20..21 kept.
    cache.add(records(20, 21));
    expect(cache.slice(21, 5, 10)).toBeUndefined();
    expect(positions(cache.slice(21, 19, 10))).toEqual([20, 21]);
  });

  it('keeps every space within one shared budget, evicting the oldest records first', () => {
    const size = recordBytes(records(1, 1)[0]!);
    const budget = new RecentBudget(size * 100);
    const a = new RecentRecords(budget);
    const b = new RecentRecords(budget);
    a.add(records(1, 80));
    expect(budget.used).toBe(size * 80);
    // b's 40 records push the total over 100: a (the larger) loses its oldest.
    b.add(records(1, 40));
    expect(budget.used).toBeLessThanOrEqual(size * 100);
    expect(budget.used).toBe(a.bytes + b.bytes);
    expect(positions(b.slice(40, 0, 100))).toHaveLength(40);
    expect(a.slice(80, 0, 100)).toBeUndefined();
    const kept = a.slice(80, 79, 1);
    expect(positions(kept)).toEqual([80]);
    // What a kept is still contiguous and ends at its head.
    const aFirst = 80 - a.bytes / size + 1;
    expect(positions(a.slice(80, aFirst - 1, 1000))?.[0]).toBe(aFirst);
    // Eviction leaves room, so the next small writes evict nothing.
    const before = a.bytes + b.bytes;
    b.add(records(41, 42));
    expect(a.bytes + b.bytes).toBe(before + 2 * size);
  });

  it('always keeps the write just added, even one larger than the whole budget', () => {
    const budget = new RecentBudget(1000);
    const cache = new RecentRecords(budget);
    cache.add(records(1, 3, 5000));
    expect(positions(cache.slice(3, 0, 10))).toEqual([1, 2, 3]);
    cache.add(records(4, 4, 5000));
    expect(positions(cache.slice(4, 3, 10))).toEqual([4]);
    expect(cache.slice(4, 0, 10)).toBeUndefined();
  });
});

describe('sqliteStorage with a tiny recent cache', () => {
  it('reads what the cache no longer holds from the database', async () => {
    const storage = sqliteStorage(':memory:', { recentCacheBytes: 1 });
    try {
      const space = await storage.openSpace('s');
      const events = makeEvents(300, { prefix: 'tiny' });
      for (let i = 0; i < events.length; i += 100) await space.ingest(events.slice(i, i + 100));
      const read = await space.readByPos(0, 1000);
      expect(read.map((r) => r.pos)).toEqual(events.map((_, i) => i + 1));
      expect(read.map((r) => r.event.id)).toEqual(events.map((e) => e.id));
      expect(read.map((r) => r.event.data)).toEqual(events.map((e) => e.data));
    } finally {
      await storage.close();
    }
  });
});
