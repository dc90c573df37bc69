/**
 * Runs the storage conformance suite over every adapter that works in Node: the in-memory
 * adapter and the IndexedDB adapter on fake-indexeddb (a fresh factory per database).
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe } from 'vitest';
import type { StorageAdapter } from '../../src/storage/adapter.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { againstMemory } from './against-memory.ts';
import { storageConformance } from './conformance.ts';

let databases = 0;

const adapters: [string, () => StorageAdapter][] = [
  ['memory', () => memoryStorage()],
  [
    'indexeddb (fake-indexeddb)',
    // A unique name too: the BroadcastChannel that carries write notices is named after it.
    () => indexedDbStorage(`conformance-${++databases}`, { indexedDB: new IDBFactory() }),
  ],
];

describe.each(adapters)('%s', (name, factory) => {
  storageConformance(name, factory);
});

againstMemory('indexeddb (fake-indexeddb)', () =>
  indexedDbStorage(`against-memory-${++databases}`, { indexedDB: new IDBFactory() }),
);
