/**
 * Schema version 8 (idb-schema.ts invariant 10): the `stream` index lists each segment under
 * [stream number, cursor rank]; each stream's row holds its number. A version-7 database made as
 * schema 7 wrote it, with a husk, a segment of two streams and a row of a stream without events,
 * is upgraded in place; an upgrade that fails half-way leaves version 7 whole.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SCHEMA_VERSION } from '../../src/storage/idb-schema.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';
import { closeOpened, LOCAL, OTHER, open, REMOTE, request } from './fixtures/migration-helpers.ts';
import { expectUpgradedV5, v5Log } from './fixtures/v5-database.ts';
import { expectStreamReads, expectV8Store, makeV7 } from './fixtures/v7-database.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeOpened();
});

describe('IndexedDB: upgrading a version-7 database to schema 8', () => {
  it('numbers every stream with events, keys every segment by number, and reads every stream', async () => {
    expect(SCHEMA_VERSION).toBe(8);
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV7(factory, 'v7', LOCAL, log);
    const upgraded = await open(factory, 'v7');
    await expectUpgradedV5(upgraded, log);
    await expectStreamReads(upgraded, log);
    expect(await upgraded.streamVersion('gone')).toBe(3);
    const db = await request(factory.open('v7'));
    await expectV8Store(db);
    db.close();
  });

  it('goes on from the upgraded log: appends to old and new streams are read back in order', async () => {
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV7(factory, 'append', LOCAL, log);
    const upgraded = await open(factory, 'append');
    const event = { type: 'Added', data: 1, schema: 1 };
    for (const stream of ['o', 'new', 'gone']) {
      const version = await upgraded.streamVersion(stream);
      const out = await upgraded.appendLocal({
        stream,
        events: [event, event],
        expectedVersion: version,
        now: 9e3,
      });
      expect(out).toMatchObject({ kind: 'written' });
      const read = await upgraded.readByCursor({ stream, limit: 100 });
      expect(read.map((r) => r.event.version)).toEqual(
        [...log.kept.filter((r) => r.event.stream === stream), ...read.slice(-2)].map(
          (r) => r.event.version,
        ),
      );
      expect(read.slice(-2).map((r) => r.event.version)).toEqual([version + 1, version + 2]);
    }
  });

  it('leaves version 7 whole when the upgrade fails half-way, and upgrades on the next open', async () => {
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV7(factory, 'fails', LOCAL, log);
    const put = IDBObjectStore.prototype.put;
    let puts = 0;
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['put']>
    ) {
      if (this.name === 'streams') {
        puts += 1;
        throw new DOMException('full', 'UnknownError');
      }
      return put.apply(this, args);
    });
    await expect(indexedDbStorage('fails', { indexedDB: factory }).open()).rejects.toThrow();
    expect(puts).toBe(1);
    vi.restoreAllMocks();
    const db = await request(factory.open('fails'));
    expect(db.version).toBe(7);
    const store = db.transaction('segments').objectStore('segments');
    expect(store.index('stream').keyPath).toBe('streamKeys');
    const segments = (await request(store.getAll())) as { streamIx?: unknown }[];
    expect(segments.every((s) => s.streamIx === undefined)).toBe(true);
    db.close();
    const upgraded = await open(factory, 'fails');
    await expectUpgradedV5(upgraded, log);
    await expectStreamReads(upgraded, log);
  });
});
