/**
 * sync/controller.ts invariant 11: `lastSyncedAt` survives a restart (a reload used to say "not
 * synced yet" seconds after a sync), and keeping it costs no meta write per acknowledgement.
 */
import { describe, expect, it } from 'vitest';
import { type EventStore, memoryStorage, memoryTransportPair, openStore } from '../../src/index.ts';
import { SYNCED_AT_META_KEY } from '../../src/sync/sync-meta.ts';
import { withLogOverrides } from '../store/helpers.ts';
import { until } from './helpers.ts';

describe('sync status: lastSyncedAt', () => {
  it('is kept across a restart, and written at most once per 10 s of syncing', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const shared = memoryStorage();
    let saves = 0;
    const counted = withLogOverrides(shared, (log) => ({
      setMeta: (key: string, value: Parameters<typeof log.setMeta>[1]) => {
        if (key === SYNCED_AT_META_KEY) saves += 1;
        return log.setMeta(key, value);
      },
    }));
    let a: EventStore = await openStore({ name: 'a', storage: counted, now: clock });
    const b = await openStore({ name: 'b', storage: memoryStorage(), now: clock });
    const [ta, tb] = memoryTransportPair();
    const la = a.sync.connect(ta);
    const lb = b.sync.connect(tb);
    try {
      for (let i = 0; i < 20; i++) {
        await a.append('s', { type: 't', data: i });
        await until(() => a.sync.status().pending === 0 && a.sync.status().state === 'idle');
      }
      expect(a.sync.status().lastSyncedAt).toBe(1_000_000);
      expect(saves).toBe(1);
      now += 11_000;
      await a.append('s', { type: 't', data: 'later' });
      await until(() => a.sync.status().lastSyncedAt === now);
      await until(() => saves === 2);
    } finally {
      await la.close();
      await lb.close();
      await a.close();
    }
    // A restart, before any connection: the last sync is still known.
    a = await openStore({ name: 'a', storage: shared, now: clock });
    try {
      await until(() => a.sync.status().lastSyncedAt === 1_011_000);
      expect(a.sync.status().state).toBe('offline');
    } finally {
      await a.close();
      await b.close();
    }
  });
});
