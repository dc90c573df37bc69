/**
 * storage/idb-peek.ts on fake-indexeddb: the usability test of a snapshot (invariant 3), and that
 * a peek creates nothing and answers undefined where the store must answer (invariants 1, 4).
 * The comparison with the store's state() runs on real Chromium: test/browser/in-page/peek.test.ts.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { defineProjection, generateEncryptionKey, openStore, peekState } from '../../src/index.ts';
import { peekLog, snapshotUsable } from '../../src/storage/idb-peek.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';

const at = (pos: number) => ({ pos }) as LocalRecord;
const count = defineProjection({
  name: 'count',
  version: 1,
  snapshotEvery: 2,
  initial: () => 0,
  apply: (n: number) => n + 1,
});

describe('snapshotUsable (invariant 3)', () => {
  it('accepts a snapshot when every event received after it sorts after its cursor', () => {
    // Snapshot at position 4, head 6: positions 5 and 6 are among the events after its cursor.
    expect(snapshotUsable({ pos: 4 }, 6, [at(3), at(5), at(6)])).toBe(true);
    expect(snapshotUsable({ pos: 6 }, 6, [])).toBe(true);
  });

  it('refuses it when an event received after it is missing from the events after its cursor', () => {
    // Position 6 sorts before the snapshot's cursor: a late event.
    expect(snapshotUsable({ pos: 4 }, 6, [at(5)])).toBe(false);
  });
});

describe('peekState types', () => {
  it("resolves the projection's state type, or undefined", () => {
    expectTypeOf<ReturnType<typeof peekState<number>>>().toEqualTypeOf<
      Promise<number | undefined>
    >();
    const wrong = () => {
      // @ts-expect-error: the projection's state is a number, not a string
      const state: Promise<string | undefined> = peekState({ name: 'app', projection: count });
      return state;
    };
    expectTypeOf(wrong).toBeFunction();
  });
});

describe('peekLog on fake-indexeddb', () => {
  it('resolves undefined for a missing database and creates none', async () => {
    const factory = new IDBFactory();
    expect(await peekLog({ name: 'missing', indexedDB: factory }, count)).toBeUndefined();
    expect(await factory.databases()).toEqual([]);
  });

  it('reads the newest snapshot and the events after it', async () => {
    const factory = new IDBFactory();
    const store = await openStore({
      name: 'app',
      storage: indexedDbStorage('app', { indexedDB: factory }),
      projections: [count],
    });
    await store.append(
      's',
      [1, 2, 3].map((data) => ({ type: 't', data })),
    );
    expect(await store.state('count')).toBe(3);
    await store.append('s', { type: 't', data: 4 });
    const log = await peekLog({ name: 'app', indexedDB: factory }, count);
    expect(log?.snapshot?.count).toBe(2);
    expect(log?.events.map((r) => r.event.data)).toEqual([3, 4]);
    expect(await peekState({ name: 'app', projection: count, indexedDB: factory })).toBe(4);
    await store.close();
  });
});

describe('peekState on an encrypted store', () => {
  it('answers undefined (ask the store): only the worker holds the key', async () => {
    const factory = new IDBFactory();
    const key = generateEncryptionKey();
    const projection = defineProjection({
      name: 'titles',
      version: 1,
      snapshotEvery: 2,
      initial: () => [] as unknown[],
      apply: (list: unknown[], e) => [...list, e.data],
    });
    const store = await openStore({
      name: 'sealed-peek',
      storage: indexedDbStorage('sealed-peek', { indexedDB: factory }),
      projections: [projection],
      encryption: { key },
    });
    for (let i = 0; i < 5; i++) await store.append('s', { type: 'added', data: { i } });
    expect(await store.state(projection)).toHaveLength(5);
    await store.close();
    // Sealed snapshots and sealed events: no state from the page, never ciphertext as state.
    expect(
      await peekState({ name: 'sealed-peek', projection, indexedDB: factory }),
    ).toBeUndefined();
  });
});
