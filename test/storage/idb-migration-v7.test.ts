/**
 * Schema version 7 (idb-schema.ts invariant 9): no `version` index; each stream's row holds its
 * version and conflict flag. A version-6 database made by hand, with a husk and a conflicted row
 * below its stream's largest version, is upgraded in place; an upgrade that fails half-way
 * leaves version 6 whole.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SCHEMA_VERSION, type StreamRow } from '../../src/storage/idb-schema.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';
import { closeOpened, LOCAL, OTHER, open, REMOTE, request } from './fixtures/migration-helpers.ts';
import { expectUpgradedV5, expectV6Store, makeV6, v5Log } from './fixtures/v5-database.ts';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeOpened();
});

async function rows(factory: IDBFactory, name: string): Promise<StreamRow[]> {
  const db = await request(factory.open(name));
  try {
    return (await request(
      db.transaction('streams').objectStore('streams').getAll(),
    )) as StreamRow[];
  } finally {
    db.close();
  }
}

describe('IndexedDB: upgrading a version-6 database to schema 7', () => {
  it('writes each stream its row from the version index, keeps conflict flags, and drops the index', async () => {
    expect(SCHEMA_VERSION).toBe(8);
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV6(factory, 'v6', LOCAL, log);
    // 'r' has no row at version 6: its version 7 came from the index alone.
    expect(await rows(factory, 'v6')).toEqual([{ stream: 'o', version: 2, conflicted: true }]);
    await expectUpgradedV5(await open(factory, 'v6'), log);
    // Schema 8 numbers each stream by the position of its first event met (idb-stream-keys.ts).
    expect(await rows(factory, 'v6')).toEqual([
      { stream: 'o', version: 2, conflicted: true, no: 6 },
      { stream: 'r', version: 7, no: 4 },
    ]);
    const db = await request(factory.open('v6'));
    expect(db.version).toBe(8);
    await expectV6Store(db, 3);
    db.close();
  });

  it('goes on from the upgraded versions: an append writes the row, a stale one is refused', async () => {
    const factory = new IDBFactory();
    await makeV6(factory, 'append', LOCAL, v5Log(storedEvent, REMOTE, OTHER));
    const log = await open(factory, 'append');
    const event = { type: 'Added', data: 1, schema: 1 };
    const next = await log.appendLocal({
      stream: 'o',
      events: [event],
      expectedVersion: 2,
      now: 9e3,
    });
    expect(next).toMatchObject({ kind: 'written', records: [{ event: { version: 3 } }] });
    await expect(
      log.appendLocal({ stream: 'r', events: [event], expectedVersion: 6, now: 9e3 }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY' });
    expect(await rows(factory, 'append')).toEqual([
      { stream: 'o', version: 3, conflicted: true, no: 6 },
      { stream: 'r', version: 7, no: 4 },
    ]);
    expect(await log.conflictStreams()).toEqual(['o']);
  });

  it('leaves version 6 whole when the upgrade fails half-way, and upgrades on the next open', async () => {
    const factory = new IDBFactory();
    const log = v5Log(storedEvent, REMOTE, OTHER);
    await makeV6(factory, 'fails', LOCAL, log);
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
    expect(db.version).toBe(6);
    expect([...db.transaction('segments').objectStore('segments').indexNames]).toContain('version');
    db.close();
    await expectUpgradedV5(await open(factory, 'fails'), log);
  });
});
