/**
 * The snapshotter's behaviour on one server storage (src/server/snapshotter.ts), run by
 * snapshotter.test.ts (SQLite file) and snapshotter-postgres.test.ts: each snapshot is the fold of
 * its positions in cursor order (space-snapshot.ts 1), late events rebuild it (snapshotter.ts 2),
 * a restart resumes from the newest one (3), encrypted spaces and throwing projections get none
 * (5), and `latest` answers only exact versions (6).
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { StoredEvent, StoredEventRecord } from '../../src/core/events.ts';
import { defineProjection, type Projection } from '../../src/core/projection.ts';
import type { SpaceSnapshot } from '../../src/core/space-snapshot.ts';
import { makeUpcast, type Upcaster } from '../../src/core/upcast.ts';
import type { LogEntry } from '../../src/server/metrics.ts';
import { type SnapshotOptions, Snapshotter } from '../../src/server/snapshotter.ts';
import type { ServerStorage, SpaceLog } from '../../src/server/storage.ts';
import { storedEvent } from '../fixtures/events.ts';

export interface SuiteStorage {
  /** A storage on the test's database; every call opens the same database again. setup() is
   * called once per test. */
  open(): ServerStorage;
}

/** Order-sensitive: the ids in fold order, and counts per stream. */
export interface Counts {
  n: number;
  ids: string[];
  byStream: Record<string, number>;
}

export function countsProjection(onApply?: () => void, version = 1): Projection {
  return defineProjection<Counts, unknown>({
    name: 'counts',
    version,
    initial: () => ({ n: 0, ids: [], byStream: {} }),
    apply: (state, event) => {
      onApply?.();
      state.n += 1;
      state.ids.push(event.id);
      state.byStream[event.stream] = (state.byStream[event.stream] ?? 0) + 1;
      return state;
    },
  }) as Projection;
}

/** Keeps what upcasting gives: the last data of each type. */
export const lastData = defineProjection<Record<string, unknown>, unknown>({
  name: 'last-data',
  version: 2,
  initial: () => ({}),
  apply: (state, event) => ({ ...state, [event.type]: event.data }),
}) as Projection;

export const upcasters: Upcaster[] = [
  {
    type: 'Renamed',
    fromSchema: 1,
    up: (data) => ({ ...(data as object), upcast: true }),
  },
];

let wall = 1_700_000_000_000;
/** Events of `replica` from seq `first`, each later in time than the last made (unless `at`). */
export function events(
  replica: string,
  first: number,
  count: number,
  options: { stream?: string; at?: number; type?: string } = {},
): StoredEventRecord[] {
  const out: StoredEventRecord[] = [];
  for (let i = 0; i < count; i++) {
    wall += 1000;
    out.push(
      storedEvent({
        replica,
        seq: first + i,
        wall: options.at === undefined ? wall : options.at + i,
        stream: options.stream ?? `s-${replica}`,
        version: first + i,
        type: options.type ?? 'Added',
        data: { i: first + i },
      }),
    );
  }
  return out;
}

/** The reference: the fold of the log's events at positions <= pos, in cursor order. */
export async function referenceFold(
  log: SpaceLog,
  projection: Projection,
  pos: number,
  up: readonly Upcaster[] = [],
): Promise<unknown> {
  const records = await log.readByPos(0, 1_000_000);
  const upcast = makeUpcast(up);
  const inOrder = records
    .filter((r) => r.pos <= pos)
    .sort((a, b) => (a.event.cursor < b.event.cursor ? -1 : 1));
  let state = projection.initial();
  for (const r of inOrder) state = projection.apply(state, upcast(r.event as StoredEvent));
  return JSON.parse(JSON.stringify(state)) as unknown;
}

export function stateOf(snapshot: SpaceSnapshot | undefined, name: string): unknown {
  return snapshot?.projections.find((p) => p.name === name)?.state;
}

