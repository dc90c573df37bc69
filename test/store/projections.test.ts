import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import {
  defineProjection,
  memoryStorage,
  NotFoundError,
  openStore,
  ProjectionError,
  type StoredEvent,
} from '../../src/index.ts';
import type { CursorQuery } from '../../src/storage/adapter.ts';
import { captureInternals, manualClock, withLogOverrides } from './helpers.ts';

type Ev = { t: { n: number } };

/** The list of `n` in the order the projection saw them: the order is the whole point. */
const seen = (snapshotEvery = 3) =>
  defineProjection<number[], Ev>({
    name: 'seen',
    version: 1,
    snapshotEvery,
    initial: () => [],
    apply: (list, e) => [...list, e.data.n],
    queries: {
      last: (list: number[]) => list[list.length - 1],
      nth: (list: number[], i: number) => list[i],
    },
  });

describe('projections', () => {
  it('folds events in total order and answers named queries', async () => {
    const store = await openStore<Ev>({
      name: 'p',
      storage: memoryStorage(),
      projections: [seen()],
    });
    for (let n = 1; n <= 5; n++) await store.append(`s${n % 2}`, { type: 't', data: { n } });
    expect(await store.state('seen')).toEqual([1, 2, 3, 4, 5]);
    expect(await store.query('seen', 'last')).toBe(5);
    expect(await store.query('seen', 'nth', 1)).toBe(2);
    await expect(store.query('seen', 'nope')).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.state('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await store.close();
  });

  it('rebases from a snapshot when a synced event lands earlier in the order', async () => {
    const clock = manualClock(Date.UTC(2026, 5, 1));
    const remoteClock = manualClock(Date.UTC(2026, 5, 1));
    const capture = captureInternals();
    const storage = memoryStorage();
    const local = await openStore<Ev>({
      name: 'local',
      storage,
      projections: [seen(2)],
      now: clock.now,
      syncFactory: capture.factory,
    });
    const remote = await openStore<Ev>({
      name: 'remote',
      storage: memoryStorage(),
      now: remoteClock.now,
    });
    // The remote event is older (earlier HLC) than every local event.
    const [early] = await remote.append('r', { type: 't', data: { n: 0 } });
    clock.advance(1000);
    for (let n = 1; n <= 6; n++) {
      clock.advance(1);
      await local.append('l', { type: 't', data: { n } });
    }
    expect(await local.state('seen')).toEqual([1, 2, 3, 4, 5, 6]);
    await capture.internals().ingest([early as unknown as StoredEventRecord]);
    expect(await local.state('seen')).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // Reopening uses a valid snapshot and still sees the late event in place.
    await local.close();
    const reopened = await openStore<Ev>({
      name: 'local',
      storage,
      projections: [seen(2)],
      now: clock.now,
    });
    expect(await reopened.state('seen')).toEqual([0, 1, 2, 3, 4, 5, 6]);
    await reopened.close();
    await remote.close();
  });

  it('starts from a snapshot on reopen instead of replaying everything', async () => {
    const storage = memoryStorage();
    let applied = 0;
    const counting = defineProjection<number, Ev>({
      name: 'sum',
      version: 1,
      snapshotEvery: 10,
      initial: () => 0,
      apply: (sum, e) => {
        applied++;
        return sum + e.data.n;
      },
    });
    const store = await openStore<Ev>({ name: 's', storage, projections: [counting] });
    await store.append(
      's',
      Array.from({ length: 95 }, (_, i) => ({ type: 't', data: { n: i } })),
    );
    expect(await store.state('sum')).toBe((94 * 95) / 2);
    await store.close();
    applied = 0;
    const reopened = await openStore<Ev>({ name: 's', storage, projections: [counting] });
    expect(await reopened.state('sum')).toBe((94 * 95) / 2);
    expect(applied).toBeLessThan(10);
    await reopened.close();
  });

  it('rebuilds from zero when the projection version changes', async () => {
    const storage = memoryStorage();
    const v1 = defineProjection<number, Ev>({
      name: 'total',
      version: 1,
      snapshotEvery: 2,
      initial: () => 0,
      apply: (t, e) => t + e.data.n,
    });
    const store = await openStore<Ev>({ name: 'v', storage, projections: [v1] });
    for (let n = 1; n <= 5; n++) await store.append('s', { type: 't', data: { n } });
    expect(await store.state('total')).toBe(15);
    await store.close();
    const v2 = defineProjection<number, Ev>({
      name: 'total',
      version: 2,
      snapshotEvery: 2,
      initial: () => 0,
      apply: (t, e) => t + e.data.n * 10,
    });
    const reopened = await openStore<Ev>({ name: 'v', storage, projections: [v2] });
    expect(await reopened.state('total')).toBe(150);
    await reopened.close();
  });

  it('rebuilds on demand and reports progress', async () => {
    const store = await openStore<Ev>({
      name: 'r',
      storage: memoryStorage(),
      projections: [seen()],
    });
    await store.append(
      's',
      Array.from({ length: 1200 }, (_, n) => ({ type: 't', data: { n } })),
    );
    const progress: [number, number][] = [];
    await store.rebuild('seen', (done, total) => progress.push([done, total]));
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]).toEqual([1200, 1200]);
    expect((await store.state<number[]>('seen')).length).toBe(1200);
    await store.close();
  });

  it('reports a throwing apply as ProjectionError and keeps working after', async () => {
    let fail = true;
    const fragile = defineProjection<number, Ev>({
      name: 'fragile',
      version: 1,
      initial: () => 0,
      apply: (n, e) => {
        if (fail && e.data.n === 2) throw new Error('boom');
        return n + 1;
      },
    });
    const store = await openStore<Ev>({
      name: 'f',
      storage: memoryStorage(),
      projections: [fragile],
    });
    await store.append('s', [
      { type: 't', data: { n: 1 } },
      { type: 't', data: { n: 2 } },
    ]);
    await expect(store.state('fragile')).rejects.toBeInstanceOf(ProjectionError);
    fail = false;
    expect(await store.state('fragile')).toBe(2);
    await store.close();
  });
});

