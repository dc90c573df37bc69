/**
 * Store invariant 4 for synced events: close() lets an ingest that is already writing finish
 * before it closes the log, so the write's change notification never meets a closed handle.
 * Found by the public-API convergence property (restarts with sync in flight): the change feed
 * reported STORE_CLOSED as an uncaught exception, which ends a Node process.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  indexedDbStorage,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import { withLogOverrides } from './helpers.ts';

/** A storage whose log calls `onIngest` as soon as an ingest has started writing. */
function tapIngest(inner: StorageAdapter, onIngest: () => void): StorageAdapter {
  return withLogOverrides(inner, (log) => ({
    ingest(request) {
      const writing = log.ingest(request);
      onIngest();
      return writing;
    },
  }));
}

const uncaught: unknown[] = [];
const record = (error: unknown) => uncaught.push(error);
beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', record);
});
afterEach(() => {
  process.off('uncaughtException', record);
});

describe.each([
  ['memory', () => memoryStorage()],
  [
    'indexeddb (fake-indexeddb)',
    () => indexedDbStorage('closing', { indexedDB: new IDBFactory() }),
  ],
])('closing a store while a synced batch is being written (%s)', (_, makeStorage) => {
  it('finishes the write, keeps it, and throws nothing uncaught', async () => {
    const peer = await openStore({ name: 'peer', storage: memoryStorage() });
    await peer.append('s', [
      { type: 't', data: 1 },
      { type: 't', data: 2 },
    ]);
    let closing: Promise<void> | undefined;
    const storage = makeStorage();
    const store = await openStore({
      name: 'closing',
      storage: tapIngest(storage, () => {
        closing ??= store.close();
      }),
    });
    const [a, b] = memoryTransportPair();
    const peerLink = peer.sync.connect(b);
    store.sync.connect(a);
    for (let i = 0; i < 200 && closing === undefined; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(closing).toBeDefined();
    await closing;
    // Whatever the pump would have thrown has been thrown by now.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1));
    expect(uncaught).toEqual([]);
    const reopened = await openStore({ name: 'closing', storage });
    expect((await reopened.read()).map((e) => e.data)).toEqual([1, 2]);
    await reopened.close();
    await peerLink.close();
    await peer.close();
  });
});
