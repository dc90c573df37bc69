/**
 * Colliding copies through a real server on 127.0.0.1 (RELIABILITY 34 and 35; core/copies.ts):
 * a hostile writer reusing a (replica, seq), and one id appended offline on two replicas.
 */
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  defineProjection,
  type EventStore,
  indexedDbStorage,
  memoryStorage,
  openStore,
  type StorageAdapter,
  webSocketTransport,
} from '../../src/index.ts';
import { storedEvent } from '../fixtures/events.ts';
import { ProtocolClient, startTestServer, type TestServer, waitFor } from './helpers.ts';

let t: TestServer | undefined;
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await t?.stop();
  t = undefined;
});

let databases = 0;
const idb = (): StorageAdapter =>
  indexedDbStorage(`server-collisions-${++databases}`, { indexedDB: new IDBFactory() });

const titles = defineProjection<Record<string, string>>({
  name: 'titles',
  version: 1,
  initial: () => ({}),
  snapshotEvery: 1,
  apply: (state, event) => {
    const data = event.data as { title?: string } | null;
    return typeof data?.title === 'string' ? { ...state, [event.stream]: data.title } : state;
  },
});

async function replica(
  storage: StorageAdapter,
  options: { now?: () => number } = {},
): Promise<EventStore> {
  const store = await openStore({
    name: `replica-${++databases}`,
    storage,
    projections: [titles],
    ...(options.now ? { now: options.now } : {}),
    syncOptions: { backoff: { initialMs: 20, maxMs: 200 } },
  });
  closers.push(() => store.close());
  return store;
}

function connect(store: EventStore, sub: string): void {
  store.sync.connect(
    webSocketTransport(t!.server.url, { token: t!.token({ sub }), WebSocket: WebSocket as never }),
  );
}

async function expectStateIsFoldOfRead(store: EventStore): Promise<void> {
  let expected = titles.initial();
  for (const event of await store.read()) expected = titles.apply(expected, event);
  expect(await store.state('titles')).toEqual(expected);
}

describe('a writer reusing a (replica, seq) (RELIABILITY 34)', () => {
  it('is refused with SEQ_CONFLICT and nothing of its batch is stored; an IndexedDB replica keeps syncing', async () => {
    t = await startTestServer();
    const hostile = await ProtocolClient.connect(t.server.url, t.token({ sub: 'mallory' }));
    const wall = Date.now();
    const one = storedEvent({ replica: hostile.replica, seq: 1, wall, id: 'one', data: 1 });
    const two = storedEvent({ replica: hostile.replica, seq: 1, wall, id: 'two', data: 2 });
    const answer = await hostile.push([one, two]);
    expect(answer).toMatchObject({ type: 'error', code: 'SEQ_CONFLICT', eventId: 'two' });
    hostile.close();
    const reader = await ProtocolClient.connect(t.server.url, t.token({ sub: 'reader' }));
    expect(await reader.pullAll()).toEqual([]);
    reader.close();

    const writer = await replica(memoryStorage());
    const watcher = await replica(idb());
    connect(writer, 'alice');
    connect(watcher, 'bob');
    await writer.append('todo', { type: 'titled', data: { title: 'milk' } });
    await waitFor(async () => (await watcher.read()).length === 1, 15_000);
    await writer.append('todo', { type: 'titled', data: { title: 'bread' } });
    await waitFor(async () => (await watcher.read()).length === 2, 15_000);
    expect(watcher.sync.status().lastError).toBeUndefined();
  });
});

