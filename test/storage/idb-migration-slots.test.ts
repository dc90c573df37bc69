/**
 * Schema version 3 (the unique (replica, seq) `slot` index, idb-schema.ts invariant 3) opens
 * version-1 and version-2 databases made by hand, including ones that hold a (replica, seq)
 * twice (stored before the index existed, RELIABILITY 34): both copies stay readable, and the
 * next copy of that slot is resolved by the copy rule (core/copies.ts), never a failed open.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import type { LocalRecord } from '../../src/core/events.ts';
import { packSegment } from '../../src/core/segments.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';

const LOCAL = 'local00000000001';
const REMOTE = 'remote0000000001';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Three events: (REMOTE, 1) twice under two ids and two cursors, then (REMOTE, 2). */
function duplicated(): LocalRecord[] {
  return [
    {
      pos: 1,
      event: storedEvent({ replica: REMOTE, seq: 1, wall: 1_000, id: 'first', stream: 'r' }),
    },
    {
      pos: 2,
      event: storedEvent({ replica: REMOTE, seq: 1, wall: 2_000, id: 'again', stream: 'q' }),
    },
    {
      pos: 3,
      event: storedEvent({ replica: REMOTE, seq: 2, wall: 3_000, id: 'next', stream: 'r' }),
    },
  ];
}

async function makeOld(factory: IDBFactory, version: 1 | 2, records: LocalRecord[]) {
  const open = factory.open('old', version);
  open.onupgradeneeded = () => {
    const db = open.result;
    if (version === 1) {
      const events = db.createObjectStore('events', { keyPath: 'event.cursor' });
      events.createIndex('id', 'event.id', { unique: true });
      events.createIndex('pos', 'pos', { unique: true });
      events.createIndex('stream', ['event.stream', 'event.cursor']);
    } else {
      const segments = db.createObjectStore('segments', { keyPath: ['first', 'last', 'n'] });
      segments.createIndex('id', 'ids', { unique: true, multiEntry: true });
      segments.createIndex('pos', 'pos', { unique: true });
      segments.createIndex('stream', ['stream', 'first']);
    }
    db.createObjectStore('meta');
    db.createObjectStore('streams', { keyPath: 'stream' });
    db.createObjectStore('snapshots', { keyPath: ['projection', 'version', 'cursor'] });
  };
  const db = await request(open);
  const stores = [version === 1 ? 'events' : 'segments', 'meta', 'streams'];
  const tx = db.transaction(stores, 'readwrite');
  for (const r of records) {
    // Version 2 wrote no `slots`: leave them out as it did.
    if (version === 1) tx.objectStore('events').add(r);
    else {
      const { slotRuns: _runs, ...segment } = packSegment([r]);
      tx.objectStore('segments').add(segment);
    }
  }
  const meta = tx.objectStore('meta');
  meta.put(LOCAL, 'sys:replicaId');
  meta.put('epoch00000000001', 'sys:epoch');
  const maxCursor = [...records].sort((a, b) => (a.event.cursor < b.event.cursor ? 1 : -1))[0]!
    .event.cursor;
  meta.put(
    { seq: 0, pos: records.length, clock: { wall: 3_000, counter: 0 }, maxCursor },
    'sys:counters',
  );
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

describe('IndexedDB adapter: upgrading to the (replica, seq) index', () => {
  it.each([1, 2] as const)(
    'opens a version-%i database that holds a (replica, seq) twice, and resolves the next copy of it',
    async (version) => {
      const factory = new IDBFactory();
      const records = duplicated();
      await makeOld(factory, version, records);
      const log = await indexedDbStorage('old', { indexedDB: factory }).open();
      try {
        expect(await log.readByPos(0, 10)).toEqual(records);
        // A copy of (REMOTE, 2) under another id and a later cursor loses; a new slot is stored.
        const result = await log.ingest({
          events: [
            storedEvent({ replica: REMOTE, seq: 2, wall: 4_000, id: 'impostor' }),
            storedEvent({ replica: REMOTE, seq: 3, wall: 4_001, id: 'new' }),
          ],
          now: 5_000,
          maxClockDriftMs: 1e9,
        });
        expect(result.written.map((r) => r.event.id)).toEqual(['new']);
        expect(result.lost).toMatchObject([{ code: 'SEQ_CONFLICT', keptId: 'next' }]);
        // The slot held twice: a copy sorting before both wins over the one indexed (the first).
        const earliest = storedEvent({ replica: REMOTE, seq: 1, wall: 500, id: 'earliest' });
        const again = await log.ingest({ events: [earliest], now: 5_000, maxClockDriftMs: 1e9 });
        expect(again.removed.map((r) => r.event.id)).toEqual(['first']);
        expect((await log.readByCursor({ limit: 10 })).map((r) => r.event.id)).toEqual([
          'earliest',
          'again',
          'next',
          'new',
        ]);
        // Streams are found through the rebuilt stream index (idb-schema.ts invariant 5).
        const inStream = async (stream: string) =>
          (await log.readByCursor({ stream, limit: 10 })).map((r) => r.event.id);
        expect(await inStream('r')).toEqual(['next']);
        expect(await inStream('s')).toEqual(['earliest', 'new']);
        expect(await inStream('q')).toEqual(['again']);
      } finally {
        await log.close();
      }
    },
  );
});