export function snapshotterSuite(setup: () => SuiteStorage): void {
  const closers: (() => Promise<void>)[] = [];
  let database: SuiteStorage | undefined;
  beforeEach(() => {
    database = setup();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  });

  function start(
    storage: ServerStorage,
    options: Partial<SnapshotOptions> = {},
  ): { snapshotter: Snapshotter; logs: LogEntry[] } {
    const logs: LogEntry[] = [];
    const snapshotter = new Snapshotter(
      storage,
      { projections: [countsProjection()], every: 10, lateDelayMs: 0, ...options },
      { log: (entry) => logs.push(entry) },
    );
    snapshotter.start();
    closers.push(() => snapshotter.close());
    return { snapshotter, logs };
  }

  function open(): ServerStorage {
    const storage = database!.open();
    closers.push(() => storage.close());
    return storage;
  }

  it('stores a snapshot that folds every position up to it in cursor order, with heads and vector', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    await log.ingest(events('replicaa', 1, 8));
    await log.ingest(events('replicab', 1, 7, { stream: 's-replicaa' }));
    const { snapshotter } = start(storage, { projections: [countsProjection(), lastData] });
    await snapshotter.whenIdle();
    const snapshot = await snapshotter.latest('s1', [{ name: 'counts', version: 1 }]);
    expect(snapshot?.pos).toBe(15);
    expect(snapshot?.count).toBe(15);
    expect(stateOf(snapshot, 'counts')).toEqual(await referenceFold(log, countsProjection(), 15));
    // Only what was asked for.
    expect(snapshot?.projections.map((p) => p.name)).toEqual(['counts']);
    const records = await log.readByPos(0, 100);
    expect(snapshot?.cursor).toBe(
      records
        .map((r) => r.event.cursor)
        .sort()
        .at(-1),
    );
    expect(snapshot?.vector).toEqual({ replicaa: 8, replicab: 7 });
    // replicab wrote versions 1..7 of a stream replicaa wrote 1..8 of: a conflict.
    expect(snapshot?.streams).toEqual([{ stream: 's-replicaa', version: 8, conflict: true }]);
  });

  it('answers only exact versions: a differing version or a missing name gives undefined', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    await log.ingest(events('replicaa', 1, 12));
    const { snapshotter } = start(storage);
    await snapshotter.whenIdle();
    expect(await snapshotter.latest('s1', [{ name: 'counts', version: 1 }])).toBeDefined();
    expect(await snapshotter.latest('s1', [{ name: 'counts', version: 2 }])).toBeUndefined();
    expect(
      await snapshotter.latest('s1', [
        { name: 'counts', version: 1 },
        { name: 'other', version: 1 },
      ]),
    ).toBeUndefined();
    expect(await snapshotter.latest('nowhere', [{ name: 'counts', version: 1 }])).toBeUndefined();
  });

  it('rebuilds after a late event, from a valid older snapshot or initial(), and keeps at most two', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    const early = wall + 500; // below every event made after it
    await log.ingest(events('replicaa', 1, 10));
    const { snapshotter, logs } = start(storage);
    await snapshotter.whenIdle();
    await log.ingest(events('replicaa', 11, 10));
    await snapshotter.whenIdle();
    const before = await snapshotter.latest('s1', [{ name: 'counts', version: 1 }]);
    expect(before?.pos).toBe(20);
    // A device offline for long: its events sort below the newest snapshot, above the first.
    await log.ingest(events('replicac', 1, 2, { at: early + 10_001 }));
    await snapshotter.whenIdle();
    const after = await snapshotter.latest('s1', [{ name: 'counts', version: 1 }]);
    expect(after?.pos).toBe(22);
    expect(stateOf(after, 'counts')).toEqual(await referenceFold(log, countsProjection(), 22));
    const stored = logs.filter((e) => e.event === 'snapshot_stored');
    expect(stored.map((e) => e.from)).toEqual(['initial', 'newest', 'older']);
    // And one below every snapshot: from initial().
    await log.ingest(events('replicad', 1, 1, { at: early - 100_000 }));
    await snapshotter.whenIdle();
    const last = await snapshotter.latest('s1', [{ name: 'counts', version: 1 }]);
    expect(last?.pos).toBe(23);
    expect(stateOf(last, 'counts')).toEqual(await referenceFold(log, countsProjection(), 23));
    expect(logs.filter((e) => e.event === 'snapshot_stored').at(-1)?.from).toBe('initial');
    expect((await storage.snapshots!.list('s1')).length).toBeLessThanOrEqual(2);
  });

  it('resumes after a restart from its newest snapshot, folding only the events after it', async () => {
    const first = open();
    const log = await first.openSpace('s1');
    await log.ingest(events('replicaa', 1, 30));
    const { snapshotter } = start(first, { every: 25 });
    await snapshotter.whenIdle();
    await snapshotter.close();
    await first.close();

    const second = open();
    const reopened = await second.openSpace('s1');
    await reopened.ingest(events('replicaa', 31, 30));
    let applied = 0;
    const again = start(second, { every: 25, projections: [countsProjection(() => applied++)] });
    await again.snapshotter.whenIdle();
    const snapshot = await again.snapshotter.latest('s1', [{ name: 'counts', version: 1 }]);
    expect(snapshot?.pos).toBe(60);
    expect(applied).toBe(30);
    expect(stateOf(snapshot, 'counts')).toEqual(
      await referenceFold(reopened, countsProjection(), 60),
    );
  });

  it('gives a space no snapshot when a projection throws, and drops those it had', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    await log.ingest(events('replicaa', 1, 10));
    const throwing = defineProjection<number, unknown>({
      name: 'counts',
      version: 1,
      initial: () => 0,
      apply: (n, event) => {
        if (event.type === 'Bad') throw new Error('cannot fold Bad');
        return n + 1;
      },
    }) as Projection;
    const { snapshotter, logs } = start(storage, { projections: [throwing] });
    await snapshotter.whenIdle();
    expect(await snapshotter.latest('s1', [{ name: 'counts', version: 1 }])).toBeDefined();
    await log.ingest(events('replicaa', 11, 10, { type: 'Bad' }));
    await snapshotter.whenIdle();
    expect(await snapshotter.latest('s1', [{ name: 'counts', version: 1 }])).toBeUndefined();
    expect(logs.find((e) => e.event === 'snapshots_off')?.projection).toBe('counts');
  });

  it('gives a space holding an encrypted event no snapshot', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    const sealed = events('replicaa', 1, 12);
    sealed[5] = { ...sealed[5]!, data: 'c2VhbGVk', meta: { $sealed: 'key-1' } };
    await log.ingest(sealed);
    await (await storage.openSpace('s2')).ingest(events('replicab', 1, 12));
    const { snapshotter, logs } = start(storage);
    await snapshotter.whenIdle();
    expect(await snapshotter.latest('s1', [{ name: 'counts', version: 1 }])).toBeUndefined();
    expect(await snapshotter.latest('s2', [{ name: 'counts', version: 1 }])).toBeDefined();
    expect(logs.find((e) => e.event === 'snapshots_off')?.reason).toBe('encrypted events');
  });

  it('leaves out a projection whose state does not survive JSON, and keeps the others', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    await log.ingest(events('replicaa', 1, 12));
    const mapped = defineProjection<Map<string, number>, unknown>({
      name: 'mapped',
      version: 1,
      initial: () => new Map(),
      apply: (m, e) => m.set(e.id, 1),
    }) as Projection;
    const { snapshotter, logs } = start(storage, { projections: [countsProjection(), mapped] });
    await snapshotter.whenIdle();
    expect(await snapshotter.latest('s1', [{ name: 'mapped', version: 1 }])).toBeUndefined();
    expect(await snapshotter.latest('s1', [{ name: 'counts', version: 1 }])).toBeDefined();
    expect(logs.find((e) => e.event === 'snapshot_skipped')?.projection).toBe('mapped');
  });

  it('folds upcast events when given the upcasters', async () => {
    const storage = open();
    const log = await storage.openSpace('s1');
    await log.ingest(events('replicaa', 1, 12, { type: 'Renamed' }));
    const { snapshotter } = start(storage, { projections: [lastData], upcasters });
    await snapshotter.whenIdle();
    const snapshot = await snapshotter.latest('s1', [{ name: 'last-data', version: 2 }]);
    expect(stateOf(snapshot, 'last-data')).toEqual({ Renamed: { i: 12, upcast: true } });
  });
}