describe('one id appended offline on two replicas (RELIABILITY 35)', () => {
  it.each([
    ['A syncs first', true],
    ['C syncs first', false],
  ])('ends as the same copy on every replica, projected, and C is told (%s)', async (_, aFirst) => {
    t = await startTestServer();
    const base = Date.now();
    // A's copy is stamped first: it sorts first in the total order and wins everywhere.
    const a = await replica(memoryStorage(), { now: () => base });
    const c = await replica(idb(), { now: () => base + 1_000 });
    await a.append('doc', { id: 'doc-title-v1', type: 'titled', data: { title: 'from A' } });
    await c.append('doc', { id: 'doc-title-v1', type: 'titled', data: { title: 'from C' } });
    await c.append('notes', { type: 'titled', data: { title: 'after' } });
    expect(await c.state<Record<string, string>>('titles')).toMatchObject({ doc: 'from C' });
    const [first, firstSub, second, secondSub] = aFirst
      ? [a, 'alice', c, 'carol']
      : [c, 'carol', a, 'alice'];
    connect(first, firstSub);
    await waitFor(
      () => first.sync.status().state === 'idle' && first.sync.status().pending === 0,
      15_000,
    );
    connect(second, secondSub);
    await waitFor(
      () => second.sync.status().state === 'idle' && second.sync.status().pending === 0,
      15_000,
    );
    const b = await replica(memoryStorage());
    connect(b, 'bob');
    const copies = async (s: EventStore) =>
      (await s.read()).map((e) => `${e.id}:${(e.data as { title: string }).title}`);
    await waitFor(async () => {
      const all = await Promise.all([a, b, c].map(copies));
      return all.every((x) => x.length === 2 && JSON.stringify(x) === JSON.stringify(all[0]));
    }, 15_000);
    for (const s of [a, b, c]) {
      expect(await copies(s)).toContain('doc-title-v1:from A');
      expect(await s.state('titles')).toEqual({ doc: 'from A', notes: 'after' });
      await expectStateIsFoldOfRead(s);
    }
    await waitFor(() => c.sync.status().pending === 0, 15_000);
    expect(c.sync.status().lastError).toMatchObject({
      code: 'ID_CONFLICT',
      eventId: 'doc-title-v1',
    });
    expect(a.sync.status().lastError).toBeUndefined();
    expect(b.sync.status().lastError).toBeUndefined();
  });
});

/** Rewrites an IndexedDB log's replica id, as a backup of that replica restored elsewhere. */
async function restoreAs(factory: IDBFactory, name: string, replicaId: string): Promise<void> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = factory.open(name);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const tx = db.transaction('meta', 'readwrite');
  tx.objectStore('meta').put(replicaId, 'sys:replicaId');
  await new Promise((resolve) => {
    tx.oncomplete = resolve;
  });
  db.close();
}

describe('a device restored from an older backup (RELIABILITY 34)', () => {
  it('loses its reused seqs to the events the world holds, is told, and appends under a fresh replica id after', async () => {
    t = await startTestServer();
    const base = Date.now();
    const original = await replica(memoryStorage(), { now: () => base });
    // The backup: an empty log of the same replica, restored before the original's events sync.
    const factory = new IDBFactory();
    const name = `restored-${++databases}`;
    (await openStore({ name, storage: indexedDbStorage(name, { indexedDB: factory }) })).close();
    await restoreAs(factory, name, original.replicaId);
    const restored = await replica(indexedDbStorage(name, { indexedDB: factory }), {
      now: () => base + 5_000,
    });
    expect(restored.replicaId).toBe(original.replicaId);
    // Both use seqs 1 and 2: a canonical id (the same id twice) and an id of the app's own
    // (the same (replica, seq) under two ids).
    await original.append('doc', [
      { type: 'titled', data: { title: 'original 1' } },
      { id: 'original-2', type: 'titled', data: { title: 'original 2' } },
    ]);
    await restored.append('doc', [
      { type: 'titled', data: { title: 'restored 1' } },
      { id: 'restored-2', type: 'titled', data: { title: 'restored 2' } },
    ]);
    connect(original, 'alice');
    await waitFor(() => original.sync.status().pending === 0, 15_000);
    connect(restored, 'alice');
    const titlesOf = async (s: EventStore) =>
      (await s.read()).map((e) => (e.data as { title: string }).title);
    await waitFor(
      async () => (await titlesOf(restored)).join() === 'original 1,original 2',
      15_000,
    );
    await waitFor(() => restored.sync.status().pending === 0, 15_000);
    expect(['ID_CONFLICT', 'SEQ_CONFLICT']).toContain(restored.sync.status().lastError?.code);
    // Its id is in use elsewhere, maybe at seqs it has not seen yet: it moved to a fresh one.
    expect(restored.replicaId).not.toBe(original.replicaId);
    const [next] = await restored.append('doc', { type: 'titled', data: { title: 'restored 3' } });
    expect(next).toMatchObject({ replica: restored.replicaId, seq: 1 });
    await waitFor(() => restored.sync.status().pending === 0, 15_000);
    await waitFor(async () => (await titlesOf(original)).length === 3, 15_000);
    expect(await titlesOf(original)).toEqual(await titlesOf(restored));
    await expectStateIsFoldOfRead(restored);
  });
});
