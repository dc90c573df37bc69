/** Two stores opened with openStore converge over sync.connect, with status reporting. */
import { describe, expect, it } from 'vitest';
import {
  defineProjection,
  type EventStore,
  type LooseEvents,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type SyncStatus,
} from '../../src/index.ts';

const titles = defineProjection<string[], LooseEvents<string>>({
  name: 'titles',
  version: 1,
  initial: () => [],
  apply: (list, e) => [...list, e.data],
});

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const ids = async (store: EventStore<LooseEvents<string>>) => (await store.read()).map((e) => e.id);

describe('store to store sync', () => {
  it('converges two stores, both ways, and reports idle with nothing pending', async () => {
    const a = await openStore<LooseEvents<string>>({
      name: 'a',
      storage: memoryStorage(),
      projections: [titles],
    });
    const b = await openStore<LooseEvents<string>>({
      name: 'b',
      storage: memoryStorage(),
      projections: [titles],
    });
    await a.append('card', { type: 'named', data: 'from a' });
    await b.append('card', { type: 'named', data: 'from b' });
    const statuses: SyncStatus[] = [];
    a.sync.on('status', (s) => statuses.push(s));
    const [ta, tb] = memoryTransportPair();
    const ca = a.sync.connect(ta);
    const cb = b.sync.connect(tb);
    await until(
      async () => (await a.read()).length === 2 && (await b.read()).length === 2,
      'catch-up',
    );
    expect(await ids(a)).toEqual(await ids(b));
    expect(await a.state('titles')).toEqual(await b.state('titles'));
    // Live tail after catch-up.
    await a.append('card', { type: 'named', data: 'live' });
    await until(async () => (await b.read()).length === 3, 'live event');
    await until(() => a.sync.status().state === 'idle' && a.sync.status().pending === 0, 'idle');
    expect(statuses.some((s) => s.state === 'syncing' || s.state === 'connecting')).toBe(true);
    expect(a.sync.status().lastSyncedAt).toBeTypeOf('number');
    // Both replicas appended version 1 of "card" concurrently: both see the conflict.
    expect((await a.conflicts()).map((c) => c.version)).toEqual([1]);
    expect((await b.conflicts()).map((c) => c.version)).toEqual([1]);
    await ca.close();
    await cb.close();
    expect(a.sync.status().state).toBe('offline');
    await a.close();
    await b.close();
  });

  it('reports events never acknowledged as pending after a reopen, before any connection', async () => {
    const storage = memoryStorage();
    const first = await openStore<LooseEvents<string>>({ name: 'p', storage });
    await first.append('card', [
      { type: 'named', data: 'x' },
      { type: 'named', data: 'y' },
    ]);
    await first.close();
    const reopened = await openStore<LooseEvents<string>>({ name: 'p', storage });
    await until(() => reopened.sync.status().pending === 2, 'pending after reopen');
    expect(reopened.sync.status().state).toBe('offline');
    await reopened.close();
  });
});
