/**
 * A forward page reads only the segment keys it needs (idb-segments.ts readForward): a key says
 * how many events its segment holds, so a page of 1,000 events in segments of 100 needs about
 * ten keys, not 1,000 (issue 14: a 100,000-event replay read ~50,500 keys for ~1,100 segments).
 * Where the segments are smaller than the last pages suggested, the page asks for more keys
 * after the last and is still whole.
 */
import 'fake-indexeddb/auto';
import { IDBDatabase, IDBFactory, IDBIndex, IDBObjectStore } from 'fake-indexeddb';

const getAll = IDBIndex.prototype.getAll;

import { afterEach, describe, expect, it, vi } from 'vitest';
import { type EventStore, indexedDbStorage, openStore } from '../../src/index.ts';
import type { StoreInternals } from '../../src/store/internal.ts';
import { syncFactory } from '../../src/sync/controller.ts';

const counted = { keys: 0 };
function countKeys(proto: { getAllKeys: (...args: never[]) => unknown }) {
  const original = proto.getAllKeys;
  proto.getAllKeys = function (this: unknown, ...args: never[]) {
    const request = original.apply(this, args) as IDBRequest<unknown[]>;
    request.addEventListener('success', () => {
      counted.keys += request.result.length;
    });
    return request;
  } as typeof original;
  return () => {
    proto.getAllKeys = original;
  };
}

let store: EventStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe('a forward page of the IndexedDB log', () => {
  it('reads about as many segment keys as it needs segments, and every event', async () => {
    store = await openStore({
      name: 'page-keys',
      storage: indexedDbStorage('page-keys', { indexedDB: new IDBFactory() }),
    });
    for (let b = 0; b < 30; b++) {
      const batch = Array.from({ length: 100 }, (_, i) => ({ type: 't', data: b * 100 + i }));
      await store.append(`s${b % 3}`, batch);
    }
    // Then 300 single appends: segments of one event, after segments of 100.
    for (let i = 0; i < 300; i++) await store.append('s0', { type: 't', data: 3000 + i });

    const restore = [
      countKeys(IDBObjectStore.prototype as never),
      countKeys(IDBIndex.prototype as never),
    ];
    try {
      // read() pages by 1,000 (store.ts): three pages of big segments, then the small ones.
      counted.keys = 0;
      const all = await store.read();
      expect(all.map((e) => e.data)).toEqual(Array.from({ length: 3300 }, (_, i) => i));
      // 330 segments in all; before, each page asked for up to 1,000 keys (1,260 here).
      expect(counted.keys).toBeLessThan(2 * 330);

      counted.keys = 0;
      const stream = await store.read({ stream: 's0' });
      expect(stream.map((e) => e.data)).toEqual([
        ...Array.from({ length: 1000 }, (_, k) => Math.floor(k / 100) * 300 + (k % 100)),
        ...Array.from({ length: 300 }, (_, i) => 3000 + i),
      ]);
      // 310 segments of s0; before, 1,000 keys for the first page alone.
      expect(counted.keys).toBeLessThan(2 * 310);
    } finally {
      for (const undo of restore) undo();
    }
  });

  it('ends a page whose last key is its upper bound, though the keys asked for all came (regression)', async () => {
    // Seed 1868202112 of the against-memory property: the next range of keys after the last
    // one was (last, until] with last = until, which IndexedDB refuses (DataError).
    const storage = indexedDbStorage('page-bound', { indexedDB: new IDBFactory() });
    const log = await storage.open();
    try {
      const event = { type: 't', data: 0, schema: 1 };
      for (let b = 0; b < 5; b++) {
        await log.appendLocal({
          stream: 'big',
          events: Array.from({ length: 100 }, () => ({ ...event })),
          expectedVersion: 'any',
          now: 1_000 + b,
        });
      }
      for (let i = 0; i < 8; i++) {
        await log.appendLocal({ stream: 's', events: [event], expectedVersion: 'any', now: 2_000 });
      }
      const small = await log.readByCursor({ stream: 's', limit: 100 });
      // Pages of big segments make the hint large: a page of 250 then asks for 4 keys first.
      for (let i = 0; i < 3; i++) await log.readByCursor({ stream: 'big', limit: 500 });
      const page = await log.readByCursor({
        stream: 's',
        after: small[1]!.event.cursor,
        until: small[5]!.event.cursor,
        limit: 250,
      });
      expect(page.map((r) => r.pos)).toEqual(small.slice(2, 6).map((r) => r.pos));
    } finally {
      await log.close();
    }
  });

  it('reads a stream written among others in one transaction and one request for its segments, after whole-log pages (stream reads learn their own segment sizes)', async () => {
    const factory = new IDBFactory();
    let internals: StoreInternals | undefined;
    store = await openStore({
      name: 'interleaved',
      storage: indexedDbStorage('interleaved', { indexedDB: factory }),
      syncFactory: (i) => {
        internals = i;
        return syncFactory()(i);
      },
    });
    // 20 group commits of 100 events: one of each of five card streams, and 95 of a busy one.
    for (let b = 0; b < 20; b++) {
      await store.appendMany([
        ...Array.from({ length: 5 }, (_, c) => ({
          stream: `card-${c}`,
          events: { type: 't', data: b },
        })),
        {
          stream: 'busy',
          events: Array.from({ length: 95 }, (_, i) => ({ type: 't', data: i })),
        },
      ]);
    }
    const calls = { transactions: 0, getAll: 0 };
    const spies = [
      vi.spyOn(IDBIndex.prototype, 'getAll').mockImplementation(function (
        this: IDBIndex,
        ...args: Parameters<IDBIndex['getAll']>
      ) {
        calls.getAll += 1;
        return getAll.apply(this, args);
      }),
    ];
    try {
      // Stream reads before: the sizes a read of an interleaved stream learns from.
      for (let c = 0; c < 4; c++) await store.read({ stream: `card-${c}` });
      // A whole-log read of segments of 100 events (a projection's replay reads so).
      expect(await store.read({ limit: 2000 })).toHaveLength(2000);
      // The background signer (store/signing.ts invariant 5) opens transactions of its own; under
      // load its step fell inside the measured read (CI, stop 32).
      await internals?.signer?.idle();
      const transaction = vi.spyOn(IDBDatabase.prototype, 'transaction');
      calls.getAll = 0;
      const events = await store.read({ stream: 'card-4' });
      expect(events.map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, b) => b));
      // One transaction (records and horizon: store/history-reads.ts invariant 7); before, three.
      expect(transaction).toHaveBeenCalledTimes(1);
      // Its 20 segments in one request; before, the whole log's 100 events a segment made the
      // read ask for 6 first, then again.
      expect(calls.getAll).toBe(1);
    } finally {
      for (const spy of spies) spy.mockRestore();
      vi.restoreAllMocks();
    }
  });
});
