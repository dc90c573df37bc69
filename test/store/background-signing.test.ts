/**
 * Signing in the background (store/signing.ts invariant 5): own events are signed soon after
 * they are appended, offline, so that a reconnect sends them as they are; a store reopened over
 * events a closed session never signed signs them too. What is signed holds: every event is
 * signed, its chain links hold, and a receiver that requires signatures verifies them.
 */
import { describe, expect, it, vi } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { isSigned, verifyBatch } from '../../src/core/integrity.ts';
import { memoryStorage, openStore, type StorageAdapter } from '../../src/index.ts';
import type { StoreInternals } from '../../src/store/internal.ts';
import { syncFactory } from '../../src/sync/controller.ts';

async function openCapturing(storage: StorageAdapter) {
  let internals: StoreInternals | undefined;
  const store = await openStore({
    name: 'background-signing',
    storage,
    syncFactory: (i) => {
      internals = i;
      return syncFactory()(i);
    },
  });
  if (internals === undefined) throw new Error('no internals');
  return { store, internals };
}

async function rawEvents(internals: StoreInternals): Promise<StoredEventRecord[]> {
  const records = await internals.log.readByPos(0, 100_000);
  return records.map((r) => r.event);
}

async function appendBursts(append: (i: number) => Promise<unknown>, count: number) {
  for (let i = 0; i < count; i += 100) {
    const burst: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(count, i + 100); j++) burst.push(append(j));
    await Promise.all(burst);
  }
}

/** Verified as a receiver that requires signatures would (core/integrity.ts invariant 4). */
async function verified(events: StoredEventRecord[]) {
  return verifyBatch(
    events,
    { eventAt: async () => undefined, keyOf: async () => undefined },
    { requireSignatures: true },
  );
}

describe('background signing (store/signing.ts invariant 5)', () => {
  it('signs own events soon after they are appended, with no connection', async () => {
    const { store, internals } = await openCapturing(memoryStorage());
    await appendBursts(
      (i) => store.append(`s${i % 3}`, { type: 'typed', data: { i } }),
      1_234, // more than two background steps
    );
    const before = await rawEvents(internals);
    expect(before).toHaveLength(1_234);
    await internals.signer?.idle();
    const events = await rawEvents(internals);
    expect(events.filter((e) => !isSigned(e))).toEqual([]);
    const verdict = await verified(events);
    expect(verdict.ok).toBe(true);
    if (verdict.ok) expect(verdict.links).toEqual([]);
    await store.close();
  });

  it('never competes with appends: appends that keep coming are signed once they pause', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { store, internals } = await openCapturing(memoryStorage());
      // An append every 40 ms for 1.6 s: no quiet moment (50 ms) in it.
      for (let i = 0; i < 40; i++) {
        await store.append('s', { type: 'typed', data: { i } });
        await vi.advanceTimersByTimeAsync(40);
      }
      expect((await rawEvents(internals)).filter((e) => isSigned(e))).toEqual([]);
      await vi.advanceTimersByTimeAsync(60);
      await internals.signer?.idle();
      const events = await rawEvents(internals);
      expect(events.filter((e) => !isSigned(e))).toEqual([]);
      expect((await verified(events)).ok).toBe(true);
      await store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('an append that outlasts the quiet time holds the background until it is done', async () => {
    // Appends held in the storage on demand: one stays under way past the quiet time.
    let hold: Promise<void> | undefined;
    let replaced = 0;
    const inner = memoryStorage();
    const storage: StorageAdapter = {
      name: inner.name,
      async open(options) {
        const log = await inner.open(options);
        return new Proxy(log, {
          get(target, key) {
            const value = Reflect.get(target, key, target);
            if (key === 'appendGroup') {
              return async (request: Parameters<typeof log.appendGroup>[0]) => {
                await hold;
                return log.appendGroup(request);
              };
            }
            if (key === 'replaceOwn') {
              return (records: Parameters<typeof log.replaceOwn>[0]) => {
                replaced += records.length;
                return log.replaceOwn(records);
              };
            }
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      },
    };
    const { store, internals } = await openCapturing(storage);
    await store.append('s', { type: 'typed', data: { i: 0 } });
    let release = () => {};
    hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = store.append('s', { type: 'typed', data: { i: 1 } });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(replaced).toBe(0);
    release();
    await slow;
    await internals.signer?.idle();
    expect(replaced).toBe(2);
    expect((await rawEvents(internals)).filter((e) => !isSigned(e))).toEqual([]);
    await store.close();
  });

  it('an append stops a background run after its step; the next quiet moment finishes it', async () => {
    const { store, internals } = await openCapturing(memoryStorage());
    await appendBursts((i) => store.append('s', { type: 'typed', data: { i } }), 1_000);
    // The quiet moment comes; a step or so later, another append.
    await new Promise((resolve) => setTimeout(resolve, 60));
    await store.append('s', { type: 'typed', data: { i: 1_000 } });
    const partly = (await rawEvents(internals)).filter((e) => !isSigned(e)).length;
    expect(partly).toBeGreaterThan(0);
    await internals.signer?.idle();
    const events = await rawEvents(internals);
    expect(events.filter((e) => !isSigned(e))).toEqual([]);
    const verdict = await verified(events);
    expect(verdict.ok && verdict.links).toEqual([]);
    await store.close();
  });

  it('a reopened store signs what the closed session left unsigned', async () => {
    const storage = memoryStorage();
    const first = await openCapturing(storage);
    await appendBursts((i) => first.store.append('s', { type: 'typed', data: { i } }), 300);
    // Closed at once: the background had no quiet moment yet.
    await first.store.close();
    const reopened = await openCapturing(storage);
    const unsigned = (await rawEvents(reopened.internals)).filter((e) => !isSigned(e));
    expect(unsigned).toHaveLength(300);
    await reopened.internals.signer?.idle();
    const events = await rawEvents(reopened.internals);
    expect(events.filter((e) => !isSigned(e))).toEqual([]);
    expect((await verified(events)).ok).toBe(true);
    // More appends continue the same chain.
    await reopened.store.append('s', { type: 'typed', data: { i: 300 } });
    await reopened.internals.signer?.idle();
    const all = await rawEvents(reopened.internals);
    const verdict = await verified(all);
    expect(verdict.ok && verdict.links).toEqual([]);
    await reopened.store.close();
  });

  it('signs nothing when signing is off', async () => {
    const storage = memoryStorage();
    const store = await openStore({ name: 'unsigned', storage, signing: false });
    await store.append('s', { type: 'typed', data: { i: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 150));
    await store.close();
    const log = await storage.open();
    const [record] = await log.readByPos(0, 10);
    expect(record && isSigned(record.event)).toBe(false);
    await log.close();
  });
});
