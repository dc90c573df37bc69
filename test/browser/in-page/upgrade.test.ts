/**
 * The upgrades of old databases in real Chromium and Firefox: a version-4 one (idb-schema.ts
 * invariant 7: one `slots` entry per event becomes one `slot` entry per run of seqs, in place,
 * and every event is still found by position, id and slot), and a version-5 one with a husk
 * (invariant 8: segments keyed by a number, a husk below zero, the total order in the `order`
 * index; every event, husk, index, counter and meta value kept), a version-6 one (invariant 9:
 * the `version` index becomes a row per stream, conflict flags kept), and a version-7 one as
 * schema 7 wrote it (invariant 10: the `stream` index keyed by stream number and cursor rank;
 * every event, stream read and version kept).
 */
import { describe, expect, it } from 'vitest';
import { ReplicaId } from '../../../src/core/ids.ts';
import { indexedDbStorage } from '../../../src/storage/indexeddb.ts';
import { storedEvent } from '../../fixtures/events.ts';
import { expectUpgradedLog, makeV4, v4Segments } from '../../storage/fixtures/v4-database.ts';
import {
  expectUpgradedV5,
  expectV6Store,
  makeV5,
  makeV6,
  v5Log,
} from '../../storage/fixtures/v5-database.ts';
import { expectStreamReads, expectV8Store, makeV7 } from '../../storage/fixtures/v7-database.ts';

const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const LOCAL = ReplicaId.parse('local00000000001');

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

describe('IndexedDB: upgrading a version-4 database in the browser', () => {
  it('turns per-event slots into runs in place, and finds every event after', async () => {
    const name = `upgrade-v4-${run}`;
    const segments = v4Segments(storedEvent, 'remote0000000001', 'other00000000042');
    await makeV4(indexedDB, name, LOCAL, segments);
    const log = await indexedDbStorage(name).open();
    try {
      await expectUpgradedLog(log, segments.flat());
    } finally {
      await log.close();
    }
    const db = await request(indexedDB.open(name));
    const index = db.transaction('segments').objectStore('segments').index('slot');
    expect(index.keyPath).toBe('slotRuns');
    expect(await request(index.getAllKeys())).toHaveLength(3);
    db.close();
    indexedDB.deleteDatabase(name);
  });

  it('moves a version-5 log with a husk into the store of schema 6, and finds every event after', async () => {
    const name = `upgrade-v5-${run}`;
    const log = v5Log(storedEvent, 'remote0000000001', 'other00000000042');
    await makeV5(indexedDB, name, LOCAL, log);
    const upgraded = await indexedDbStorage(name).open();
    try {
      await expectUpgradedV5(upgraded, log);
    } finally {
      await upgraded.close();
    }
    const db = await request(indexedDB.open(name));
    expect(db.version).toBe(8);
    await expectV6Store(db, 3);
    db.close();
    indexedDB.deleteDatabase(name);
  });

  it('writes each stream of a version-6 log its row from the version index, and drops the index', async () => {
    const name = `upgrade-v6-${run}`;
    const log = v5Log(storedEvent, 'remote0000000001', 'other00000000042');
    await makeV6(indexedDB, name, LOCAL, log);
    const upgraded = await indexedDbStorage(name).open();
    try {
      await expectUpgradedV5(upgraded, log);
    } finally {
      await upgraded.close();
    }
    const db = await request(indexedDB.open(name));
    expect(db.version).toBe(8);
    await expectV6Store(db, 3);
    const rows = await request(db.transaction('streams').objectStore('streams').getAll());
    // Schema 8 numbers each stream by the position of its first event met (idb-stream-keys.ts).
    expect(rows).toEqual([
      { stream: 'o', version: 2, conflicted: true, no: 6 },
      { stream: 'r', version: 7, no: 4 },
    ]);
    db.close();
    indexedDB.deleteDatabase(name);
  });

  it('keys the stream index of a version-7 log by stream number, and reads every stream after', async () => {
    const name = `upgrade-v7-${run}`;
    const log = v5Log(storedEvent, 'remote0000000001', 'other00000000042');
    await makeV7(indexedDB, name, LOCAL, log);
    const upgraded = await indexedDbStorage(name).open();
    try {
      await expectUpgradedV5(upgraded, log);
      await expectStreamReads(upgraded, log);
      expect(await upgraded.streamVersion('gone')).toBe(3);
    } finally {
      await upgraded.close();
    }
    const db = await request(indexedDB.open(name));
    await expectV8Store(db);
    db.close();
    indexedDB.deleteDatabase(name);
  });
});
