/**
 * appendMany (an atomic append to several streams) and group commit (concurrent appends share a
 * transaction): store.ts invariant 1, local-appends.ts 9, append-queue.ts Q1..Q4.
 */
import { describe, expect, it } from 'vitest';
import { ConcurrencyError, QuotaExceededError, ValidationError } from '../../src/core/errors.ts';
import type { StoredEvent } from '../../src/core/events.ts';
import { openStore } from '../../src/index.ts';
import type { AppendGroupRequest } from '../../src/storage/adapter.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { withLogOverrides } from './helpers.ts';

const added = (n: number) => ({ type: 'Added', data: { n } });

/** A store on memory storage that counts its group writes and their sizes. */
async function countingStore(fail?: (request: AppendGroupRequest) => Error | undefined) {
  const groups: number[] = [];
  const storage = withLogOverrides(memoryStorage(), (log) => ({
    appendGroup: async (request: AppendGroupRequest) => {
      groups.push(request.units.length);
      const error = fail?.(request);
      if (error !== undefined) throw error;
      return log.appendGroup(request);
    },
  }));
  const store = await openStore({ name: 'group', storage });
  return { store, groups };
}

describe('appendMany', () => {
  it('appends to several streams in one call, each part at its stream’s next versions', async () => {
    const store = await openStore({ name: 'many', storage: memoryStorage() });
    await store.append('a', added(0));
    const [a, b, again] = await store.appendMany([
      { stream: 'a', events: [added(1), added(2)], expectedVersion: 1 },
      { stream: 'b', events: added(3), expectedVersion: 'none' },
      { stream: 'a', events: added(4), expectedVersion: 3 },
    ]);
    expect(a!.map((e) => e.version)).toEqual([2, 3]);
    expect(b!.map((e) => [e.stream, e.version])).toEqual([['b', 1]]);
    expect(again!.map((e) => e.version)).toEqual([4]);
    expect((await store.read()).map((e) => (e.data as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
    await store.close();
  });

  it('writes nothing when one part fails its expectedVersion: all or nothing', async () => {
    const store = await openStore({ name: 'many', storage: memoryStorage() });
    await store.append('b', added(0));
    const error = await store
      .appendMany([
        { stream: 'a', events: added(1) },
        { stream: 'b', events: added(2), expectedVersion: 'none' },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect((await store.read()).map((e) => e.stream)).toEqual(['b']);
    expect(await store.readSince(0, { limit: 0 })).toMatchObject({ head: 1 });
    await store.close();
  });

  it('refuses bad input with VALIDATION and writes nothing', async () => {
    const store = await openStore({
      name: 'many',
      storage: memoryStorage(),
      limits: { maxBatchEvents: 3 },
    });
    const bad: unknown[] = [
      [],
      'a',
      [null],
      [{ stream: '', events: added(1) }],
      [{ stream: 'a', events: [] }],
      [
        { stream: 'a', events: [added(1), added(2)] },
        { stream: 'b', events: [added(3), added(4)] },
      ],
    ];
    for (const appends of bad) {
      const error = await store
        .appendMany(appends as Parameters<typeof store.appendMany>[0])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe('VALIDATION');
    }
    expect(await store.read()).toEqual([]);
    await store.close();
  });
});

describe('group commit', () => {
  it('writes 100 concurrent appends to 100 streams in a few transactions, in call order (Q1, Q2)', async () => {
    const { store, groups } = await countingStore();
    const seen: StoredEvent[] = [];
    store.subscribe((events) => seen.push(...events));
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.append(`card-${i}`, added(i))),
    );
    expect(groups.length).toBeLessThanOrEqual(3);
    expect(groups[0]).toBe(1);
    expect(results.map((r) => r[0]!.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(results.every((r, i) => r[0]!.stream === `card-${i}` && r[0]!.version === 1)).toBe(true);
    const read = await store.read();
    expect(read.map((e) => e.stream)).toEqual(results.map((r) => r[0]!.stream));
    await store.close();
    expect(seen.map((e) => e.id)).toEqual(read.map((e) => e.id));
  });

  it('fails only the append whose check fails; the others in its group are written (Q3)', async () => {
    const { store, groups } = await countingStore();
    await store.append('taken', added(0));
    const outcomes = await Promise.allSettled([
      store.append('x', added(1)),
      store.append('y', added(2)),
      store.append('taken', added(3), { expectedVersion: 'none' }),
      store.append('z', added(4)),
      store.appendMany([
        { stream: 'w', events: added(5) },
        { stream: 'taken', events: added(6), expectedVersion: 5 },
      ]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
    ]);
    expect(groups.slice(1).some((n) => n > 1)).toBe(true);
    expect((await store.read()).map((e) => e.stream)).toEqual(['taken', 'x', 'y', 'z']);
    await store.close();
  });

  it('writes the units of a group that failed as a whole one by one (Q3)', async () => {
    // A quota that a group exceeds and each append alone fits in.
    const { store, groups } = await countingStore((r) =>
      r.units.length > 1 ? new QuotaExceededError('the group is too large') : undefined,
    );
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => store.append(`s-${i}`, added(i))),
    );
    expect(results.flat().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(groups).toEqual([1, 4, 1, 1, 1, 1]);
    await store.close();
  });
});
