/**
 * Schema version 4 (the `id` index lists only custom ids, idb-schema.ts invariant 4; the `stream`
 * index is multi-entry, invariant 5) opens a version-3 database made by hand, where every id is
 * in the `id` index: every event is found by its id and by its stream, only the custom ids keep
 * an `id` entry, and a custom id of canonical form still keeps ids unique when the event it
 * names arrives.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { EventId, ReplicaId, Seq } from '../../src/core/ids.ts';
import { packSegment, slotsOf } from '../../src/core/segments.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';

const LOCAL = ReplicaId.parse('local00000000001');
const OTHER = ReplicaId.parse('other00000000042');
const SHAPED = EventId.canonical(OTHER, Seq.make(1));

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Five local events: three with canonical ids, then 'order-7', then SHAPED. */
function v3Log(): LocalRecord[] {
  const ids = [undefined, undefined, undefined, 'order-7', SHAPED];
  return ids.map((id, i) => ({
    pos: i + 1,
    event: storedEvent({ replica: LOCAL, seq: i + 1, wall: 1_000 + i, stream: 's', id }),
  }));
}

async function makeV3(factory: IDBFactory, records: LocalRecord[]): Promise<void> {
  const open = factory.open('v3', 3);
  open.onupgradeneeded = () => {
    const db = open.result;
    const segments = db.createObjectStore('segments', { keyPath: ['first', 'last', 'n'] });
    segments.createIndex('id', 'ids', { unique: true, multiEntry: true });
    segments.createIndex('pos', 'pos', { unique: true });
    segments.createIndex('stream', ['stream', 'first']);
    segments.createIndex('slot', 'slots', { unique: true, multiEntry: true });
    db.createObjectStore('meta');
    db.createObjectStore('streams', { keyPath: 'stream' });
    db.createObjectStore('snapshots', { keyPath: ['projection', 'version', 'cursor'] });
  };
  const db = await request(open);
  const tx = db.transaction(['segments', 'meta', 'streams'], 'readwrite');
  for (const r of records) {
    // Version 3 wrote no `customIds` and no `streamKeys`, and one slot per event.
    const { customIds: _ids, streamKeys: _keys, slotRuns: _runs, ...segment } = packSegment([r]);
    tx.objectStore('segments').add({ ...segment, slots: slotsOf(segment) });
  }
  const meta = tx.objectStore('meta');
  meta.put(LOCAL, 'sys:replicaId');
  meta.put('epoch00000000001', 'sys:epoch');
  const maxCursor = records.at(-1)!.event.cursor;
  meta.put({ seq: 5, pos: 5, clock: { wall: 1_004, counter: 0 }, maxCursor }, 'sys:counters');
  tx.objectStore('streams').put({ stream: 's', version: 5 });
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

describe('IndexedDB adapter: upgrading a version-3 database', () => {
  it('finds every id, keeps index entries for custom ids only, and keeps ids unique', async () => {
    const factory = new IDBFactory();
    const records = v3Log();
    await makeV3(factory, records);
    const log = await indexedDbStorage('v3', { indexedDB: factory }).open();
    try {
      expect(await log.getByIds(records.map((r) => r.event.id))).toEqual(records);
      // The stream index is rebuilt on each segment's streamKeys (idb-schema.ts invariant 5).
      expect(await log.readByCursor({ stream: 's', limit: 10 })).toEqual(records);
      expect(await log.readByCursor({ stream: 's', limit: 10, reverse: true })).toEqual(
        [...records].reverse(),
      );

      const raw = await new Promise<IDBDatabase>((resolve) => {
        const r = factory.open('v3');
        r.onsuccess = () => resolve(r.result);
      });
      const tx = raw.transaction(['segments', 'meta']);
      const index = tx.objectStore('segments').index('id');
      expect(index.keyPath).toBe('customIds');
      expect(await request(index.count())).toBe(2);
      expect(await request(index.getKey(SHAPED))).toBeDefined();
      expect(await request(index.getKey(records[0]!.event.id))).toBeUndefined();
      expect(await request(tx.objectStore('meta').get('sys:counters'))).toMatchObject({
        shapedIds: true,
      });
      raw.close();

      // OTHER's first event takes the id SHAPED held: one copy of that id stays.
      const theirs = storedEvent({ replica: OTHER, seq: 1, wall: 500, stream: 'r' });
      const result = await log.ingest({ events: [theirs], now: 2_000, maxClockDriftMs: 1e9 });
      expect(result.lost).toHaveLength(1);
      const all = await log.readByCursor({ limit: 100 });
      expect(all.filter((r) => r.event.id === SHAPED)).toHaveLength(1);
      const appended = await log.appendLocal({
        stream: 's',
        events: [{ type: 'Added', data: null, schema: 1 }],
        expectedVersion: 'any',
        now: 3_000,
      });
      expect(appended.kind).toBe('written');
    } finally {
      await log.close();
    }
  });
});
