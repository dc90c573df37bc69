/**
 * Schema version 6 (idb-schema.ts invariant 8): segments keyed by a number, a husk below zero, the
 * total order in the `order` index. A version-5 database made by hand, with a husk of trimmed
 * events, is upgraded in place: every event, husk, index, counter, stream row and meta value is
 * kept; a late event then splits the husk; an upgrade that fails half-way leaves version 5 whole.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Segment } from '../../src/core/segments.ts';
import { SCHEMA_VERSION } from '../../src/storage/idb-schema.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';
import { closeOpened, LOCAL, OTHER, open, REMOTE, request } from './fixtures/migration-helpers.ts';
import { expectUpgradedV5, expectV6Store, makeV5, v5Log } from './fixtures/v5-database.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeOpened();
});

describe('IndexedDB: upgrading a version-5 database to schema 6', () => {
  it('keys every segment by a number and a husk below zero, and keeps every event, husk and index', async () => {
    expect(SCHEMA_VERSION).toBe(8);
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV5(factory, 'v5', LOCAL, log);
    await expectUpgradedV5(await open(factory, 'v5'), log);
    const db = await request(factory.open('v5'));
    expect(db.version).toBe(SCHEMA_VERSION);
    expect([...db.objectStoreNames].sort()).toEqual(['meta', 'segments', 'snapshots', 'streams']);
    await expectV6Store(db, 3);
    db.close();
  });

  it('splits an upgraded husk around a late event, each part under a key below zero', async () => {
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV5(factory, 'late', LOCAL, log);
    const upgraded = await open(factory, 'late');
    // Between REMOTE 1 and REMOTE 2, both trimmed: inside the husk.
    const late = storedEvent({ replica: OTHER, seq: 3, wall: 2_500, stream: 'o', version: 3 });
    const first = await upgraded.ingest({ events: [late], now: 50_000, maxClockDriftMs: 1e9 });
    expect(first.written.map((r) => r.event.id)).toEqual([late.id]);
    const again = await upgraded.ingest({ events: [late], now: 50_000, maxClockDriftMs: 1e9 });
    expect(again.written).toEqual([]);
    expect((await upgraded.readByCursor({ limit: 100 })).map((r) => r.event.id)).toEqual([
      late.id,
      ...log.kept.map((r) => r.event.id),
    ]);
    const replay = await upgraded.ingest({
      events: [...log.trimmed, ...log.kept].map((r) => r.event),
      now: 50_000,
      maxClockDriftMs: 1e9,
    });
    expect(replay.written).toEqual([]);
    const db = await request(factory.open('late'));
    const order = (await request(
      db.transaction('segments').objectStore('segments').index('order').getAll(),
    )) as Segment[];
    // Husk (REMOTE 1), the late event, husk (REMOTE 2 and 3), then the two kept segments.
    expect(order.map((s) => [s.n, s.trimmed ?? 0])).toEqual([
      [0, 1],
      [1, 0],
      [0, 2],
      [2, 0],
      [4, 0],
    ]);
    expect(order.map((s) => s.key! < 0)).toEqual([true, false, true, false, false]);
    expect(new Set(order.map((s) => s.key)).size).toBe(5);
    db.close();
  });

  it('leaves version 5 whole when the upgrade fails half-way, and upgrades on the next open', async () => {
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV5(factory, 'fails', LOCAL, log);
    const add = IDBObjectStore.prototype.add;
    let adds = 0;
    vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['add']>
    ) {
      // The third segment written into the new store.
      if (this.name === 'segments' && ++adds === 3) throw new DOMException('full', 'UnknownError');
      return add.apply(this, args);
    });
    await expect(indexedDbStorage('fails', { indexedDB: factory }).open()).rejects.toThrow();
    expect(adds).toBe(3);
    vi.restoreAllMocks();
    const db = await request(factory.open('fails'));
    expect(db.version).toBe(5);
    const store = db.transaction('segments').objectStore('segments');
    expect(store.keyPath).toEqual(['first', 'last', 'n']);
    expect(await request(store.count())).toBe(3);
    db.close();
    await expectUpgradedV5(await open(factory, 'fails'), log);
  });
});
