/**
 * The projection runtime's head start (src/store/projection-runtime.ts, invariant 8): a store
 * loads each projection's newest snapshot and folds its tail as soon as it opens, so that the
 * first state() (a page's first paint, through the worker) finds it done.
 */
import { describe, expect, it } from 'vitest';
import { defineProjection, memoryStorage, openStore, ProjectionError } from '../../src/index.ts';
import type { EventLog, StorageAdapter } from '../../src/storage/adapter.ts';

type Ev = { t: { n: number } };

/** `inner`, with every call to its logs counted by method name. */
function counted(inner: StorageAdapter) {
  const calls: string[] = [];
  const storage: StorageAdapter = {
    name: inner.name,
    async open(options) {
      const log = await inner.open(options);
      return new Proxy(log, {
        get(target, property, receiver) {
          const value: unknown = Reflect.get(target, property, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            calls.push(String(property));
            return value.apply(target, args);
          };
        },
      }) as EventLog;
    },
  };
  return { storage, calls };
}

/** Lets every pending storage call and its continuations run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

function sum(options: { snapshotEvery: number; applied?: { count: number }; failOn?: number }) {
  return defineProjection<number, Ev>({
    name: 'sum',
    version: 1,
    snapshotEvery: options.snapshotEvery,
    initial: () => 0,
    apply: (total, e) => {
      if (options.applied) options.applied.count += 1;
      if (e.data.n === options.failOn) throw new Error(`no ${e.data.n}`);
      return total + e.data.n;
    },
  });
}

/** The store every test opens on `storage`: the one projection sum(`options`). */
function openWithSum(storage: StorageAdapter, options: Parameters<typeof sum>[0]) {
  return openStore<Ev>({ name: 'head-start', storage, projections: [sum(options)] });
}

/** A log of 1..count in one stream, with the projection folded once (its snapshots written). */
async function seeded(count: number, snapshotEvery: number) {
  const inner = memoryStorage();
  const store = await openWithSum(inner, { snapshotEvery });
  for (let n = 1; n <= count; n++) await store.append('s', { type: 't', data: { n } });
  await store.state('sum');
  await store.close();
  return inner;
}

describe('projection head start (projection-runtime 8)', () => {
  it('loads the newest snapshot and folds its tail when the store opens, before state() is asked', async () => {
    const { storage, calls } = counted(await seeded(7, 3));
    const applied = { count: 0 };
    const store = await openWithSum(storage, { snapshotEvery: 3, applied });
    await settle();
    expect(calls).toContain('getSnapshot');
    // The snapshot after 6 events was loaded: only the 7th was folded.
    expect(applied.count).toBe(1);
    calls.length = 0;
    expect(await store.state('sum')).toBe(28);
    // The first state() only checks that nothing arrived since.
    expect(calls).toEqual(['headPos']);
    await store.close();
  });

  it('still reflects events appended while the head start runs (store invariant 3)', async () => {
    const storage = await seeded(7, 3);
    const store = await openWithSum(storage, { snapshotEvery: 3 });
    await store.append('s', { type: 't', data: { n: 100 } });
    expect(await store.state('sum')).toBe(128);
    await store.close();
  });

  it('folds nothing ahead for a projection without a snapshot: a full replay waits to be asked', async () => {
    const storage = await seeded(5, 0);
    const applied = { count: 0 };
    const store = await openWithSum(storage, { snapshotEvery: 0, applied });
    await settle();
    expect(applied.count).toBe(0);
    expect(await store.state('sum')).toBe(15);
    expect(applied.count).toBe(5);
    await store.close();
  });

  it('leaves a failure of the head start to the caller, never to an unhandled rejection', async () => {
    const storage = await seeded(7, 3);
    const store = await openWithSum(storage, { snapshotEvery: 3, failOn: 7 });
    await settle();
    await expect(store.state('sum')).rejects.toBeInstanceOf(ProjectionError);
    await store.close();
  });

  it('closes cleanly while the head start is still reading', async () => {
    const storage = await seeded(7, 3);
    const store = await openWithSum(storage, { snapshotEvery: 3 });
    await store.close();
    await settle();
  });
});
