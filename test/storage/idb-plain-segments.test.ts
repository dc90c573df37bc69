/**
 * idb-written-form.ts: IndexedDB writes the compact form of a segment unless a benchmark named
 * the database with storePlainSegments (invariant 1), and the plain form is a valid log on every
 * path of the conformance suite (invariant 2), so that test/bench/compact-ab.ts compares two
 * logs that hold the same records.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventLog } from '../../src/storage/adapter.ts';
import { storePlainSegments } from '../../src/storage/idb-written-form.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { storageConformance } from './conformance.ts';

let databases = 0;

storageConformance('indexeddb (fake-indexeddb), plain segments', () => {
  const name = `plain-conformance-${++databases}`;
  storePlainSegments(name);
  return indexedDbStorage(name, { indexedDB: new IDBFactory() });
});

const opened: EventLog[] = [];
afterEach(async () => {
  for (const log of opened.splice(0)) await log.close();
});

/** The stored segments of `name`, as IndexedDB holds them. */
function storedSegments(factory: IDBFactory, name: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const open = factory.open(name);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const all = db.transaction('segments').objectStore('segments').getAll();
      all.onerror = () => reject(all.error);
      all.onsuccess = () => {
        db.close();
        resolve(all.result as Record<string, unknown>[]);
      };
    };
  });
}

/** Two events of two streams (one segment, one group commit), appended to a fresh database. */
async function written(name: string): Promise<Record<string, unknown>[]> {
  const factory = new IDBFactory();
  const log = await indexedDbStorage(name, { indexedDB: factory }).open();
  opened.push(log);
  await log.appendGroup({
    units: [
      [{ stream: 'a', events: [{ type: 'Added', data: 1, schema: 1 }], expectedVersion: 'any' }],
      [{ stream: 'b', events: [{ type: 'Added', data: 2, schema: 1 }], expectedVersion: 'any' }],
    ],
    now: 1_000,
  });
  await log.close();
  return storedSegments(factory, name);
}

describe('the form IndexedDB writes a segment in', () => {
  it('is compact by default: canonical ids left out, streams by place, no streamMax', async () => {
    const [segment] = await written('form-default');
    expect(segment?.ids).toEqual(['', '']);
    expect(segment?.streamOf).toBeInstanceOf(Uint8Array);
    expect(segment?.stream).toBe('');
    expect(segment).not.toHaveProperty('streamMax');
  });

  it('is plain in a database named with storePlainSegments, and compact again once unnamed', async () => {
    storePlainSegments('form-plain');
    const [plain] = await written('form-plain');
    const ids = (plain?.ids ?? []) as string[];
    expect(ids).toHaveLength(2);
    expect(ids.every((id) => id.length > 0)).toBe(true);
    expect(plain?.stream).toEqual(['a', 'b']);
    expect(plain).not.toHaveProperty('streamOf');
    expect(plain).toHaveProperty('streamMax');
    storePlainSegments('form-plain', false);
    const [again] = await written('form-plain');
    expect(again?.ids).toEqual(['', '']);
  });
});
