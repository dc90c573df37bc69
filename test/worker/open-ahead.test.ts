/**
 * worker/host.ts invariant 5: a store opened ahead (as the worker starts) waits OPEN_AHEAD_MS for
 * its first client, then closes, so that a worker nobody connects to does not hold the database.
 * In Node, on a memory storage whose handles the test watches, with fake timers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { OPEN_AHEAD_MS, StoreHost } from '../../worker/host.ts';

/** A memory storage that tells which of its handles are open. */
function watchedMemory(): { storage: StorageAdapter; open(): number } {
  const inner = memoryStorage();
  let open = 0;
  return {
    open: () => open,
    storage: {
      name: 'watched-memory',
      async open(options): Promise<EventLog> {
        const log = await inner.open(options);
        open += 1;
        const close = log.close.bind(log);
        log.close = async () => {
          open -= 1;
          await close();
        };
        return log;
      },
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('StoreHost.openAhead (worker/host.ts 5)', () => {
  it('closes a store no client came for within OPEN_AHEAD_MS', async () => {
    vi.useFakeTimers();
    const db = watchedMemory();
    const host = new StoreHost(
      { name: 'ahead-1', storage: db.storage, pollIntervalMs: 0 },
      'dedicated',
    );
    host.openAhead();
    await vi.advanceTimersByTimeAsync(OPEN_AHEAD_MS - 1);
    expect(db.open()).toBeGreaterThan(0);
    await vi.advanceTimersByTimeAsync(2);
    // The close has begun; it finishes after the lazily imported sync module has loaded, which
    // is real I/O that fake timers do not drive (a loaded CI machine took longer than a tick).
    await vi.waitFor(() => expect(db.open()).toBe(0));
    // A client coming later opens it again.
    const store = await host.acquire();
    expect(db.open()).toBeGreaterThan(0);
    await store.append('s', { type: 't', data: 1 });
    await host.release();
    expect(db.open()).toBe(0);
  });

  it('keeps the store a client acquired before the time ran out, and serves it the same store', async () => {
    vi.useFakeTimers();
    const db = watchedMemory();
    const host = new StoreHost(
      { name: 'ahead-2', storage: db.storage, pollIntervalMs: 0 },
      'dedicated',
    );
    host.openAhead();
    await vi.advanceTimersByTimeAsync(10);
    const opened = db.open();
    const store = await host.acquire();
    expect(db.open()).toBe(opened);
    await vi.advanceTimersByTimeAsync(OPEN_AHEAD_MS * 2);
    expect(db.open()).toBe(opened);
    await store.append('s', { type: 't', data: 1 });
    expect(await store.read()).toHaveLength(1);
    await host.release();
    expect(db.open()).toBe(0);
  });
});
