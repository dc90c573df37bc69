import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { type LooseEvents, memoryStorage, openStore, type StoredEvent } from '../../src/index.ts';
import { captureInternals, manualClock } from './helpers.ts';

async function seeded() {
  const clock = manualClock(Date.UTC(2026, 0, 1));
  const store = await openStore<LooseEvents<number>>({
    name: 'r',
    storage: memoryStorage(),
    now: clock.now,
  });
  const all: StoredEvent<LooseEvents<number>>[] = [];
  for (let i = 0; i < 1200; i++) {
    clock.advance(10);
    all.push(...(await store.append(`s${i % 3}`, { type: i % 2 ? 'odd' : 'even', data: i })));
  }
  return { store, all, start: Date.UTC(2026, 0, 1) };
}

describe('read', () => {
  it('pages through the total order with stream, types, cursor, limit, reverse and time range', async () => {
    const { store, all, start } = await seeded();
    expect((await store.read()).map((e) => e.data)).toEqual(all.map((e) => e.data));
    expect((await store.read({ stream: 's1' })).every((e) => e.stream === 's1')).toBe(true);
    expect(await store.read({ stream: 's1' })).toHaveLength(400);
    expect((await store.read({ types: ['odd'] })).length).toBe(600);
    expect((await store.read({ limit: 3 })).map((e) => e.data)).toEqual([0, 1, 2]);
    expect((await store.read({ reverse: true, limit: 2 })).map((e) => e.data)).toEqual([
      1199, 1198,
    ]);
    const after = all[700]!.cursor;
    expect((await store.read({ after, limit: 2 })).map((e) => e.data)).toEqual([701, 702]);
    expect((await store.read({ after, reverse: true, limit: 2 })).map((e) => e.data)).toEqual([
      699, 698,
    ]);
    const from = start + 10 * 101;
    const to = start + 10 * 110;
    expect((await store.read({ from, to })).map((e) => e.data)).toEqual([
      100, 101, 102, 103, 104, 105, 106, 107, 108, 109,
    ]);
    expect(
      (await store.read({ from: new Date(from), to, reverse: true, types: ['even'] })).map(
        (e) => e.data,
      ),
    ).toEqual([108, 106, 104, 102, 100]);
    expect(await store.read({ limit: 0 })).toEqual([]);
    await store.close();
  });

  it('rejects malformed queries with a ValidationError', async () => {
    const store = await openStore({ name: 'q', storage: memoryStorage() });
    await expect(store.read({ limit: -1 })).rejects.toMatchObject({
      code: 'VALIDATION',
      path: 'query.limit',
    });
    await expect(store.read({ from: Number.NaN })).rejects.toMatchObject({ code: 'VALIDATION' });
    await store.close();
  });
});

describe('subscribe', () => {
  it('delivers local and synced events once, filtered, until unsubscribed', async () => {
    const capture = captureInternals();
    const store = await openStore<LooseEvents<number>>({
      name: 's',
      storage: memoryStorage(),
      syncFactory: capture.factory,
    });
    const other = await openStore<LooseEvents<number>>({ name: 'o', storage: memoryStorage() });
    const got: number[] = [];
    const onlyA: number[] = [];
    const off = store.subscribe((events) => got.push(...events.map((e) => e.data)));
    store.subscribe((events) => onlyA.push(...events.map((e) => e.data)), { stream: 'a' });
    await store.append('a', { type: 't', data: 1 });
    await store.append('b', { type: 't', data: 2 });
    const remote = await other.append('a', { type: 't', data: 3 });
    await capture.internals().ingest(remote as unknown as StoredEventRecord[]);
    await capture.internals().ingest(remote as unknown as StoredEventRecord[]);
    off();
    await store.append('a', { type: 't', data: 4 });
    expect(got).toEqual([1, 2, 3]);
    expect(onlyA).toEqual([1, 3, 4]);
    await store.close();
    await other.close();
  });

  it('sees what another handle on the same database writes (another tab)', async () => {
    const storage = memoryStorage();
    const tab1 = await openStore<LooseEvents<number>>({ name: 'x', storage });
    const tab2 = await openStore<LooseEvents<number>>({ name: 'x', storage });
    expect(tab1.replicaId).toBe(tab2.replicaId);
    const got: number[] = [];
    tab2.subscribe((events) => got.push(...events.map((e) => e.data)));
    await tab1.append('a', { type: 't', data: 7 });
    await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual([7]);
    const [a, b] = await Promise.all([
      tab1.append('a', { type: 't', data: 8 }),
      tab2.append('a', { type: 't', data: 9 }),
    ]);
    expect(new Set([a![0]!.seq, b![0]!.seq]).size).toBe(2);
    await tab1.close();
    await tab2.close();
  });
});

describe('conflicts', () => {
  it('reports concurrent appends to one stream at one version from two replicas', async () => {
    const clock = manualClock();
    const capture = captureInternals();
    const a = await openStore<LooseEvents<string>>({
      name: 'a',
      storage: memoryStorage(),
      now: clock.now,
      syncFactory: capture.factory,
    });
    const b = await openStore<LooseEvents<string>>({
      name: 'b',
      storage: memoryStorage(),
      now: clock.now,
    });
    await a.append('card', { type: 'renamed', data: 'x' });
    await b.append('card', { type: 'renamed', data: 'y' });
    await b.append('other', { type: 'renamed', data: 'z' });
    expect(await a.conflicts()).toEqual([]);
    await capture.internals().ingest((await b.read()) as unknown as StoredEventRecord[]);
    const conflicts = await a.conflicts();
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]!.stream).toBe('card');
    expect(conflicts[0]!.version).toBe(1);
    expect(conflicts[0]!.events.map((e) => e.data).sort()).toEqual(['x', 'y']);
    expect(await a.conflicts({ stream: 'other' })).toEqual([]);
    // The next local append continues after the highest version seen.
    const [next] = await a.append('card', { type: 'renamed', data: 'w' });
    expect(next!.version).toBe(2);
    await a.close();
    await b.close();
  });
});

describe('watch', () => {
  it('emits the current state, then coalesced states after changes', async () => {
    const { defineProjection } = await import('../../src/index.ts');
    const count = defineProjection<number>({
      name: 'count',
      version: 1,
      initial: () => 0,
      apply: (n) => n + 1,
    });
    const store = await openStore({ name: 'w', storage: memoryStorage(), projections: [count] });
    const states: number[] = [];
    const off = store.watch<number>('count', (n) => states.push(n));
    await new Promise((r) => setTimeout(r, 0));
    for (let i = 0; i < 5; i++) await store.append('s', { type: 't', data: i });
    await new Promise((r) => setTimeout(r, 10));
    expect(states[0]).toBe(0);
    expect(states[states.length - 1]).toBe(5);
    expect(states.length).toBeLessThanOrEqual(6);
    for (let i = 1; i < states.length; i++) expect(states[i]!).toBeGreaterThan(states[i - 1]!);
    off();
    await store.append('s', { type: 't', data: 9 });
    await new Promise((r) => setTimeout(r, 10));
    expect(states[states.length - 1]).toBe(5);
    await store.close();
  });
});
