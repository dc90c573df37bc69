/**
 * indexeddb.ts invariant 8 (idb-append.ts): an append that what the handle last saw covers is
 * written behind one read of the counters instead of reading them, the replica id and the
 * stream rows first; when another handle (a tab) or an ingest wrote meanwhile, that attempt is
 * aborted and the append runs again with reads, so seqs, positions and versions stay dense.
 */
import 'fake-indexeddb/auto';
import { IDBFactory, IDBObjectStore } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaId } from '../../src/core/ids.ts';
import type { EventLog } from '../../src/storage/adapter.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storedEvent } from '../fixtures/events.ts';

const counted = { gets: 0 };
const originalGet = IDBObjectStore.prototype.get;
const opened: EventLog[] = [];

afterEach(async () => {
  IDBObjectStore.prototype.get = originalGet;
  for (const log of opened.splice(0)) await log.close();
});

function countGets() {
  IDBObjectStore.prototype.get = function (this: IDBObjectStore, ...args: [IDBValidKey]) {
    counted.gets++;
    return originalGet.apply(this, args);
  } as typeof originalGet;
}

const append = (log: EventLog, stream: string, expectedVersion: number | 'any' = 'any') =>
  log.appendLocal({
    stream,
    events: [{ type: 'Added', data: 1, schema: 1 }],
    expectedVersion,
    now: 1_000,
  });

async function two() {
  const storage = indexedDbStorage('cache', { indexedDB: new IDBFactory() });
  const a = await storage.open();
  const b = await storage.open();
  opened.push(a, b);
  return { a, b };
}

describe('IndexedDB appends planned from what the handle last saw', () => {
  it('reads only the counters for an append to a stream it wrote last', async () => {
    const { a } = await two();
    await append(a, 's');
    countGets();
    counted.gets = 0;
    await append(a, 's', 1);
    expect(counted.gets).toBe(1);
    counted.gets = 0;
    await append(a, 'new-stream');
    expect(counted.gets).toBe(3);
  });

  it('notices another handle’s write and appends with fresh reads: seq, pos and versions stay dense', async () => {
    const { a, b } = await two();
    const out = [];
    for (let i = 0; i < 6; i++) {
      const log = i % 3 === 2 ? b : a;
      out.push(await append(log, 's', i));
    }
    const records = await a.readByPos(0, 10);
    expect(records.map((r) => [r.pos, r.event.seq, r.event.version])).toEqual(
      Array.from({ length: 6 }, (_, i) => [i + 1, i + 1, i + 1]),
    );
    expect(out.every((r) => r.kind === 'written')).toBe(true);
  });

  it('notices an ingest on another handle that moved a stream’s version', async () => {
    const { a, b } = await two();
    await append(a, 's');
    await b.ingest({
      events: [
        storedEvent({
          replica: ReplicaId.parse('remote0000000001'),
          seq: 1,
          wall: 500,
          stream: 's',
          version: 7,
        }),
      ],
      now: 1_000,
      maxClockDriftMs: 1e9,
    });
    const error = await append(a, 's', 1).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONCURRENCY' });
    expect((await append(a, 's', 7)).kind).toBe('written');
  });
});
