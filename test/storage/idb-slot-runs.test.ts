/**
 * Schema version 5 (idb-schema.ts invariant 7): the `slot` index lists runs of consecutive seqs
 * of one replica, one entry per run instead of one per event, and is not unique. Checked on a
 * fresh database (an append of 100 events takes one entry; an ingest that repeats a slot from
 * the middle of a stored run is recognised, never stored twice) and on a version-4 database made
 * by hand with one `slots` entry per event (upgraded in place, every slot still found).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { ReplicaId } from '../../src/core/ids.ts';
import { slotRunsOf } from '../../src/core/segments.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';
import { expectUpgradedLog, makeV4, v4Segments } from './fixtures/v4-database.ts';

const LOCAL = ReplicaId.parse('local00000000001');
const REMOTE = ReplicaId.parse('remote0000000001');
const OTHER = ReplicaId.parse('other00000000042');

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function slotIndex(factory: IDBFactory, name: string): Promise<unknown[]> {
  const db = await request(factory.open(name));
  try {
    const index = db.transaction('segments').objectStore('segments').index('slot');
    expect(index.keyPath).toBe('slotRuns');
    expect(index.unique).toBe(false);
    return await request(index.getAllKeys());
  } finally {
    db.close();
  }
}

/** REMOTE's events 1..n, one stream, a second apart. */
const remote = (from: number, to: number, id?: (seq: number) => string) =>
  Array.from({ length: to - from + 1 }, (_, i) =>
    storedEvent({
      replica: REMOTE,
      seq: from + i,
      wall: 1_000 + (from + i) * 1_000,
      stream: 'r',
      ...(id === undefined ? {} : { id: id(from + i) }),
    }),
  );

describe('core/segments.ts slotRunsOf', () => {
  it('makes one run per stretch of consecutive seqs of one replica, in slot order', () => {
    const slot = (replica: string, seq: number) =>
      `${replica}.${seq.toString(36).padStart(12, '0')}`;
    const runs = slotRunsOf([
      slot('b', 3),
      slot('a', 1),
      slot('a', 2),
      slot('b', 2),
      slot('a', 4),
      slot('a', 36),
      slot('a', 35),
      slot('ab', 1),
    ]);
    expect(runs).toEqual([
      [slot('a', 1), slot('a', 2)],
      [slot('a', 4), slot('a', 4)],
      [slot('a', 35), slot('a', 36)],
      [slot('ab', 1), slot('ab', 1)],
      [slot('b', 2), slot('b', 3)],
    ]);
  });
});

describe('IndexedDB adapter: the slot index of runs (schema 5)', () => {
  it('gives an append of 100 events one slot entry', async () => {
    const factory = new IDBFactory();
    const log = await indexedDbStorage('runs', { indexedDB: factory }).open();
    try {
      await log.appendLocal({
        stream: 's',
        events: Array.from({ length: 100 }, (_, i) => ({ type: 'Added', data: i, schema: 1 })),
        expectedVersion: 'any',
        now: 1_000,
      });
      expect(await slotIndex(factory, 'runs')).toHaveLength(1);
    } finally {
      await log.close();
    }
  });

  it('recognises an ingest that repeats slots from the middle of a stored run', async () => {
    const factory = new IDBFactory();
    const log = await indexedDbStorage('middle', { indexedDB: factory }).open();
    try {
      const all = remote(1, 10);
      await log.ingest({ events: all, now: 50_000, maxClockDriftMs: 1e9 });
      // The same events 4..6 again (a duplicate delivery), then 5 under another id (a copy
      // that loses: it sorts after the one held), then 9..12 (two held, two new).
      const again = await log.ingest({
        events: all.slice(3, 6),
        now: 50_000,
        maxClockDriftMs: 1e9,
      });
      expect(again.written).toEqual([]);
      const impostor = storedEvent({ replica: REMOTE, seq: 5, wall: 20_000, id: 'impostor' });
      const copy = await log.ingest({ events: [impostor], now: 50_000, maxClockDriftMs: 1e9 });
      expect(copy.written).toEqual([]);
      expect(copy.lost).toHaveLength(1);
      const more = await log.ingest({ events: remote(9, 12), now: 50_000, maxClockDriftMs: 1e9 });
      expect(more.written.map((r) => r.event.seq)).toEqual([11, 12]);
      const stored = await log.readByPos(0, 100);
      expect(stored.map((r) => r.event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(await log.getByIds([all[4]!.id])).toEqual([stored[4]]);
    } finally {
      await log.close();
    }
  });
});

describe('IndexedDB adapter: upgrading a version-4 database', () => {
  it('turns one slot entry per event into runs, and finds every slot and id after', async () => {
    const factory = new IDBFactory();
    // Segment 1: REMOTE 1..5. Segment 2: OTHER 1, REMOTE 6, OTHER 2, REMOTE 7 (interleaved).
    const segments = v4Segments(storedEvent, REMOTE, OTHER);
    await makeV4(factory, 'v4', LOCAL, segments);
    const log = await indexedDbStorage('v4', { indexedDB: factory }).open();
    try {
      await expectUpgradedLog(log, segments.flat());
      // REMOTE 1..5 | OTHER 1..2, REMOTE 6..7: three runs for nine events.
      expect(await slotIndex(factory, 'v4')).toHaveLength(3);
    } finally {
      await log.close();
    }
  });
});
