/**
 * Runs the storage conformance suite over every adapter that works in Node: the in-memory
 * adapter, the IndexedDB adapter on fake-indexeddb (a fresh factory per database), and the
 * SQLite replica adapter on real files (a fresh file per database, in one temporary folder).
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, describe } from 'vitest';
import type { StorageAdapter } from '../../src/storage/adapter.ts';
import { indexedDbStorage } from '../../src/storage/indexeddb.ts';
import { memoryStorage } from '../../src/storage/memory.ts';
import { sqliteReplicaStorage } from '../../src/storage/sqlite.ts';
import { againstMemory } from './against-memory.ts';
import { storageConformance } from './conformance.ts';

let databases = 0;
const sqliteDir = mkdtempSync(join(tmpdir(), 'chronicle-replica-conformance-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));

const adapters: [string, () => StorageAdapter, { trims?: boolean; bases?: boolean }][] = [
  ['memory', () => memoryStorage(), { trims: true, bases: true }],
  [
    'indexeddb (fake-indexeddb)',
    // A unique name too: the BroadcastChannel that carries write notices is named after it.
    () => indexedDbStorage(`conformance-${++databases}`, { indexedDB: new IDBFactory() }),
    { trims: true, bases: true },
  ],
  [
    'sqlite (better-sqlite3)',
    () => sqliteReplicaStorage(join(sqliteDir, `${++databases}.db`)),
    { trims: true, bases: true },
  ],
];

describe.each(adapters)('%s', (name, factory, options) => {
  storageConformance(name, factory, options);
});

againstMemory('indexeddb (fake-indexeddb)', () =>
  indexedDbStorage(`against-memory-${++databases}`, { indexedDB: new IDBFactory() }),
);

againstMemory('sqlite (better-sqlite3)', () =>
  sqliteReplicaStorage(join(sqliteDir, `against-memory-${++databases}.db`)),
);
