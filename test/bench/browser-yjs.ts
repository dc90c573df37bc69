/**
 * The issue 6 benchmarks of the Chromium bench worker (a lazily loaded chunk, see
 * browser-worker.ts): a Yjs document of one-character updates stored by Chronicle (bindYDoc on
 * openStore in this thread) and by y-indexeddb, opened and measured the same way.
 *
 * bindYDoc runs with its defaults, so its open cache is on (src/yjs/bind.ts, invariant 8): the
 * first open of a database loads from the events and writes the cache, every later one is a
 * reopen from it (as y-indexeddb's load is of its stored updates). The median of the runs is
 * therefore a reopen; the cold load is what the Node bench reports as "no open cache".
 */
import { IndexeddbPersistence } from 'y-indexeddb';
import * as Y from 'yjs';
import { encodeBase64 } from '../../src/core/base64.ts';
import { indexedDbStorage, openStore } from '../../src/index.ts';
import { bindYDoc, UPDATE_TYPE } from '../../src/yjs/index.ts';
import { type InWorkerBench, typed, YJS_STREAM } from './browser-shared.ts';

type YjsBench = Pick<
  InWorkerBench,
  | 'yjsSeed'
  | 'yjsSnapshot'
  | 'yjsOpen'
  | 'yjsBytes'
  | 'yIndexedDbSeed'
  | 'yIndexedDbOpen'
  | 'yIndexedDbBytes'
>;

/** The updates of `edits` one-character edits, typed at the end with a few mid-text inserts. */
function typingUpdates(edits: number): Uint8Array[] {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  const text = doc.getText('t');
  for (let i = 0; i < edits; i++) {
    const at = i % 50 === 49 ? Math.floor(text.length / 2) : text.length;
    text.insert(at, typed(i));
  }
  return updates;
}

function openYjsStore(name: string) {
  return openStore({ name, storage: indexedDbStorage(name) });
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

const bench: YjsBench = {
  async yjsSeed(name, edits) {
    const store = await openYjsStore(name);
    const updates = typingUpdates(edits);
    // One event per update, as bindYDoc appends one per tick of typing.
    for (let i = 0; i < updates.length; i += 500) {
      await store.append(
        YJS_STREAM,
        updates
          .slice(i, i + 500)
          .map((u) => ({ type: UPDATE_TYPE, data: { update: encodeBase64(u) } })),
      );
    }
    await store.close();
  },
  async yjsSnapshot(name) {
    const store = await openYjsStore(name);
    const binding = bindYDoc(store, YJS_STREAM, { snapshotEvery: 1 });
    await binding.ready;
    binding.doc.getText('t').insert(0, '!');
    await binding.flush();
    binding.destroy();
    await store.close();
  },
  async yjsOpen(name) {
    let length = 0;
    const ms = await timed(async () => {
      const store = await openYjsStore(name);
      const binding = bindYDoc(store, YJS_STREAM, { snapshotEvery: 0 });
      await binding.ready;
      length = binding.doc.getText('t').length;
      binding.destroy();
      await store.close();
    });
    return { ms, length };
  },
  async yjsBytes(name) {
    const store = await openYjsStore(name);
    const events = await store.read({ stream: YJS_STREAM });
    await store.close();
    return events.reduce((sum, e) => sum + JSON.stringify(e).length, 0);
  },
  async yIndexedDbSeed(name, edits) {
    const doc = new Y.Doc();
    const persistence = new IndexeddbPersistence(name, doc);
    await persistence.whenSynced;
    const text = doc.getText('t');
    for (let i = 0; i < edits; i++) {
      const at = i % 50 === 49 ? Math.floor(text.length / 2) : text.length;
      text.insert(at, typed(i));
      // Separate ticks, as keystrokes are: y-indexeddb writes one record per update.
      if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    // Its writes are fire-and-forget: wait until every update is stored before closing.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await persistence.destroy();
  },
  async yIndexedDbOpen(name) {
    const doc = new Y.Doc();
    let persistence: IndexeddbPersistence | undefined;
    const ms = await timed(async () => {
      persistence = new IndexeddbPersistence(name, doc);
      await persistence.whenSynced;
    });
    const length = doc.getText('t').length;
    await persistence?.destroy();
    return { ms, length };
  },
  async yIndexedDbBytes(name) {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(name);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const all = await new Promise<Uint8Array[]>((resolve, reject) => {
      const request = db.transaction('updates').objectStore('updates').getAll();
      request.onsuccess = () => resolve(request.result as Uint8Array[]);
      request.onerror = () => reject(request.error);
    });
    db.close();
    return all.reduce((sum, u) => sum + u.byteLength, 0);
  },
};

export const {
  yjsSeed,
  yjsSnapshot,
  yjsOpen,
  yjsBytes,
  yIndexedDbSeed,
  yIndexedDbOpen,
  yIndexedDbBytes,
} = bench;
