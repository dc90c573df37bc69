/**
 * `pending` after a store's own appends without a read of the log each time (store.ts ownSeqAt,
 * sync/controller.ts): the store knows the seq it just wrote, and a read per append was a
 * transaction the next append waited for (a third of the rate of awaited appends in Chromium).
 * A change the store cannot account for (another tab's append) is still read from the log.
 */
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { withLogOverrides } from '../store/helpers.ts';
import { until } from './helpers.ts';

describe('sync status: pending after own appends', () => {
  it('counts own appends without reading the log for each, and reads after another tab wrote', async () => {
    const shared = memoryStorage();
    let reads = 0;
    const counted = withLogOverrides(shared, (log) => ({
      ownSeq: () => {
        reads += 1;
        return log.ownSeq();
      },
    }));
    const store = await openStore({ name: 'hint', storage: counted });
    const tab = await openStore({ name: 'hint', storage: shared });
    try {
      await until(() => reads >= 1); // the controller's first read, as it starts
      const before = reads;
      for (let i = 0; i < 30; i++) await store.append('s', { type: 't', data: i });
      await until(() => store.sync.status().pending === 30);
      expect(reads - before).toBeLessThanOrEqual(1);

      // Another handle on the database (a tab) appends: one replica, so pending counts it too,
      // and only a read of the log can tell.
      await tab.append('s', { type: 't', data: 30 });
      await until(() => store.sync.status().pending === 31);
      expect(reads).toBeGreaterThan(before);
    } finally {
      await tab.close();
      await store.close();
    }
  });
});
