/**
 * Schema version 2 (segments) opens a version-1 database (one record per event) made by hand, as
 * Chronicle 0.1 wrote it, and finds every event, counter, stream version, snapshot and meta value
 * (idb-schema.ts invariant 2).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { ReplicaId } from '../../src/core/ids.ts';
import { MAX_SEGMENT_EVENTS } from '../../src/core/segments.ts';
import type { EventLog, SnapshotRecord } from '../../src/storage/adapter.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';

const LOCAL = ReplicaId.parse('local00000000001');
const REMOTE = ReplicaId.parse('remote0000000001');
const opened: EventLog[] = [];

afterEach(async () => {
  for (const log of opened.splice(0)) await log.close();
});

function event(replica: ReplicaId, seq: number, wall: number, stream: string): StoredEventRecord {
  return storedEvent({
    replica,
    seq,
    wall,
    counter: seq % 7,
    stream,
    id: `${replica}-${seq}`,
    data: { seq, stream },
  });
}

/** A log as version 1 held it: local appends, then remote events that sort among them. */
function v1Log(): LocalRecord[] {
  const records: LocalRecord[] = [];
  let pos = 0;
  for (let seq = 1; seq <= MAX_SEGMENT_EVENTS + 40; seq++) {
    const e = event(LOCAL, seq, 1_000 + seq * 10, seq % 50 < 25 ? 'a' : 'b');
    if (seq === 3) e.meta = { by: 'me' };
    if (seq === 4) e.schema = 2;
    records.push({ pos: ++pos, event: e });
  }
  for (let seq = 1; seq <= 30; seq++) {
    records.push({ pos: ++pos, event: event(REMOTE, seq, 1_005 + seq * 37, 'r') });
  }
  return records;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

const snapshot: SnapshotRecord = {
  projection: 'todos',
  version: 1,
  cursor: 'c',
  pos: 3,
  count: 3,
  state: { done: 3 },
};

/** Writes a version-1 database with the version-1 schema, by hand. */
async function makeV1(factory: IDBFactory, name: string, records: LocalRecord[]): Promise<void> {
  const open = factory.open(name, 1);
  open.onupgradeneeded = () => {
    const db = open.result;
    const events = db.createObjectStore('events', { keyPath: 'event.cursor' });
    events.createIndex('id', 'event.id', { unique: true });
    events.createIndex('pos', 'pos', { unique: true });
    events.createIndex('stream', ['event.stream', 'event.cursor']);
    db.createObjectStore('meta');
    db.createObjectStore('streams', { keyPath: 'stream' });
    db.createObjectStore('snapshots', { keyPath: ['projection', 'version', 'cursor'] });
  };
  const db = await request(open);
  const tx = db.transaction(['events', 'meta', 'streams', 'snapshots'], 'readwrite');
  for (const r of records) tx.objectStore('events').add(r);
  const meta = tx.objectStore('meta');
  meta.put(LOCAL, 'sys:replicaId');
  meta.put('epoch00000000001', 'sys:epoch');
  meta.put(
    { seq: MAX_SEGMENT_EVENTS + 40, pos: records.length, clock: { wall: 9e3, counter: 2 } },
    'sys:counters',
  );
  meta.put({ peer: 12 }, 'app:checkpoint');
  tx.objectStore('streams').put({ stream: 'a', version: 150 });
  tx.objectStore('streams').put({ stream: 'r', version: 30, conflicted: true });
  tx.objectStore('snapshots').put(snapshot);
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

const byCursor = (a: LocalRecord, b: LocalRecord) => (a.event.cursor < b.event.cursor ? -1 : 1);

describe('IndexedDB adapter: upgrading a version-1 database', () => {
  it('finds every event, counter, stream version, snapshot and meta value of a version-1 database', async () => {
    const factory = new IDBFactory();
    const records = v1Log();
    await makeV1(factory, 'v1', records);
    const log = await indexedDbStorage('v1', { indexedDB: factory }).open();
    opened.push(log);

    expect(log.replicaId).toBe(LOCAL);
    expect(log.epoch).toBe('epoch00000000001');
    expect(await log.headPos()).toBe(records.length);
    expect(await log.ownSeq()).toBe(MAX_SEGMENT_EVENTS + 40);
    expect(await log.clock()).toEqual({ wall: 9e3, counter: 2 });
    expect(await log.readByPos(0, 1_000)).toEqual(records);
    expect(await log.readByCursor({ limit: 1_000 })).toEqual([...records].sort(byCursor));
    const inA = records.filter((r) => r.event.stream === 'a').sort(byCursor);
    expect(await log.readByCursor({ stream: 'a', limit: 1_000 })).toEqual(inA);
    const some = [records[2]!, records[100]!, records[records.length - 1]!];
    expect(await log.getByIds(some.map((r) => r.event.id))).toEqual(some);
    expect(await log.minCursorSince(MAX_SEGMENT_EVENTS + 40)).toBe(records.at(-30)!.event.cursor);
    // The largest version the stream holds (its events say more than the row made by hand).
    const aVersion = Math.max(
      ...records.filter((r) => r.event.stream === 'a').map((r) => r.event.version),
    );
    expect(await log.streamVersion('a')).toBe(Math.max(150, aVersion));
    expect(await log.conflictStreams()).toEqual(['r']);
    expect(await log.listSnapshots('todos', 1)).toHaveLength(1);
    expect(await log.getSnapshot('todos', 1, 'c')).toEqual(snapshot);
    expect(await log.getMeta('checkpoint')).toEqual({ peer: 12 });

    // The version-1 store is gone; later writes go to segments, after everything migrated.
    const stores = await new Promise<string[]>((resolve) => {
      const r = factory.open('v1');
      r.onsuccess = () => {
        resolve([...r.result.objectStoreNames]);
        r.result.close();
      };
    });
    expect(stores).not.toContain('events');
    const appended = await log.appendLocal({
      stream: 'a',
      events: [{ type: 'Added', data: null, schema: 1 }],
      expectedVersion: Math.max(150, aVersion),
      now: 10_000,
    });
    expect(appended).toMatchObject({ kind: 'written', records: [{ pos: records.length + 1 }] });
    const all = await log.readByCursor({ limit: 1_000 });
    expect(all.at(-1)?.pos).toBe(records.length + 1);
  });
});