describe('time travel', () => {
  it('folds the prefix up to a time or an event, without touching the present', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const store = await openStore<Ev>({
      name: 't',
      storage: memoryStorage(),
      projections: [seen(2)],
      now: clock.now,
    });
    const times: number[] = [];
    const events: StoredEvent<Ev>[] = [];
    for (let n = 1; n <= 6; n++) {
      clock.advance(1000);
      times.push(clock.now());
      events.push(...(await store.append('s', { type: 't', data: { n } })));
    }
    expect(await store.state('seen')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await store.state('seen', { at: times[2]! })).toEqual([1, 2, 3]);
    expect(await store.state('seen', { at: new Date(times[4]! + 500) })).toEqual([1, 2, 3, 4, 5]);
    expect(await store.state('seen', { at: times[0]! - 1 })).toEqual([]);
    expect(await store.state('seen', { at: { eventId: events[3]!.id } })).toEqual([1, 2, 3, 4]);
    await expect(store.state('seen', { at: { eventId: 'missing' } })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await store.state('seen')).toEqual([1, 2, 3, 4, 5, 6]);
    await store.close();
  });
});

describe('upcasters', () => {
  it('folds and reads for the app from reads that leave signatures out (projection-runtime.ts 14, read-query.ts 4)', async () => {
    const asked: CursorQuery[] = [];
    const storage = withLogOverrides(memoryStorage(), (log) => ({
      readByCursor: (query) => {
        asked.push(query);
        return log.readByCursor(query);
      },
    }));
    const writer = await openStore<Ev>({ name: 'unsigned', storage });
    for (let n = 1; n <= 4; n++) await writer.append('s', { type: 't', data: { n } });
    await writer.close();
    asked.length = 0;
    // Opened on a log it has not folded: from its head start on, the fold reads it.
    const store = await openStore<Ev>({ name: 'unsigned', storage, projections: [seen()] });
    expect(await store.state('seen')).toEqual([1, 2, 3, 4]);
    const flags = () => asked.splice(0).map((q) => q.withoutSignatures === true);
    const all = (of: boolean[]) => of.length > 0 && of.every((flag) => flag);
    expect(all(flags())).toBe(true);
    const events = await store.read();
    expect(flags()).toEqual([true]);
    await store.state('seen', { at: { eventId: events[1]!.id } });
    expect(all(flags())).toBe(true);
    await store.close();
  });

  it('lifts v1 events to v2 on read, subscribe and in projections, and never rewrites them', async () => {
    type V2 = { PersonNamed: { name: { first: string; last: string } } };
    const storage = memoryStorage();
    const old = await openStore({ name: 'u', storage });
    const [stored] = await old.append('person', {
      type: 'PersonNamed',
      data: { name: 'Ada Lovelace' },
    });
    await old.close();
    const names = defineProjection<string[], V2>({
      name: 'names',
      version: 1,
      initial: () => [],
      apply: (list, e) => [...list, e.data.name.last],
    });
    const store = await openStore<V2>({
      name: 'u',
      storage,
      projections: [names],
      upcasters: [
        {
          type: 'PersonNamed',
          fromSchema: 1,
          up: (data) => {
            const [first = '', last = ''] = String((data as { name: string }).name).split(' ');
            return { name: { first, last } };
          },
        },
      ],
    });
    const live: StoredEvent<V2>[] = [];
    store.subscribe((events) => live.push(...events));
    const [read] = await store.read();
    expect(read!.data).toEqual({ name: { first: 'Ada', last: 'Lovelace' } });
    expect(read!.schema).toBe(2);
    expect(await store.state('names')).toEqual(['Lovelace']);
    const appended = await store.append('person', {
      type: 'PersonNamed',
      data: { name: 'Grace Hopper' } as unknown as V2['PersonNamed'],
    });
    expect(appended[0]!.data).toEqual({ name: 'Grace Hopper' });
    await new Promise((r) => setTimeout(r, 0));
    expect(live.map((e) => e.data.name.first)).toEqual(['Grace']);
    expect(stored!.data).toEqual({ name: 'Ada Lovelace' });
    await store.close();
  });
});

describe('rebuild then reopen', () => {
  it('keeps the snapshots a rebuild wrote, so the next open does not replay everything', async () => {
    const storage = memoryStorage();
    let applied = 0;
    const sum = defineProjection<number, Ev>({
      name: 'sum',
      version: 1,
      snapshotEvery: 10,
      initial: () => 0,
      apply: (total, e) => {
        applied++;
        return total + e.data.n;
      },
    });
    const store = await openStore<Ev>({ name: 'rb', storage, projections: [sum] });
    await store.append(
      's',
      Array.from({ length: 50 }, (_, n) => ({ type: 't', data: { n } })),
    );
    await store.rebuild('sum');
    await store.close();
    applied = 0;
    const reopened = await openStore<Ev>({ name: 'rb', storage, projections: [sum] });
    expect(await reopened.state('sum')).toBe((49 * 50) / 2);
    expect(applied).toBeLessThan(10);
    await reopened.close();
  });
});
