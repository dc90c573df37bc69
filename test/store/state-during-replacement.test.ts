/**
 * Store invariant 3 while a colliding copy replaces a held one: state() is the fold of a log the
 * store held, never of a mix. Found by the public-API convergence property (seed 20261204, path
 * 1655: `digest` was `{}` while read() held one event): a catch-up read the head, then an ingest
 * took the losing copy out and put the winner at a new position past that head, and the fold
 * found neither copy.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import {
  defineProjection,
  indexedDbStorage,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type StorageAdapter,
} from '../../src/index.ts';
import { withLogOverrides } from './helpers.ts';

/** Hooks into a storage's log: a wait before the next readByCursor, a signal after an ingest. */
class LogTaps {
  beforeNextRead: (() => Promise<void>) | undefined;
  private resolveIngested!: () => void;
  readonly ingested = new Promise<void>((resolve) => {
    this.resolveIngested = resolve;
  });

  wrap(inner: StorageAdapter): StorageAdapter {
    return withLogOverrides(inner, (log) => ({
      ingest: async (request) => {
        const result = await log.ingest(request);
        if (result.written.length > 0) this.resolveIngested();
        return result;
      },
      readByCursor: async (query) => {
        const wait = this.beforeNextRead;
        this.beforeNextRead = undefined;
        if (wait !== undefined) await wait();
        return log.readByCursor(query);
      },
    }));
  }
}

const described = defineProjection<string[], unknown>({
  name: 'described',
  version: 1,
  initial: () => [],
  apply: (state, e) => [...state, `${e.id} ${e.stream} ${JSON.stringify(e.data)}`],
});

describe.each([
  ['memory', () => memoryStorage()],
  [
    'indexeddb (fake-indexeddb)',
    () => indexedDbStorage('replace', { indexedDB: new IDBFactory() }),
  ],
])('state() while an ingest replaces a held copy (%s)', (_, makeStorage) => {
  it('folds the log before or after the replacement, never one without either copy', async () => {
    const now = Date.now();
    // The peer's copy is stamped earlier, so it wins (core/copies.ts) and replaces ours.
    const peer = await openStore({
      name: 'peer',
      storage: memoryStorage(),
      now: () => now - 60_000,
    });
    await peer.append('theirs', [{ id: 'doc-title', type: 'title', data: 'from peer' }]);
    const taps = new LogTaps();
    const store = await openStore({
      name: 'replace',
      storage: taps.wrap(makeStorage()),
      projections: [described],
      now: () => now,
    });
    await store.append('ours', [{ id: 'doc-title', type: 'title', data: 'from us' }]);
    const [a, b] = memoryTransportPair();
    // The catch-up has read the head (our copy, at position 1); the replacement lands before
    // it reads the events.
    taps.beforeNextRead = async () => {
      peer.sync.connect(b);
      store.sync.connect(a);
      await taps.ingested;
    };
    const state = await store.state<string[]>('described');
    expect(taps.beforeNextRead).toBeUndefined();
    const events = await store.read();
    expect(events.map((e) => e.data)).toEqual(['from peer']);
    expect(state).toEqual(['doc-title theirs "from peer"']);
    await store.close();
    await peer.close();
  });
});
