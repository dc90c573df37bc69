/**
 * worker/lazy-sync.ts: the worker's sync controller, loaded after the store exists. Cites its
 * invariants by number.
 */
import { describe, expect, it, vi } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import type { SyncStatus } from '../../src/core/sync-types.ts';
import {
  memoryStorage,
  memoryTransportPair,
  StoreClosedError,
  SyncError,
} from '../../src/index.ts';
import { createStore } from '../../src/store/create-store.ts';
import type { SyncController, SyncFactory } from '../../src/store/internal.ts';
import { type LazySyncController, lazySyncFactory } from '../../worker/lazy-sync.ts';
import { until } from '../sync/helpers.ts';

/** A controller module whose load the test releases by hand. */
function deferredModule(controller: Partial<SyncController> = {}) {
  let release!: () => void;
  let fail!: (error: Error) => void;
  let created = 0;
  let loads = 0;
  const gate = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  const listeners = new Set<(s: SyncStatus) => void>();
  const full: SyncController = {
    connect: () => ({ close: async () => {}, status: () => ({ state: 'connecting', pending: 0 }) }),
    status: () => ({ state: 'idle', pending: 3 }),
    on: (_e, listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {},
    ...controller,
  };
  const syncFactory = (): SyncFactory => () => {
    created += 1;
    return full;
  };
  return {
    loads: () => loads,
    load: async () => {
      loads += 1;
      await gate;
      return { syncFactory };
    },
    release,
    fail,
    created: () => created,
    emit: (s: SyncStatus) => {
      for (const l of [...listeners]) l(s);
    },
  };
}

async function storeWith(factory: SyncFactory) {
  return createStore({ name: 'lazy', storage: memoryStorage(), syncFactory: factory });
}

describe('lazySyncFactory (worker/lazy-sync.ts)', () => {
  it('reports offline until the module is loaded, then hands early listeners to the controller (1)', async () => {
    const module = deferredModule();
    const store = await storeWith(lazySyncFactory({ load: module.load, delayMs: 0 }));
    const seen: SyncStatus[] = [];
    store.sync.on('status', (s) => seen.push(s));
    expect(store.sync.status()).toEqual({ state: 'offline', pending: 0 });
    module.release();
    await (store.sync as LazySyncController).ready();
    expect(store.sync.status()).toEqual({ state: 'idle', pending: 3 });
    module.emit({ state: 'syncing', pending: 1 });
    expect(seen).toEqual([{ state: 'syncing', pending: 1 }]);
    await store.close();
  });

  it('never loads the module by itself: a store that never syncs never loads it (5)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    try {
      const module = deferredModule();
      module.release();
      const store = await storeWith(lazySyncFactory({ load: module.load }));
      const seen: SyncStatus[] = [];
      store.sync.on('status', (s) => seen.push(s));
      await vi.advanceTimersByTimeAsync(24 * 3600_000);
      expect(store.sync.status()).toEqual({ state: 'offline', pending: 0 });
      expect(module.loads()).toBe(0);
      expect(seen).toEqual([]);
      await store.close();
      expect(module.loads()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('loads the module at once when something needs it (2)', async () => {
    const module = deferredModule();
    const store = await storeWith(lazySyncFactory({ load: module.load }));
    expect(module.loads()).toBe(0);
    const ready = (store.sync as LazySyncController).ready();
    expect(module.loads()).toBe(1);
    module.release();
    await ready;
    expect(store.sync.status()).toEqual({ state: 'idle', pending: 3 });
    await store.close();
  });

  it('loads the module by itself after the delay, when one is asked for', async () => {
    const module = deferredModule();
    module.release();
    const store = await storeWith(lazySyncFactory({ load: module.load, delayMs: 5 }));
    await until(() => module.created() > 0);
    expect(module.created()).toBe(1);
    await store.close();
  });

  it('stops an early listener that was removed before the module arrived (1)', async () => {
    const module = deferredModule();
    const store = await storeWith(lazySyncFactory({ load: module.load, delayMs: 0 }));
    const seen: SyncStatus[] = [];
    const off = store.sync.on('status', (s) => seen.push(s));
    off();
    module.release();
    await (store.sync as LazySyncController).ready();
    module.emit({ state: 'syncing', pending: 1 });
    expect(seen).toEqual([]);
    await store.close();
  });

  it('throws from connect() called before the module is loaded, instead of losing a bad target (2)', async () => {
    const module = deferredModule();
    const store = await storeWith(lazySyncFactory({ load: module.load, delayMs: 0 }));
    expect(() => store.sync.connect({ url: 'ws://127.0.0.1:1' })).toThrow(SyncError);
    module.release();
    await store.close();
  });

  it('never creates a controller for a store closed before the module arrived (3)', async () => {
    const module = deferredModule();
    const store = await storeWith(lazySyncFactory({ load: module.load, delayMs: 0 }));
    await store.close();
    module.release();
    await (store.sync as LazySyncController).ready();
    expect(module.created()).toBe(0);
    expect(() => store.sync.connect({ url: 'ws://127.0.0.1:1' })).toThrow(StoreClosedError);
  });

  it('serves the store without sync when the module cannot be loaded, and says why (4)', async () => {
    const module = deferredModule();
    const store = await storeWith(lazySyncFactory({ load: module.load, delayMs: 0 }));
    module.fail(new Error('chunk missing'));
    await (store.sync as LazySyncController).ready();
    expect(() => store.sync.connect({ url: 'ws://127.0.0.1:1' })).toThrow(/chunk missing/);
    expect(store.sync.status()).toEqual({ state: 'offline', pending: 0 });
    await store.append('s', { type: 't', data: 1 });
    expect(await store.read()).toHaveLength(1);
    await store.close();
  });

  it("reads history through the loaded controller's, and rejects with HISTORY_OFFLINE before it is loaded (6)", async () => {
    const page = [{ id: 'e1' }] as unknown as StoredEventRecord[];
    const read = vi.fn(async () => page);
    const module = deferredModule({ history: { read } });
    const lazy = lazySyncFactory({ load: module.load })(
      {} as Parameters<SyncFactory>[0],
    ) as LazySyncController;
    await expect(lazy.history!.read({ limit: 10 })).rejects.toMatchObject({
      code: 'HISTORY_OFFLINE',
    });
    expect(module.loads()).toBe(0);
    // Asked for (a connect is coming): a read made while it loads waits for the controller.
    const loaded = lazy.ready();
    const waiting = lazy.history!.read({ limit: 5 });
    expect(read).not.toHaveBeenCalled();
    module.release();
    await loaded;
    expect(await waiting).toBe(page);
    expect(read).toHaveBeenCalledWith({ limit: 5 });
    expect(await lazy.history!.read({ limit: 10 })).toBe(page);
    expect(read).toHaveBeenCalledWith({ limit: 10 });
    await lazy.close();
  });

  it("reads history through `fallbackHistory` until its controller is loaded, then through the controller's own (6)", async () => {
    const relayed = [{ id: 'from-the-leader' }] as unknown as StoredEventRecord[];
    const own = [{ id: 'own' }] as unknown as StoredEventRecord[];
    const fallback = vi.fn(async () => relayed);
    const module = deferredModule({ history: { read: async () => own } });
    const lazy = lazySyncFactory({ load: module.load, fallbackHistory: { read: fallback } })(
      {} as Parameters<SyncFactory>[0],
    ) as LazySyncController;
    expect(await lazy.history!.read({ limit: 3 })).toBe(relayed);
    expect(fallback).toHaveBeenCalledWith({ limit: 3 });
    expect(module.loads()).toBe(0);
    module.release();
    await lazy.ready();
    expect(await lazy.history!.read({ limit: 3 })).toBe(own);
    expect(fallback).toHaveBeenCalledTimes(1);
    await lazy.close();
  });

  it('syncs two stores through the real controller once it is loaded', async () => {
    const a = await storeWith(lazySyncFactory());
    const b = await storeWith(lazySyncFactory());
    await Promise.all([a, b].map((s) => (s.sync as LazySyncController).ready()));
    const [ta, tb] = memoryTransportPair();
    const ca = a.sync.connect(ta);
    const cb = b.sync.connect(tb);
    await a.append('s', { type: 't', data: 1 });
    await until(async () => (await b.read()).length > 0);
    expect(await b.read()).toHaveLength(1);
    await Promise.all([ca.close(), cb.close()]);
    await Promise.all([a.close(), b.close()]);
  });
});
